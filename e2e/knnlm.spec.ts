import { existsSync, readFileSync } from 'node:fs';
import { expect, test } from './fixtures';

/**
 * A few paragraphs of WikiText-2 valid (real text the models were not trained on), cut at test
 * time from the shared corpus so no corpus is committed. Its own kNN-LM keys make the datastore
 * "know" the continuation of a prompt taken from it.
 */
const corpus = new URL('../../shared/data/wikitext-2/wiki.valid.tokens', import.meta.url);
const EXCERPT = existsSync(corpus) ? readFileSync(corpus, 'utf8').slice(0, 6000).replace(/\s+\S*$/, '\n') : '';
const PROMPT_START = EXCERPT.indexOf('Homarus gammarus , known as');

const indexFile = new URL('../public/datastores/index.json', import.meta.url);
const knnDefaultBuilt =
  existsSync(indexFile) && (JSON.parse(readFileSync(indexFile, 'utf8')) as { datastores: { knnlm?: unknown }[] }).datastores.some((d) => d.knnlm);

test.describe('kNN-LM', () => {
  test.skip(EXCERPT === '' || PROMPT_START < 0, 'needs ../shared/data/wikitext-2/wiki.valid.tokens');

  test('a custom datastore with kNN-LM keys, the third column, and a token’s distribution with the contexts that voted', async ({ app, page }) => {
    await app.goto({ backend: 'wasm' });
    await app.waitUntilReady();
    await expect(page.getByTestId('column-knnlm')).toHaveCount(0);

    // Build: chunks, then the GPT over the text for the keys, one progress bar, one stored shard.
    await app.page.getByTestId('custom-files').setInputFiles([{ name: 'lobster.txt', mimeType: 'text/plain', buffer: Buffer.from(EXCERPT) }]);
    await expect(page.getByText(/Also build kNN-LM keys \(runs the GPT over the text, about [\d,]+ tokens\/s here/)).toBeVisible();
    await app.page.getByTestId('custom-name').fill('Lobster notes');
    await app.page.getByTestId('custom-knn').check();
    await app.page.getByTestId('build').click();
    await app.waitForBuildToFinish(150_000);
    await expect(app.buildError).toHaveCount(0);
    await expect.poll(() => app.activeDatastoreName()).toBe('Lobster notes');
    const stored = (await app.state()).retrieval!.datastores.find((d) => d.name === 'Lobster notes');
    expect(stored?.knnlm?.entries).toBeGreaterThan(1000);

    // The active datastore has keys, so the column is on by default and the datastore is loaded.
    await expect(app.knnSwitch).toBeChecked();
    expect(await app.waitForKnnModel()).toBe('Lobster notes');
    await expect(page.getByTestId('column-knnlm')).toBeVisible();

    // Same decoding for all three columns (greedy); a prompt from the text, continued from memory.
    await app.generate(EXCERPT.slice(PROMPT_START, PROMPT_START + 200), { maxTokens: 6, timeout: 150_000 });
    const state = await app.state();
    expect(state.runs.knnlm?.status).toBe('done');
    expect(state.runs.knnlm?.generated.length).toBe(6);
    await expect(app.tokensPerSecond('knnlm')).toHaveText(/\d+(\.\d)? tok\/s/);
    const tokens = app.knnTokens();
    await expect(tokens).toHaveCount(6);

    // Keyboard: focus the first generated token and press Enter.
    await tokens.first().focus();
    await page.keyboard.press('Enter');
    const panel = app.tokenDistribution;
    await expect(panel).toBeVisible();
    for (const kind of ['lm', 'knn', 'mix']) {
      const rows = panel.getByTestId(`dist-${kind}`).getByTestId('dist-row');
      await expect(rows.first()).toBeVisible();
      const probabilities = (await rows.evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-probability'))))) as number[];
      for (const p of probabilities) expect(p, `${kind} probability`).toBeGreaterThanOrEqual(0);
      for (const p of probabilities) expect(p, `${kind} probability`).toBeLessThanOrEqual(1);
      // Listed most likely first.
      expect([...probabilities].sort((a, b) => b - a)).toEqual(probabilities);
    }

    // The chosen token: its mixture probability is λ·p_kNN + (1−λ)·p_LM, so it lies between the two.
    const chosen = panel.getByTestId('chosen-probabilities');
    await expect(chosen).toBeVisible();
    const [lm, knn, mix, lambda] = await Promise.all(['data-lm', 'data-knn', 'data-mix', 'data-lambda'].map(async (a) => Number(await chosen.getAttribute(a))));
    for (const p of [lm!, knn!, mix!]) {
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThanOrEqual(1);
    }
    expect(lambda).toBeGreaterThan(0);
    expect(mix).toBeCloseTo(lambda! * knn! + (1 - lambda!) * lm!, 4);
    expect(mix).toBeGreaterThanOrEqual(Math.min(lm!, knn!) - 1e-6);
    expect(mix).toBeLessThanOrEqual(Math.max(lm!, knn!) + 1e-6);
    // The text is in the datastore, so the neighbours vote for the token that came next.
    expect(knn).toBeGreaterThan(0);
    // The chosen token is highlighted in the mixture's bars.
    await expect(panel.getByTestId('dist-mix').locator('[data-chosen="true"]')).toHaveCount(1);

    // The contexts that voted: from the dropped file, with distances and weights.
    const contexts = panel.getByTestId('knn-context');
    await expect(contexts.first()).toBeVisible();
    await expect(contexts.first().getByTestId('knn-context-title')).toHaveText('lobster.txt');
    await expect(contexts.first().locator('mark.knn-value')).toHaveCount(1);
    const distance = Number(await contexts.first().getAttribute('data-distance'));
    const weight = Number(await contexts.first().getAttribute('data-weight'));
    expect(distance).toBeGreaterThanOrEqual(0);
    expect(weight).toBeGreaterThan(0);
    expect(weight).toBeLessThanOrEqual(1);

    // λ = 0 re-mixes without running the model: the mixture is then p_LM.
    const lambdaSlider = panel.getByRole('slider', { name: /λ/ });
    await lambdaSlider.focus();
    await lambdaSlider.press('Home');
    await expect(panel.getByTestId('mix-lambda')).toHaveText('0.00');
    await expect.poll(async () => Number(await chosen.getAttribute('data-mix'))).toBeCloseTo(lm!, 5);

    // Esc closes the panel (and does not stop anything).
    await page.keyboard.press('Escape');
    await expect(panel).toHaveCount(0);

    // RetoMaton: with pointers on, neighbours that went on with the written token point on, so
    // searches are skipped (the footer counts them). Without pointers every token searched.
    expect(state.runs.knnlm!.generated.every((t) => t.searched === true)).toBe(true);
    await app.field('RetoMaton pointers').fill('1');
    await app.generate(EXCERPT.slice(PROMPT_START, PROMPT_START + 200), { maxTokens: 6, timeout: 150_000 });
    const pointed = (await app.state()).runs.knnlm!;
    expect(pointed.generated[0]!.searched).toBe(true); // the prompt's prefill searched
    expect(pointed.generated.filter((t) => t.searched === false).length).toBeGreaterThan(0);
    await expect(page.getByTestId('column-knnlm').getByTestId('searches-skipped')).toContainText('searches skipped');
    await app.field('RetoMaton pointers').fill('0');

    // Export keeps the keys in the one file; deleted and imported back, kNN-LM works from it again.
    const item = app.datastoreItems.filter({ hasText: 'Lobster notes' });
    const downloadPromise = page.waitForEvent('download');
    await item.getByRole('button', { name: 'Export Lobster notes' }).click();
    const file = test.info().outputPath('lobster-notes.rlds');
    await (await downloadPromise).saveAs(file);
    page.once('dialog', (dialog) => void dialog.accept());
    await item.getByRole('button', { name: 'Delete Lobster notes' }).click();
    await expect(app.datastoreItems.filter({ hasText: 'Lobster notes' })).toHaveCount(0);
    await page.getByTestId('import-input').setInputFiles(file);
    await expect(app.datastoreItems.filter({ hasText: 'Lobster notes' })).toHaveCount(1);
    const imported = (await app.state()).retrieval!.datastores.find((d) => d.name === 'Lobster notes');
    expect(imported?.knnlm?.entries).toBe(stored!.knnlm!.entries);
    await app.datastoreItems.filter({ hasText: 'Lobster notes' }).getByRole('radio').check();
    await expect.poll(() => app.activeDatastoreName()).toBe('Lobster notes');
    await expect.poll(async () => (await app.state()).knn.model?.datastoreId).toBe(imported!.id);

    // Off: the column goes away and the next generation runs GPT and RETRO only.
    await app.knnSwitch.uncheck();
    await expect(page.getByTestId('column-knnlm')).toHaveCount(0);
    await app.generate('The lobster', { maxTokens: 2 });
    expect((await app.state()).runs.knnlm).toBeUndefined();
    expect(app.consoleErrors).toEqual([]);
  });

  test('adaptive kNN-LM: a confident GPT skips the search (the footer counts searches saved) and λ by distance is shown per token', async ({ app, page }) => {
    test.setTimeout(420_000);
    await app.goto({ backend: 'wasm' });
    await app.waitUntilReady();
    await app.buildKnnDatastore([{ name: 'lobster.txt', mimeType: 'text/plain', buffer: Buffer.from(EXCERPT) }], 'Lobster adaptive');
    await app.waitForBuildToFinish(150_000);
    await expect(app.buildError).toHaveCount(0);
    await expect(app.knnSwitch).toBeChecked();
    expect(await app.waitForKnnModel()).toBe('Lobster adaptive');
    const prompt = EXCERPT.slice(PROMPT_START, PROMPT_START + 200);
    const footer = page.getByTestId('column-knnlm').getByTestId('searches-saved');

    // θ below 1/V: every top probability reaches it, so no token searches and each is p_LM alone.
    await app.field('Skip search when GPT ≥ θ').fill('0.0001');
    await app.generate(prompt, { maxTokens: 4, timeout: 150_000 });
    const skipped = (await app.state()).runs.knnlm!;
    expect(skipped.generated.map((t) => [t.knnSkipped, t.searched, t.knnLambda])).toEqual(Array(4).fill([true, false, 0]));
    await expect(footer).toHaveText(' · Adaptive: 4 of 4 searches saved (GPT confident)');
    await expect(page.getByTestId('column-knnlm').getByTestId('searches-skipped')).toHaveCount(0);
    await app.knnTokens().first().click();
    const panel = app.tokenDistribution;
    const retrieval = panel.getByTestId('knn-retrieval');
    await expect(retrieval).toHaveAttribute('data-skipped', 'true');
    await expect(retrieval).toHaveAttribute('data-lambda', '0');
    await expect(retrieval).toContainText('Search skipped');
    await expect(panel.getByTestId('knn-context')).toHaveCount(0);
    await page.keyboard.press('Escape');

    // θ off, λ by distance on: every token searched and was mixed with its distance bucket's λ,
    // which the token panel shows (and mixes with).
    await app.field('Skip search when GPT ≥ θ').fill('0');
    await page.getByRole('switch', { name: 'λ by distance' }).check();
    await app.generate(prompt, { maxTokens: 4, timeout: 150_000 });
    const adaptive = (await app.state()).runs.knnlm!;
    expect(adaptive.generated.every((t) => t.knnSkipped === false && t.searched === true)).toBe(true);
    await expect(footer).toHaveCount(0);
    for (const i of [0, 3]) {
      const lambda = adaptive.generated[i]!.knnLambda!;
      expect(lambda).toBeGreaterThanOrEqual(0);
      expect(lambda).toBeLessThanOrEqual(1);
      await app.knnTokens().nth(i).click();
      await expect(retrieval).toHaveAttribute('data-skipped', 'false');
      await expect(retrieval).toHaveAttribute('data-lambda', String(lambda));
      await expect(retrieval).toContainText(`Mixed with λ = ${lambda.toFixed(2)} (λ by distance: nearest neighbour at`);
      const chosen = panel.getByTestId('chosen-probabilities');
      await expect(chosen).toHaveAttribute('data-lambda', String(lambda));
      const [lm, knn, mix] = await Promise.all(['data-lm', 'data-knn', 'data-mix'].map(async (a) => Number(await chosen.getAttribute(a))));
      expect(mix).toBeCloseTo(lambda * knn! + (1 - lambda) * lm!, 4);
      await page.keyboard.press('Escape');
      await expect(panel).toHaveCount(0);
    }
    await page.getByRole('switch', { name: 'λ by distance' }).uncheck();
    expect(app.consoleErrors).toEqual([]);
  });

  test('cancelling during the kNN-LM key pass stores nothing and frees the GPT', async ({ app, page }) => {
    await app.goto({ backend: 'wasm' });
    await app.waitUntilReady();
    const before = await app.datastoreNames();
    // ~60 KB of text: tens of seconds of GPT work, time enough to cancel in the key phase.
    const long = readFileSync(corpus, 'utf8').slice(0, 60_000);
    await app.buildKnnDatastore([{ name: 'long.txt', mimeType: 'text/plain', buffer: Buffer.from(long) }], 'Long text');
    const progress = page.getByTestId('build-progress');
    await expect(progress).toContainText('kNN-LM keys (running the GPT)', { timeout: 60_000 });
    await expect(progress).toContainText(/tokens\/s · .* left/);
    await page.getByTestId('cancel-build').click();
    await app.waitForBuildToFinish();
    await expect(page.getByTestId('notice').filter({ hasText: 'Build cancelled' })).toBeVisible();
    await expect(app.buildError).toHaveCount(0);
    expect(await app.datastoreNames()).toEqual(before);
    // The GPT is free again: a generation runs.
    await app.generate('The ship was launched in', { maxTokens: 2 });
    expect((await app.state()).runs.gpt?.status).toBe('done');
    await app.reload();
    await app.waitUntilReady();
    expect(await app.datastoreNames()).toEqual(before);
  });

  test('the built-in kNN-LM datastore is copied in only when kNN-LM is first turned on, with a progress bar in bytes', async ({ app, page, requests }) => {
    test.skip(!knnDefaultBuilt, 'the default kNN-LM datastore is not built here (npm run setup:knn)');
    test.setTimeout(600_000);
    await app.goto({ backend: 'wasm' });
    await app.waitUntilReady();
    // First launch: not copied, so the column is off and nothing of it is stored.
    const before = await app.state();
    expect(before.retrieval!.knnDefault?.stored).toBe(false);
    await expect(app.knnSwitch).not.toBeChecked();
    await expect(page.getByTestId('knn-status')).toContainText(/copies [\d.]+ MB into this browser the first time/);

    // CI's small fixture copies in a few hundred milliseconds, faster than a locator polls: record every
    // text the progress bar shows instead of hoping to catch one.
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { knnProgressSeen: string[] }).knnProgressSeen = seen;
      new MutationObserver(() => {
        const text = document.querySelector('[data-testid="knn-progress"]')?.textContent;
        if (text && seen[seen.length - 1] !== text) seen.push(text);
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    await app.knnSwitch.check();
    await app.waitForKnnModel(540_000);
    const progressSeen = await page.evaluate(() => (window as unknown as { knnProgressSeen: string[] }).knnProgressSeen);
    expect(progressSeen.some((text) => /MB of [\d.]+ MB/.test(text)), progressSeen.join('\n')).toBe(true);
    // The retrieval worker reports the stored copy on its own; with a small datastore (CI's fixture)
    // the kNN-LM can be ready before that state arrives.
    await expect.poll(async () => (await app.state()).retrieval!.knnDefault?.stored).toBe(true);
    // npm run setup:knn gives the built-in keys IVF lists: the column searches them, and says so.
    const model = (await app.state()).knn.model!;
    expect(model.index).toBe('ivf');
    expect(model.nprobe).toBeGreaterThan(0);
    expect(model.nprobe).toBeLessThanOrEqual(model.lists);
    await expect(page.getByTestId('knn-status')).toContainText(`searched by IVF lists (${model.nprobe} of ${model.lists.toLocaleString('en')} scanned per token)`);
    await app.generate('The ship was launched in', { maxTokens: 3, timeout: 120_000 });
    await expect(app.knnTokens()).toHaveCount(3);
    // The exact scan, the reference, is one switch away and writes with the same controls.
    await app.openSettings();
    await page.getByRole('switch', { name: 'Exact search' }).check();
    await app.generate('The ship was launched in', { maxTokens: 3, timeout: 120_000 });
    await expect(app.knnTokens()).toHaveCount(3);
    await app.knnTokens().last().click();
    await expect(app.tokenDistribution.getByTestId('knn-context').first()).toBeVisible();

    // Fetched in 16 MB ranges (so the bytes go straight into the browser's blob storage, not the tab's
    // heap); a reload reads it from IndexedDB: on at once, nothing downloaded again.
    const downloads = () => requests.filter((u) => u.includes('.knn-pca64.rlds')).length;
    const ranges = Math.ceil(before.retrieval!.knnDefault!.bytes / (16 * 1024 * 1024));
    expect(downloads()).toBe(ranges);
    await app.reload();
    await app.waitUntilReady();
    await expect(app.knnSwitch).toBeChecked();
    await app.waitForKnnModel(300_000);
    expect(downloads()).toBe(ranges);
  });

  test('without a built kNN-LM default, turning kNN-LM on says how to build one', async ({ app, page, context }) => {
    // A server where `npm run setup:knn` has not run: its datastore list has no kNN-LM entry.
    // The index the build serves, read from disk: a route.fetch() per request was disposed under load
    // when the page and its service worker asked at once (CI, 2026-12-07).
    const index = JSON.parse(readFileSync(indexFile, 'utf8')) as { datastores: { knnlm?: unknown }[] };
    await context.route('**/datastores/index.json', (route) => route.fulfill({ json: { ...index, datastores: index.datastores.filter((d) => !d.knnlm) } }));
    await app.goto({ backend: 'wasm' });
    await app.waitUntilReady();
    await app.knnSwitch.check();
    await expect(page.getByTestId('knn-error')).toContainText('kNN-LM datastore not built: run `npm run setup` (it builds the keys, then the app), or build one from your own text');
    // Nothing else changed: GPT and RETRO still generate.
    await app.generate('The ship was launched in', { maxTokens: 2 });
    expect((await app.state()).runs.knnlm).toBeUndefined();
  });
});
