import { expect, test } from './fixtures';

test('the page loads both models, says which backend runs and why, and stays on localhost', async ({ app, requests }) => {
  await app.goto({ backend: 'wasm' });
  await expect(app.page.getByRole('heading', { name: 'RetroLab' })).toBeVisible();
  await app.waitUntilReady();
  await expect(app.backendStatus).toHaveAttribute('data-backend', 'wasm');
  await expect(app.backendStatus).toContainText('WASM');
  await expect(app.backendStatus).toContainText(/requested|WebGPU|thread/);
  // The workers' model downloads are seen too, so the localhost check covers worker traffic.
  expect(requests.some((u) => u.endsWith('/models/gpt-wt2/decoder.int8.onnx'))).toBe(true);
  expect(requests.some((u) => u.endsWith('/models/retro-wt2/encoder.int8.onnx'))).toBe(true);
  expect(app.consoleErrors).toEqual([]);
});

test('the first Tab reaches "Skip to the prompt", and Enter puts the caret in the prompt', async ({ app }) => {
  await app.goto({ backend: 'wasm', settings: false });
  await app.waitUntilReady();
  await app.page.keyboard.press('Tab');
  await expect(app.page.getByRole('link', { name: 'Skip to the prompt' })).toBeFocused();
  await app.page.keyboard.press('Enter');
  await expect(app.prompt).toBeFocused();
});

test('?threads=N sets the WASM threads of onnxruntime-web, and the status line says how many', async ({ app }) => {
  // 3 threads is the default only on a 3-core machine (1 on 2 cores, 4 from 4 cores): seeing it shows the parameter took effect.
  await app.goto({ backend: 'wasm', settings: false, query: 'threads=3' });
  await app.waitUntilReady();
  await expect(app.backendStatus).toContainText('3 WASM threads');
  await app.goto({ backend: 'wasm', settings: false, query: 'threads=1' });
  await app.waitUntilReady();
  await expect(app.backendStatus).toContainText('1 WASM thread');
  await expect(app.backendStatus).not.toContainText('WASM threads');
});
