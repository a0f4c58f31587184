import type { RunState } from '../src/client';
import { expect, test } from './fixtures';
import { HURRICANE, LIGHTHOUSE, ORCHARD, textFile } from './texts';

/** A prompt from the lighthouse text: the datastore below holds its document. */
const PROMPT = LIGHTHOUSE.slice(0, LIGHTHOUSE.indexOf(' When'));
const SOURCE = 'lighthouse.txt';
const COLUMNS = ['retro', 'knnlm', 'icralm', 'replug'] as const;
const NAMES = { retro: 'RETRO', knnlm: 'kNN-LM', icralm: 'In-Context RALM', replug: 'REPLUG' } as const;

/** Every neighbour or passage a column retrieved, as "title#chunk". */
const retrieved = (run: RunState | undefined) => (run?.chunks ?? []).flatMap((c) => c.neighbours.map((n) => `${n.title.trim()}#${n.chunkIndex}`));

test('experiment controls: random neighbours for each retrieval column and the prompt’s own document excluded, each shown on its column', async ({ app, page }) => {
  test.setTimeout(400_000);
  await app.goto({ backend: 'wasm' });
  await app.waitUntilReady();
  // Three documents with kNN-LM keys (each .txt file is a document titled by its name): the kNN-LM column comes on with them.
  await app.buildKnnDatastore([textFile('lighthouse.txt', LIGHTHOUSE), textFile('hurricane.txt', HURRICANE), textFile('orchard.txt', ORCHARD)], 'Harbour');
  await app.waitForBuildToFinish();
  await expect.poll(() => app.activeDatastoreName()).toBe('Harbour');
  expect(await app.waitForKnnModel()).toBe('Harbour');
  await page.getByRole('switch', { name: 'In-Context RALM column' }).check();
  await page.getByRole('switch', { name: 'REPLUG column' }).check();
  await app.field('Passages k').fill('2');

  // Kept in (the default): the prompt's own article is what RETRO and the passage columns find.
  await app.generate(PROMPT, { maxTokens: 3 });
  const kept = await app.state();
  for (const model of COLUMNS) await expect(page.getByTestId(`controls-${model}`)).toHaveCount(0);
  for (const model of ['retro', 'icralm', 'replug'] as const) expect(retrieved(kept.runs[model]).some((n) => n.startsWith(SOURCE))).toBe(true);

  // Excluded: every column names the document it found and retrieves nothing from it.
  const exclude = page.getByRole('switch', { name: 'Exclude the prompt’s own document' });
  await exclude.check();
  await app.generate(PROMPT, { maxTokens: 3 });
  const excluded = await app.state();
  for (const model of COLUMNS) {
    await expect(page.getByTestId(`controls-${model}`).getByTestId('badge-leakage')).toHaveText(`prompt’s document excluded: ${SOURCE}`);
    expect(excluded.runs[model]!.controls?.promptSources?.documents.map((d) => d.title)).toEqual([SOURCE]);
  }
  for (const model of ['retro', 'icralm', 'replug'] as const) {
    expect(retrieved(excluded.runs[model]).length).toBeGreaterThan(0);
    expect(retrieved(excluded.runs[model]).filter((n) => n.startsWith(SOURCE))).toEqual([]);
  }
  // The kNN-LM's neighbours of its first token: none from the excluded article.
  await app.closeSettings();
  await app.knnTokens().first().click();
  const contexts = app.tokenDistribution.getByTestId('knn-context-title');
  await expect(contexts.first()).toBeVisible();
  expect((await contexts.allTextContents()).filter((t) => t.includes(SOURCE))).toEqual([]);
  await page.keyboard.press('Escape');
  await app.openSettings();
  await exclude.uncheck();

  // Random neighbours, switched on column by column: each column is marked, and reads other places than the nearest.
  for (const model of COLUMNS) await page.getByRole('switch', { name: `Random neighbours: ${NAMES[model]}` }).check();
  await app.generate(PROMPT, { maxTokens: 3 });
  const random = await app.state();
  for (const model of COLUMNS) {
    await expect(page.getByTestId(`controls-${model}`).getByTestId('badge-random')).toHaveText('random neighbours');
    await expect(page.getByTestId(`controls-${model}`).getByTestId('badge-leakage')).toHaveCount(0);
  }
  for (const model of ['retro', 'icralm', 'replug'] as const) {
    const first = retrieved(random.runs[model]).slice(0, 2);
    expect(first.length).toBeGreaterThan(0);
    expect(first).not.toEqual(retrieved(kept.runs[model]).slice(0, 2));
  }
  expect(app.consoleErrors).toEqual([]);
});
