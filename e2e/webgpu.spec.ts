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

  // The self-check compares a prefill; the tokens after it run both models' per-layer cache and
  // fused attention on the GPU with a past. The same prompt and (seeded) settings on WASM must give
  // the same tokens with the same probabilities.
  await app.goto({ backend: 'wasm' });
  await app.waitUntilReady();
  await expect(app.backendStatus).toHaveAttribute('data-backend', 'wasm');
  await app.generate('The ship was launched in', { maxTokens: 3 });
  const wasmState = await app.state();
  for (const key of ['gpt', 'retro'] as const) {
    const onGpu = state.runs[key]!.generated;
    const onWasm = wasmState.runs[key]!.generated;
    expect(onWasm.map((t) => t.id)).toEqual(onGpu.map((t) => t.id));
    onWasm.forEach((t, i) => expect(Math.abs(t.probability! - onGpu[i]!.probability!)).toBeLessThan(1e-3));
  }
});
