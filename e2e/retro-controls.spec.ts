import { expect, test } from './fixtures';
import { HURRICANE, LIGHTHOUSE, ORCHARD, textFile } from './texts';

test('RETRO controls: k, retrieval off and RETRO++ change what RETRO reads; the voy index leaves its kNN-key retrieval alone', async ({ app, page }) => {
  await app.goto({ backend: 'wasm' });
  await app.waitUntilReady();
  // The shipped RETRO retrieves with the GPT's kNN-LM keys (manifest `retrieval`): the datastore needs them.
  await app.buildKnnDatastore([textFile('lighthouse.txt', LIGHTHOUSE), textFile('hurricane.txt', HURRICANE), textFile('orchard.txt', ORCHARD)], 'Harbour');
  await app.waitForBuildToFinish();
  await expect.poll(() => app.activeDatastoreName()).toBe('Harbour');
  // Up to the end of a sentence: RETRO++ queries with the GPT's key at the prompt's last token, and a
  // context cut mid-word ("When t") is in no document.
  const prompt = LIGHTHOUSE.slice(0, LIGHTHOUSE.indexOf(' When'));

  // The retrieval step follows the model's chunk (8 tokens), the setting its metrics were measured with.
  await expect(app.field('Retrieval step')).toHaveValue('8');

  // k = 1: one neighbour per chunk.
  await app.field('Neighbours k').fill('1');
  await app.generate(prompt, { maxTokens: 3 });
  await app.retrievedChunks().first().click();
  await expect(app.neighbours()).toHaveCount(1);
  await expect(app.neighbours().first().getByTestId('neighbour-title')).toContainText('lighthouse');

  // Retrieval off: RETRO reads no neighbours, so no chunk can be inspected.
  await app.page.getByRole('switch', { name: 'Retrieval' }).uncheck();
  await app.generate(prompt, { maxTokens: 3 });
  expect((await app.state()).runs.retro!.chunks).toEqual([]);
  await expect(app.retrievedChunks()).toHaveCount(0);
  await expect(app.neighbourPanel).toHaveCount(0);

  // RETRO++: the top neighbour's text is read before the prompt (shown as the grey prefix).
  await app.page.getByRole('switch', { name: 'Retrieval' }).check();
  await app.page.getByRole('switch', { name: 'RETRO++' }).check();
  await app.generate(prompt, { maxTokens: 3 });
  const retro = (await app.state()).runs.retro!;
  const context = retro.prefix.filter((t) => t.id !== retro.paddingId).map((t) => t.text).join('');
  // The top neighbour of the prompt's last token: lighthouse text around the same place.
  const words = context.split(/[^A-Za-z]+/).filter((w) => w.length >= 4);
  expect(words.length).toBeGreaterThan(0);
  for (const w of words) expect(LIGHTHOUSE).toContain(w);
  await expect(app.output('retro').locator('.seg-prefix').first()).toBeVisible();
  await app.page.getByRole('switch', { name: 'RETRO++' }).uncheck();

  // The voy index serves the chunk datastore; RETRO still finds the lighthouse by its keys, and the query latency is shown.
  await page.getByRole('radio', { name: 'Voy' }).check();
  await page.waitForFunction(() => window.__retrolab?.state().retrieval?.indexKind === 'voy' && window.__retrolab.state().busy === null);
  await app.field('Neighbours k').fill('2');
  await app.generate(prompt, { maxTokens: 3 });
  await app.retrievedChunks().first().click();
  await expect(app.neighbours()).toHaveCount(2);
  await expect(app.neighbours().first().getByTestId('neighbour-title')).toContainText('lighthouse');
  await expect(page.getByTestId('query-latency')).toHaveText(/last query \d+\.\d ms/);
  expect(app.consoleErrors).toEqual([]);
});
