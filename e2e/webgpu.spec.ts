import { expect, test } from './fixtures';

// SwiftShader's WebGPU adapter runs about one decode step per second: a few tokens only.
test.use({ webgpu: true });

test('Auto does not pick a software WebGPU adapter (SwiftShader) and says why', async ({ app }) => {
  await app.goto();
  await app.waitUntilReady();
  await expect(app.backendStatus).toHaveAttribute('data-backend', 'wasm');
  await expect(app.backendStatus).toContainText(/software/i);
});

test('with WebGPU chosen, both models run on WebGPU after the self-check and generate', async ({ app }) => {
  test.setTimeout(300_000);
  await app.goto({ backend: 'webgpu' });
  await app.waitUntilReady(240_000);
  await expect(app.backendStatus).toHaveAttribute('data-backend', 'webgpu');
  await expect(app.backendStatus).toContainText(/self-check passed/);
  await app.generate('The ship was launched in', { maxTokens: 3, timeout: 180_000 });
  const state = await app.state();
  for (const key of ['gpt', 'retro'] as const) {
    expect(state.runs[key]!.status).toBe('done');
    expect(state.runs[key]!.generated.length).toBeGreaterThan(0);
    expect(state.runs[key]!.generated.length).toBeLessThanOrEqual(3);
  }
});
