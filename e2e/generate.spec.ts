import { expect, test } from './fixtures';

test.describe('compare view on WASM', () => {
  test('GPT and RETRO both continue the prompt with the same settings and report tokens/s', async ({ app }) => {
    await app.goto({ backend: 'wasm' });
    await app.waitUntilReady();
    await expect(app.backendStatus).toHaveAttribute('data-backend', 'wasm');
    await app.generate('The ship was launched in 1911 and served in the Atlantic during the First World War .', { maxTokens: 12 });

    const state = await app.state();
    for (const key of ['gpt', 'retro'] as const) {
      const run = state.runs[key]!;
      expect(run.status, `${key} finished`).toBe('done');
      expect(run.generated.length, `${key} generated tokens`).toBeGreaterThan(0);
      expect(run.generated.length).toBeLessThanOrEqual(12);
      expect(run.tokensPerSecond ?? 0).toBeGreaterThan(0);
      await expect(app.tokensPerSecond(key)).toHaveText(/^\d+(\.\d)? tok\/s$/);
      await expect(app.output(key)).toHaveAttribute('data-status', 'done');
      // (RETRO's 8-token chunk marks sit between tokens, so only a stretch without one is matched.)
      await expect(app.output(key)).toContainText('ship was launched in 1911');
    }
    // Same prompt tokens for both models (same tokenizer, same input).
    expect(state.runs.gpt!.prompt.map((t) => t.id)).toEqual(state.runs.retro!.prompt.map((t) => t.id));
    // RETRO's output is cut into chunks from position 0; chunk marks are drawn.
    await expect(app.retroChunk(0)).toBeVisible();
    expect(app.consoleErrors).toEqual([]);
  });

  test('the same seed and settings give the same sampled text; Esc stops a long run', async ({ app }) => {
    await app.goto({ backend: 'wasm' });
    await app.waitUntilReady();
    await app.page.getByLabel('Strategy').selectOption('sample');
    await app.field('Seed').fill('1234');
    await app.field('Temperature').fill('1');
    await app.generate('In 1923 the guild replaced the bell', { maxTokens: 10 });
    const first = (await app.state()).runs.gpt!.generated.map((t) => t.id);
    await app.generate('In 1923 the guild replaced the bell', { maxTokens: 10 });
    const second = (await app.state()).runs.gpt!.generated.map((t) => t.id);
    expect(second).toEqual(first);

    await app.setMaxTokens(512);
    await app.prompt.fill('The history of the city begins');
    await app.prompt.press('Enter');
    await app.page.waitForFunction(() => (window.__retrolab?.state().runs.gpt?.generated.length ?? 0) > 0);
    // The datastore cannot change under a running column.
    const radios = app.page.getByTestId('datastore-item').locator('input[type="radio"]');
    await expect(radios.first()).toBeDisabled();
    await app.page.keyboard.press('Escape');
    await app.waitForRuns();
    const state = await app.state();
    // The column that was writing stops (at a token boundary, keeping its text); the next never starts.
    expect(state.runs.gpt?.status).toBe('stopped');
    expect(state.runs.gpt?.generated.length ?? 0).toBeGreaterThan(0);
    expect(state.runs.gpt?.generated.length ?? 0).toBeLessThan(512);
    expect(state.runs.retro?.generated.length ?? 0).toBe(0);
    await expect(app.generateButton).toBeEnabled();
    await expect(radios.first()).toBeEnabled();
  });
});
