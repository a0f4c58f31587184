import type { RetroLabTestHook } from '../src/client';
import { expect, test } from './fixtures';
import { LIGHTHOUSE } from './texts';

/** Drops one .txt of about `megabytes` MB (the lighthouse text, numbered so it is not all one n-gram). */
async function dropText(page: import('@playwright/test').Page, name: string, megabytes: number): Promise<void> {
  const dataTransfer = await page.evaluateHandle(
    ([text, name, megabytes]) => {
      const parts: string[] = [];
      let bytes = 0;
      for (let i = 0; bytes < megabytes * 1e6; i++) {
        const part = `${i} . ${text}\n`;
        parts.push(part);
        bytes += part.length;
      }
      const dt = new DataTransfer();
      dt.items.add(new File([parts.join('')], name, { type: 'text/plain' }));
      return dt;
    },
    [LIGHTHOUSE, name, megabytes] as const,
  );
  await page.getByTestId('dropzone').dispatchEvent('drop', { dataTransfer });
  await expect(page.getByRole('list', { name: 'Chosen files' })).toContainText(name);
}

test('a 12 MB .txt tokenizes in slices with progress in bytes, and Cancel ends the build within a second', async ({ app, page }) => {
  await app.goto({ backend: 'wasm' });
  await app.waitUntilReady();
  const before = await app.datastoreNames();
  await dropText(page, 'almanac.txt', 12);
  await page.getByTestId('build').click();

  // The tokenizer's progress moves through the text (it used to sit at "0 of 1 documents").
  const progress = page.getByTestId('build-progress');
  await expect(progress).toContainText(/Tokenizing: [1-9][\d.]* [KM]B of 1[12][\d.]* MB/, { timeout: 60_000 });

  await page.getByTestId('cancel-build').click();
  const pressed = Date.now();
  await page.waitForFunction(() => !(window as unknown as { __retrolab: RetroLabTestHook }).__retrolab.state().build.running, undefined, { timeout: 10_000, polling: 20 });
  expect(Date.now() - pressed).toBeLessThan(1000);
  await expect(page.getByTestId('notice').filter({ hasText: 'Build cancelled' })).toBeVisible();
  await expect(app.buildError).toHaveCount(0);
  expect(await app.datastoreNames()).toEqual(before);
});

test('a 100 MB .txt is refused at once with a message that says what to do, and nothing is stored', async ({ app, page }) => {
  await app.goto({ backend: 'wasm' });
  await app.waitUntilReady();
  const before = await app.datastoreNames();
  await dropText(page, 'encyclopedia.txt', 100);
  const started = Date.now();
  await page.getByTestId('build').click();
  await expect(app.buildError).toContainText(/more than a datastore built here can hold .*npm run datastore -- build/, { timeout: 10_000 });
  expect(Date.now() - started).toBeLessThan(10_000);
  await app.waitForBuildToFinish(10_000);
  expect(await app.datastoreNames()).toEqual(before);
});
