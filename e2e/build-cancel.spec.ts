import { expect, test } from './fixtures';
import { LIGHTHOUSE } from './texts';

test('files dropped on the drop zone build with a progress bar, and Cancel stores nothing', async ({ app, page }) => {
  await app.goto({ backend: 'wasm' });
  await app.waitUntilReady();
  const before = await app.datastoreNames();

  // About 10 MB of JSON lines: several seconds of work, so there is time to press Cancel.
  const dataTransfer = await page.evaluateHandle((text) => {
    const lines: string[] = [];
    for (let i = 0; i < 30_000; i++) lines.push(JSON.stringify({ title: `Entry ${i}`, text: `${i}. ${text}` }));
    const dt = new DataTransfer();
    dt.items.add(new File([lines.join('\n')], 'logbook.jsonl', { type: 'application/jsonl' }));
    return dt;
  }, LIGHTHOUSE);
  await page.getByTestId('dropzone').dispatchEvent('drop', { dataTransfer });
  await expect(page.getByRole('list', { name: 'Chosen files' })).toContainText('logbook.jsonl');
  await expect(page.getByTestId('custom-name')).toHaveValue('logbook');

  await page.getByTestId('build').click();
  const progress = page.getByTestId('build-progress');
  await expect(progress).toBeVisible();
  await expect(progress.getByRole('progressbar')).toBeVisible();
  await page.getByTestId('cancel-build').click();
  await app.waitForBuildToFinish();
  await expect(page.getByTestId('notice').filter({ hasText: 'Build cancelled' })).toBeVisible();
  await expect(app.buildError).toHaveCount(0);
  expect(await app.datastoreNames()).toEqual(before);
});
