import { expect, test } from './fixtures';

test('after one visit the app loads and generates with the network off (service worker)', async ({ app, page, context }) => {
  await app.goto({ backend: 'wasm', settings: false });
  await app.waitUntilReady();
  // The first visit installs the service worker, which precaches the shell, the WASM and the models.
  await expect(page.getByTestId('offline-ready')).toBeVisible({ timeout: 120_000 });

  await context.setOffline(true);
  try {
    // The network really is off: a file the service worker does not keep cannot be fetched.
    const reachable = await page.evaluate(() => fetch('/datastores/wikitext-2-test.tokens', { method: 'HEAD' }).then(() => true, () => false));
    expect(reachable).toBe(false);

    await page.reload();
    await app.waitUntilReady();
    await app.generate('The ship was launched in', { maxTokens: 8 });
    const state = await app.state();
    expect(state.runs.gpt?.status).toBe('done');
    expect(state.runs.gpt?.generated.length).toBe(8);
    expect(state.runs.retro?.status).toBe('done');
  } finally {
    await context.setOffline(false);
  }
});
