import { readFileSync } from 'node:fs';
import { launchApp } from './browser';
import { expect, test } from './fixtures';
import { AppPage } from './pages/AppPage';

test('a copied link restores the lesson step, prompt, settings and datastore in a fresh profile; a run exports as Markdown and JSON', async ({ app, page, context, baseURL }, testInfo) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: baseURL });
  await app.goto({ backend: 'wasm' });
  await app.waitUntilReady();

  // Free play on a built-in datastore, with changed settings.
  await page.getByTestId('datastore-item').filter({ hasText: 'SQuAD' }).locator('input[type="radio"]').check();
  await expect.poll(async () => (await app.state()).retrieval?.activeId).toBe('squad-v2-paragraphs');
  await app.field('Seed').fill('7');
  await app.page.getByRole('switch', { name: 'In-Context RALM column' }).check();
  await app.generate('The Normans were the people who', { maxTokens: 6 });
  await page.getByTestId('copy-link').click();
  await expect(page.getByTestId('copy-link')).toHaveText('Link copied');
  const freePlay = await page.evaluate(() => navigator.clipboard.readText());
  expect(freePlay).toContain('datastore=squad-v2-paragraphs');

  // Exports: what a teacher keeps for lesson notes.
  const [markdown] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-md').click()]);
  const md = readFileSync((await markdown.path())!, 'utf8');
  expect(md).toContain('## Prompt\n\n> The Normans were the people who');
  expect(md).toContain('## In-Context RALM');
  expect(md).toContain('Datastore: SQuAD 2.0 paragraphs');
  expect(md).toMatch(/seed 7/);
  const [json] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-json').click()]);
  const run = JSON.parse(readFileSync((await json.path())!, 'utf8')) as { columns: { key: string; tokens: number; retrievals: unknown[] }[]; settings: { decoding: { seed: number } } };
  // (plus the kNN-LM column where this machine has its built-in datastore: `npm run setup:knn`)
  expect(run.columns.map((c) => c.key).filter((k) => k !== 'knnlm')).toEqual(['gpt', 'retro', 'icralm']);
  expect(run.columns.every((c) => c.tokens === 6)).toBe(true);
  expect(run.columns.find((c) => c.key === 'icralm')!.retrievals.length).toBeGreaterThan(0);
  expect(run.settings.decoding.seed).toBe(7);

  // A lesson step with the prompt edited.
  await app.openLesson('when');
  await app.nextStep();
  await app.prompt.fill('The lighthouse on Brannock Point was painted');
  await page.getByTestId('copy-link').click();
  await expect(page.getByTestId('copy-link')).toHaveText('Link copied');
  const lessonLink = await page.evaluate(() => navigator.clipboard.readText());

  // A fresh profile: nothing stored, the link alone restores the state.
  const fresh = await launchApp({ profileDir: testInfo.outputPath('fresh-profile') });
  try {
    const other = new AppPage(fresh.pages()[0] ?? (await fresh.newPage()));
    await other.page.goto(freePlay);
    await other.waitUntilReady();
    await expect.poll(async () => (await other.state()).retrieval?.activeId).toBe('squad-v2-paragraphs');
    await expect(other.prompt).toHaveValue('The Normans were the people who');
    await other.openSettings();
    await expect(other.field('Seed')).toHaveValue('7');
    await expect(other.field('Max tokens')).toHaveValue('6');
    await expect(other.page.getByRole('switch', { name: 'In-Context RALM column' })).toBeChecked();

    await other.page.goto(lessonLink);
    await other.waitUntilReady();
    await other.waitForLesson();
    await expect(other.lesson).toHaveAttribute('data-lesson', 'when');
    await expect(other.page.getByTestId('lesson-step')).toContainText('Step 2 of 2');
    await expect(other.prompt).toHaveValue('The lighthouse on Brannock Point was painted');
    await other.openSettings();
    await expect(other.field('Stride s')).toHaveValue('4');
    // The lesson's datastore was built in this profile from the lesson's texts.
    expect((await other.state()).retrieval!.datastores.some((d) => d.name === 'Brannock Point (lesson)')).toBe(true);
    await other.generateNow();
    expect((await other.state()).runs.icralm?.status).toBe('done');
  } finally {
    await fresh.close();
  }
});
