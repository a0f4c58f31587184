import { readFileSync } from 'node:fs';
import { expect, test } from './fixtures';

interface IndexEntry {
  id: string;
  name: string;
  knnlm?: unknown;
}
const index = JSON.parse(readFileSync(new URL('../public/datastores/index.json', import.meta.url), 'utf8')) as { datastores: IndexEntry[] };
// The kNN-LM datastore (npm run setup:knn) is copied in only when kNN-LM is first turned on.
const names = index.datastores.filter((d) => !d.knnlm).map((d) => d.name);
// The shipped RETRO retrieves with the GPT's kNN-LM keys: from WikiText-2 train only when they were built.
const knnBuilt = index.datastores.some((d) => d.knnlm);

// The opening of an article of WikiText-2 train: its own chunks are in the default datastore.
const YORK =
  ' Nigel Worthington , starting his first full season as York manager , made eight permanent summer signings . ' +
  'By the turn of the year York were only above the relegation zone on goal difference , before a 17 @-@ match unbeaten run';

test('first launch copies the built-in datastores into IndexedDB and RETRO retrieves from WikiText-2', async ({ app, page }) => {
  test.setTimeout(300_000); // the first RETRO generation copies the 211 MB of kNN-LM keys in
  await app.goto({ backend: 'wasm' });
  await app.waitUntilReady();
  expect(await app.datastoreNames()).toEqual(names);
  expect(await app.activeDatastoreName()).toBe(names[0]);

  if (!knnBuilt) {
    // Without `npm run setup:knn` RETRO says why it reads nothing, and still writes.
    await app.generate(YORK, { maxTokens: 8 });
    await expect(page.getByTestId('notice').filter({ hasText: 'kNN-LM keys' })).toContainText('without retrieval');
    expect((await app.state()).runs.retro!.chunks).toEqual([]);
    expect((await app.state()).runs.retro!.generated.length).toBe(8);
  } else {
    await app.generate(YORK, { maxTokens: 8, timeout: 240_000 });
    const chunks = app.retrievedChunks();
    expect(await chunks.count()).toBeGreaterThan(0);
    await chunks.last().click();
    await expect(app.neighbourPanel).toBeVisible();
    await expect(app.neighbours()).toHaveCount(2);
    await expect(app.neighbours().first().getByTestId('neighbour-title')).toContainText('York City');
    // WikiText escapes are undone for display, and the continuation is marked.
    await expect(app.neighbourPanel).not.toContainText('@-@');
    await expect(app.neighbours().first().locator('.continuation')).toBeVisible();
    await expect(app.output('retro')).toContainText('17-match');
  }

  // The active datastore is remembered across a reload; a deleted built-in one can be restored.
  await page.getByRole('radio', { name: new RegExp(names[1]!) }).check();
  await expect.poll(() => app.activeDatastoreName()).toBe(names[1]);
  page.once('dialog', (dialog) => void dialog.accept());
  await app.datastoreItems.filter({ hasText: names[0]! }).getByRole('button', { name: `Delete ${names[0]}` }).click();
  await expect(app.datastoreItems).toHaveCount(names.length - 1);
  await app.reload();
  await app.waitUntilReady();
  expect(await app.activeDatastoreName()).toBe(names[1]);
  expect(await app.datastoreNames()).toEqual(names.slice(1));
  await page.getByRole('button', { name: 'Restore built-in' }).click();
  await expect(app.datastoreItems).toHaveCount(names.length);
  expect(app.consoleErrors).toEqual([]);
});
