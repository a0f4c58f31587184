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
