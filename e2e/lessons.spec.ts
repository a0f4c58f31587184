import { readFileSync } from 'node:fs';
import { expect, test } from './fixtures';
import type { AppPage } from './pages/AppPage';

/**
 * Each lesson loads from the list and shows the class what its text says they will see. The
 * lessons build their own small datastore (public/lessons/), so none needs `npm run setup:knn`.
 */
const LIGHTHOUSE = readFileSync(new URL('../public/lessons/brannock-lighthouse.txt', import.meta.url), 'utf8');

async function open(app: AppPage, id: string): Promise<void> {
  await app.goto({ backend: 'wasm', settings: false });
  await app.waitUntilReady();
  await app.openLesson(id);
  await expect(app.page.getByTestId('lesson-read')).toBeVisible();
}

/** After Generate the lesson shows what to notice instead of what to read. */
async function generate(app: AppPage): Promise<void> {
  await app.generateNow();
  await expect(app.page.getByTestId('lesson-notice')).toBeVisible();
}

function percent(text: string, label: string): number {
  const match = new RegExp(`${label} (\\d+)%`).exec(text);
  if (!match) throw new Error(`no "${label} N%" in "${text}"`);
  return Number(match[1]);
}

/** The distinct distances between consecutive retrieval points. */
const gaps = (ends: number[]) => new Set(ends.slice(1).map((e, i) => e - ends[i]!));

test.describe('lessons', () => {
  test('what: RETRO retrieves 2 neighbours of 16 tokens per 8-token chunk; the kNN-LM explains every token', async ({ app, page }) => {
    await open(app, 'what');
    await expect(app.lesson).toContainText('What to retrieve');
    await expect(page.getByTestId('column-knnlm')).toBeVisible();
    await expect(page.getByTestId('column-icralm')).toHaveCount(0);
    await generate(app);

    const retro = (await app.state()).runs.retro!;
    expect(retro.chunks.length).toBeGreaterThan(2);
    expect(gaps(retro.chunks.map((c) => c.end)), 'one retrieval per 8-token chunk').toEqual(new Set([8]));
    for (const c of retro.chunks) {
      expect(c.neighbours).toHaveLength(2);
      for (const n of c.neighbours) expect(n.tokens.length, 'a neighbour is a chunk and its continuation').toBe(16);
    }
    await expect(app.chunkButtons()).toHaveCount(retro.chunks.length);
    await app.chunkButtons().nth(1).click();
    await expect(app.neighbours()).toHaveCount(2);
    await expect(app.neighbours().first().getByTestId('neighbour-title')).toContainText('brannock');

    // Every kNN-LM token is a button; one opens the three distributions and the stored places that voted.
    const knn = (await app.state()).runs.knnlm!;
    await expect(app.knnTokens()).toHaveCount(knn.generated.length);
    await app.knnTokens().nth(2).click();
    await expect(app.tokenDistribution.getByTestId('dist-knn').getByTestId('dist-row').first()).toBeVisible();
    await expect(app.tokenDistribution.getByTestId('knn-context-title').first()).toContainText('brannock');
    expect(app.consoleErrors).toEqual([]);
  });

  test('how: four columns; In-Context RALM’s ¶ passages come from the lesson’s texts', async ({ app, page }) => {
    await open(app, 'how');
    for (const key of ['gpt', 'retro', 'knnlm', 'icralm']) await expect(page.getByTestId(`column-${key}`)).toBeVisible();
    await generate(app);
    const state = await app.state();
    for (const key of ['gpt', 'retro', 'knnlm', 'icralm'] as const) expect(state.runs[key]?.status, key).toBe('done');
    // The same GPT under the kNN-LM and In-Context RALM columns.
    const gptName = state.models.find((m) => m.key === 'gpt')!.name;
    await expect(page.getByTestId('column-knnlm').locator('.model-meta')).toContainText(gptName);
    await expect(page.getByTestId('column-icralm').locator('.model-meta')).toContainText(gptName);

    const marks = app.output('icralm').getByTestId('icralm-passage');
    await expect(marks).toHaveCount(state.runs.icralm!.chunks.length);
    await expect(marks.first()).toHaveText('¶1');
    await marks.first().click();
    await expect(page.getByTestId('icralm-passage-panel').getByTestId('neighbour-title')).toContainText('brannock-lighthouse');
  });

  test('when: In-Context RALM fetching every 4 tokens instead of every 8 doubles its passages; RETRO stays at one per chunk', async ({ app }) => {
    await open(app, 'when');
    await generate(app);
    const first = await app.state();
    const ic8 = first.runs.icralm!;
    const generated = ic8.generated.length;
    expect(ic8.chunks).toHaveLength(Math.ceil(generated / 8));
    await expect(app.output('icralm').getByTestId('icralm-passage')).toHaveCount(ic8.chunks.length);
    const retro8 = first.runs.retro!.chunks.map((c) => c.end);

    await app.nextStep();
    await expect(app.page.getByTestId('lesson-step')).toContainText('Step 2 of 2');
    await generate(app);
    const second = await app.state();
    const ic4 = second.runs.icralm!;
    expect(ic4.generated.length).toBe(generated);
    expect(ic4.chunks).toHaveLength(Math.ceil(generated / 4));
    await expect(app.output('icralm').getByTestId('icralm-passage')).toHaveCount(2 * ic8.chunks.length);
    // RETRO is unchanged: one retrieval per 8-token chunk, at the same places.
    expect(gaps(retro8)).toEqual(new Set([8]));
    expect(second.runs.retro!.chunks.map((c) => c.end)).toEqual(retro8);
  });

  test('leakage: the prompt’s own document is the top neighbour until it is excluded', async ({ app, page }) => {
    await open(app, 'leakage');
    await generate(app);
    const retro = (await app.state()).runs.retro!;
    const promptEnd = retro.prefix.length + retro.prompt.length;
    const inPrompt = retro.chunks.filter((c) => c.end <= promptEnd && c.end - c.start === 8);
    expect(inPrompt.length).toBeGreaterThan(0);
    for (const c of inPrompt) expect(c.neighbours[0]!.title).toContain('brannock-lighthouse');
    // Its continuation holds the document's next words.
    const last = inPrompt[inPrompt.length - 1]!;
    const continuation = last.neighbours[0]!.tokens.slice(last.neighbours[0]!.chunkLength).map((t) => t.text).join('');
    expect(LIGHTHOUSE).toContain(continuation.trim().slice(0, 20));
    const closest = Math.min(...retro.chunks.map((c) => c.neighbours[0]!.distance));

    await app.nextStep();
    await expect(page.getByTestId('lesson-read')).toContainText('Exclude this document');
    await generate(app);
    await app.chunkButtons().first().click();
    await app.neighbourPanel.getByRole('button', { name: 'Exclude this document' }).first().click();
    await app.generateNow();
    const after = (await app.state()).runs.retro!;
    expect(after.chunks.length).toBeGreaterThan(0);
    const titles = after.chunks.flatMap((c) => c.neighbours.map((n) => n.title));
    expect(titles.some((t) => t.includes('brannock-lighthouse'))).toBe(false);
    expect(Math.min(...after.chunks.map((c) => c.neighbours[0]!.distance))).toBeGreaterThan(closest);
  });

  test('own text: the Brannock texts change what is retrieved; RETRO writes the ferry time from them; the GPT writes the same words as before', async ({ app, page }) => {
    await open(app, 'own-text');
    await generate(app);
    const before = await app.state();
    expect(before.retrieval!.activeId).toBe('squad-v2-paragraphs');
    const passagesBefore = before.runs.icralm!.chunks.map((c) => c.neighbours[0]?.title ?? '');
    expect(passagesBefore.length).toBeGreaterThan(0);
    for (const title of passagesBefore) expect(title).not.toContain('brannock');

    await app.nextStep();
    await generate(app);
    const after = await app.state();
    expect(after.runs.gpt!.generated.map((t) => t.id)).toEqual(before.runs.gpt!.generated.map((t) => t.id));
    expect(after.runs.icralm!.chunks[0]!.neighbours[0]!.title).toContain('brannock-ferry');
    // What the notice tells the class: RETRO read the afternoon sailing from the ferry text; the GPT cannot know it.
    const written = (key: 'gpt' | 'retro') => after.runs[key]!.generated.map((t) => t.text).join('');
    expect(written('retro')).toContain('four in the afternoon');
    expect(written('gpt')).not.toContain('four in the afternoon');
    await app.output('icralm').getByTestId('icralm-passage').first().click();
    await expect(page.getByTestId('icralm-passage-panel')).toContainText('Sound of Orm');
  });

  test('quality: greedy decoding repeats 4-grams; the default sampling does not', async ({ app, page }) => {
    await open(app, 'quality');
    await generate(app);
    const quality = page.getByTestId('column-gpt').getByTestId('text-quality');
    expect(percent(await quality.innerText(), '4-gram repeats')).toBeGreaterThan(10);
    await expect(app.chunkButtons()).toHaveCount(0);

    await app.nextStep();
    await generate(app);
    for (const key of ['gpt', 'retro']) {
      const text = await page.getByTestId(`column-${key}`).getByTestId('text-quality').innerText();
      expect(percent(text, '4-gram repeats'), key).toBe(0);
      expect(percent(text, '<unk>'), key).toBe(0);
    }
  });
});
