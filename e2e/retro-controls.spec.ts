import { expect, test } from './fixtures';
import { HURRICANE, LIGHTHOUSE, ORCHARD, textFile } from './texts';

test('RETRO controls: k, retrieval off, RETRO++, and the voy index all change what RETRO reads', async ({ app, page }) => {
  await app.goto({ backend: 'wasm' });
  await app.waitUntilReady();
  await app.buildDatastore([textFile('lighthouse.txt', LIGHTHOUSE), textFile('hurricane.txt', HURRICANE), textFile('orchard.txt', ORCHARD)], 'Harbour');
  await app.waitForBuildToFinish();
  await expect.poll(() => app.activeDatastoreName()).toBe('Harbour');
  const prompt = LIGHTHOUSE.slice(0, 200);

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
  expect(context).toContain('Qortuvan');
  await expect(app.output('retro').locator('.seg-prefix').first()).toBeVisible();
  await app.page.getByRole('switch', { name: 'RETRO++' }).uncheck();

  // The voy index returns the same nearest document, and the query latency is shown.
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
