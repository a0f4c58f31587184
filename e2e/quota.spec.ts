import { existsSync, readFileSync } from 'node:fs';
import { expect, test } from './fixtures';

// A real quota: Chromium's storage pool shrunk to 20 MB gives this site about 14 MB.
const POOL = 20_000_000;
test.use({ storagePoolBytes: POOL });

const indexFile = new URL('../public/datastores/index.json', import.meta.url);
const defaults = existsSync(indexFile)
  ? (JSON.parse(readFileSync(indexFile, 'utf8')) as { datastores: { name: string; bytes: number; knnlm?: unknown }[] }).datastores.filter((d) => !d.knnlm)
  : [];

test('what does not fit the storage quota is not stored, and the message says how much is needed and what to delete', async ({ app, page }) => {
  await app.goto({ backend: 'wasm' });
  await app.waitUntilReady();
  const stored = await app.datastoreNames();
  // Built-in datastores larger than the quota are refused one by one; smaller ones still arrive.
  for (const d of defaults) {
    if (d.bytes > POOL) {
      expect(stored).not.toContain(d.name);
      await expect(page.getByTestId('notice').filter({ hasText: d.name })).toContainText('Not enough storage');
    }
    if (d.bytes < POOL / 4) expect(stored).toContain(d.name);
  }

  // About 15 MB of shard, more than what is left. Random letters: ordinary text would compress
  // in IndexedDB and slip under the quota.
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const word = () => Array.from({ length: 3 + Math.floor(random() * 6) }, () => String.fromCharCode(97 + Math.floor(random() * 26))).join('');
  const lines = Array.from({ length: 3000 }, (_, i) => JSON.stringify({ title: `Entry ${i}`, text: Array.from({ length: 160 }, word).join(' ') }));
  await app.buildDatastore([{ name: 'ledger.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from(lines.join('\n')) }], 'Ledger');
  await app.waitForBuildToFinish();
  await expect(app.buildError).toContainText('Not enough storage to save "Ledger"');
  await expect(app.buildError).toContainText(/it needs \d+(\.\d)? MB/);
  await expect(app.buildError).toContainText('Nothing was saved');
  if (stored.length > 0) await expect(app.buildError).toContainText(`Delete "${stored[0]}"`);
  else await expect(app.buildError).toContainText(/free disk space/i);
  expect(await app.datastoreNames()).toEqual(stored);

  // Nothing half-written: after a reload the list is the same and the active one still opens.
  await app.reload();
  await app.waitUntilReady();
  expect(await app.datastoreNames()).toEqual(stored);
});
