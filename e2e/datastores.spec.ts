import { expect, test } from './fixtures';
import { AppPage } from './pages/AppPage';
import { HURRICANE, LIGHTHOUSE, ORCHARD, textFile } from './texts';

test.describe('custom datastores', () => {
  test('built from real files, retrieved by RETRO, inspected, and still there after a reload', async ({ app, page }) => {
    await app.goto({ backend: 'wasm' });
    await app.waitUntilReady();
    const before = await app.datastoreNames();

    // With kNN-LM keys: the shipped RETRO retrieves with them (token-aligned neighbours).
    await app.buildKnnDatastore(
      [textFile('lighthouse.txt', LIGHTHOUSE), textFile('hurricane.txt', HURRICANE), textFile('orchard.txt', ORCHARD)],
      'Harbour notes',
    );
    await app.waitForBuildToFinish();
    await expect(app.buildError).toHaveCount(0);
    await expect(page.getByTestId('datastore-name').filter({ hasText: 'Harbour notes' })).toBeVisible();
    expect(await app.datastoreNames()).toEqual([...before, 'Harbour notes']);
    // It is made active at once.
    await expect.poll(() => app.activeDatastoreName()).toBe('Harbour notes');

    // A prompt made of the lighthouse document retrieves the lighthouse chunks.
    await app.generate(LIGHTHOUSE.slice(0, 180), { maxTokens: 4 });
    const chunks = app.retrievedChunks();
    await expect(chunks.first()).toBeVisible();
    // Keyboard: focus the chunk's button and press Enter; focus moves into the panel, Esc closes it and returns.
    const button = app.chunkButtons().first();
    await button.focus();
    await page.keyboard.press('Enter');
    await expect(app.neighbourPanel).toBeVisible();
    await expect(page.getByTestId('side-panel')).toBeFocused();
    await page.keyboard.press('Escape');
    await expect(app.neighbourPanel).toHaveCount(0);
    await expect(button).toBeFocused();
    await page.keyboard.press('Enter');
    await expect(app.neighbourPanel).toBeVisible();
    const neighbours = app.neighbours();
    await expect(neighbours.first()).toBeVisible();
    await expect(neighbours.first().getByTestId('neighbour-title')).toContainText('lighthouse');
    await expect(neighbours.first()).toContainText('Qortuvan');
    await expect(neighbours.first()).toContainText(/distance \d+\.\d{3}/);
    await expect(page.getByTestId('query-latency')).toHaveText(/last query \d+\.\d ms/);

    // Leakage filter: exclude the lighthouse document, and it is no longer retrieved.
    await neighbours.first().getByRole('button', { name: 'Exclude this document' }).click();
    await expect(page.locator('.chip').filter({ hasText: 'lighthouse' })).toBeVisible();
    await app.generate(LIGHTHOUSE.slice(0, 180), { maxTokens: 4 });
    await app.retrievedChunks().first().click();
    const titles = await app.neighbours().getByTestId('neighbour-title').allTextContents();
    expect(titles.length).toBeGreaterThan(0);
    expect(titles.join(' ')).not.toContain('lighthouse');

    // Persistence: a reload finds the datastore in IndexedDB, still active.
    await app.reload();
    await app.waitUntilReady();
    expect(await app.datastoreNames()).toContain('Harbour notes');
    expect(await app.activeDatastoreName()).toBe('Harbour notes');
  });

  test('empty and binary files are refused with a clear message and leave the list unchanged', async ({ app, page }) => {
    await app.goto({ backend: 'wasm' });
    await app.waitUntilReady();
    const before = await app.datastoreNames();

    await app.buildDatastore([{ name: 'empty.txt', mimeType: 'text/plain', buffer: Buffer.alloc(0) }]);
    await app.waitForBuildToFinish();
    await expect(app.buildError).toContainText('empty.txt');
    await expect(app.buildError).toContainText(/empty/i);
    expect(await app.datastoreNames()).toEqual(before);

    const binary = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52]);
    await app.buildDatastore([{ name: 'picture.txt', mimeType: 'text/plain', buffer: binary }]);
    await app.waitForBuildToFinish();
    await expect(app.buildError).toContainText('picture.txt');
    await expect(app.buildError).toContainText(/binary/i);

    const latin1 = Buffer.from('Caf\xe9 cr\xe8me on the quay\n', 'latin1');
    await app.buildDatastore([{ name: 'latin1.txt', mimeType: 'text/plain', buffer: latin1 }]);
    await app.waitForBuildToFinish();
    await expect(app.buildError).toContainText(/UTF-8/);
    // Clearing the refused files clears their error too.
    await page.getByRole('button', { name: 'Clear', exact: true }).click();
    await expect(app.buildError).toHaveCount(0);

    await app.reload();
    await app.waitUntilReady();
    expect(await app.datastoreNames()).toEqual(before);
  });

  test('export a datastore to a file, delete it, import the file back', async ({ app, page }) => {
    await app.goto({ backend: 'wasm' });
    await app.waitUntilReady();
    await app.buildDatastore([textFile('orchard.md', `# Orchards\n\n${ORCHARD}`)], 'Orchards');
    await app.waitForBuildToFinish();
    await expect.poll(() => app.activeDatastoreName()).toBe('Orchards');

    const item = app.datastoreItems.filter({ hasText: 'Orchards' });
    const downloadPromise = page.waitForEvent('download');
    await item.getByRole('button', { name: 'Export Orchards' }).click();
    const download = await downloadPromise;
    expect(download.suggestedFilename()).toBe('orchards.rlds');
    const file = test.info().outputPath('orchards.rlds');
    await download.saveAs(file);

    page.once('dialog', (dialog) => void dialog.accept());
    await item.getByRole('button', { name: 'Delete Orchards' }).click();
    await expect(app.datastoreItems.filter({ hasText: 'Orchards' })).toHaveCount(0);

    await page.getByTestId('import-input').setInputFiles(file);
    await expect(app.datastoreItems.filter({ hasText: 'Orchards' })).toHaveCount(1);
    await expect(app.datastoreItems.filter({ hasText: 'Orchards' })).toContainText('imported');

    // The same file again: the app says it is already stored and keeps one copy.
    await page.getByTestId('import-input').setInputFiles(file);
    await expect(page.getByTestId('notice').last()).toContainText(/already stored as “Orchards”/);
    await expect(app.datastoreItems.filter({ hasText: 'Orchards' })).toHaveCount(1);

    // An .rlds that is not a shard is refused before anything is stored.
    await page.getByTestId('import-input').setInputFiles({ name: 'fake.rlds', mimeType: 'application/octet-stream', buffer: Buffer.from('not a shard at all') });
    await expect(page.getByTestId('notice').last()).toContainText(/magic|shard|RLDS/i);
    await expect(app.datastoreItems.filter({ hasText: 'fake' })).toHaveCount(0);
  });

  test('tabs stay in step: a datastore deleted in one tab leaves the other tab’s list', async ({ app, context }) => {
    await app.goto({ backend: 'wasm' });
    await app.waitUntilReady();
    const other = new AppPage(await context.newPage());
    await other.goto({ backend: 'wasm' });
    await other.waitUntilReady();
    await expect(other.datastoreItems.filter({ hasText: 'SQuAD 2.0 paragraphs' })).toHaveCount(1);

    app.page.once('dialog', (dialog) => void dialog.accept());
    await app.datastoreItems.filter({ hasText: 'SQuAD 2.0 paragraphs' }).getByRole('button', { name: /^Delete / }).click();
    await expect(app.datastoreItems.filter({ hasText: 'SQuAD 2.0 paragraphs' })).toHaveCount(0);
    await expect(other.datastoreItems.filter({ hasText: 'SQuAD 2.0 paragraphs' })).toHaveCount(0);
  });
});
