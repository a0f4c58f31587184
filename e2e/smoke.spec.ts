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

test('?threads=1 runs onnxruntime-web on one WASM thread, and the status says so', async ({ app }) => {
  await app.goto({ backend: 'wasm', settings: false, query: 'threads=1' });
  await app.waitUntilReady();
  await expect(app.backendStatus).toContainText('1 WASM thread');
  // Without the parameter the same page runs 2 here (the cores, at most 4): "2 WASM threads".
  await expect(app.backendStatus).not.toContainText('WASM threads');
});
