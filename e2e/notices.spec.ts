import { expect, test } from './fixtures';
import { LIGHTHOUSE } from './texts';

test('the notice that a datastore has no kNN-LM keys is not repeated by the lens, and clears when one with keys is chosen', async ({ app, page }) => {
  await app.goto({ backend: 'wasm' });
  await app.waitUntilReady();
  // A datastore built without kNN-LM keys, which the shipped token-aligned RETRO retrieves with.
  await app.buildDatastore([{ name: 'lighthouse.txt', mimeType: 'text/plain', buffer: Buffer.from(LIGHTHOUSE.repeat(4)) }], 'Lighthouse notes');
  await expect.poll(() => app.activeDatastoreName()).toBe('Lighthouse notes');
  const noKeys = page.getByTestId('notice').filter({ hasText: 'does not have' });

  await app.generate(LIGHTHOUSE.slice(0, 120), { maxTokens: 4 });
  await expect(noKeys).toHaveCount(1);
  await expect(noKeys).toContainText('runs without retrieval');

  // The lens meets the same cause: its notice replaces the first instead of adding a second.
  await app.openLens();
  await app.scoreInLens(LIGHTHOUSE, ['gpt', 'retro']);
  await expect(noKeys).toHaveCount(1);
  await expect(noKeys).toContainText('is scored without retrieval');

  // WikiText-2 train has keys (the built-in kNN-LM datastore): the cause is gone, so is the notice.
  await page.getByTestId('tab-compare').click();
  await app.datastoreItems.filter({ hasText: 'WikiText-2 train' }).getByRole('radio').check();
  await expect.poll(async () => (await app.state()).retrieval?.activeId).toBe('wikitext-2-train');
  await expect(noKeys).toHaveCount(0);
});

test('a datastore built without kNN-LM keys gets them with one click, with a progress bar; RETRO then retrieves from it', async ({ app, page }) => {
  await app.goto({ backend: 'wasm' });
  await app.waitUntilReady();
  await app.buildDatastore([{ name: 'lighthouse.txt', mimeType: 'text/plain', buffer: Buffer.from(LIGHTHOUSE.repeat(4)) }], 'Lighthouse notes');
  await expect.poll(() => app.activeDatastoreName()).toBe('Lighthouse notes');
  const item = app.datastoreItems.filter({ hasText: 'Lighthouse notes' });
  await expect(item.getByTestId('datastore-keys')).toHaveCount(0);
  const noKeys = page.getByTestId('notice').filter({ hasText: 'does not have' });
  await app.generate(LIGHTHOUSE.slice(0, 120), { maxTokens: 4 });
  await expect(noKeys).toContainText('Add kNN-LM keys');
  expect((await app.state()).runs.retro?.chunks.flatMap((c) => c.neighbours) ?? []).toEqual([]);

  await item.getByRole('button', { name: 'Add kNN-LM keys to Lighthouse notes' }).click();
  await expect(page.getByTestId('build-progress')).toBeVisible();
  await app.waitForBuildToFinish();
  await expect(page.getByTestId('build-error')).toHaveCount(0);
  // The same datastore, now with keys: the button gives way to the badge, and the notice's cause is gone.
  await expect(item.getByTestId('datastore-keys')).toHaveText('kNN-LM keys');
  await expect(item.getByRole('button', { name: /Add kNN-LM keys/ })).toHaveCount(0);
  await expect(app.datastoreItems.filter({ hasText: 'Lighthouse notes' })).toHaveCount(1);

  await app.generate(LIGHTHOUSE.slice(0, 120), { maxTokens: 12 });
  await expect(noKeys).toHaveCount(0);
  const neighbours = (await app.state()).runs.retro?.chunks.flatMap((c) => c.neighbours) ?? [];
  expect(neighbours.length).toBeGreaterThan(0);
  for (const n of neighbours) expect(n.title).toBe('lighthouse.txt');
});
