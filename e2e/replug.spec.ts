import { readFileSync } from 'node:fs';
import { expect, test } from './fixtures';
import { HURRICANE, LIGHTHOUSE, ORCHARD, textFile } from './texts';

test('REPLUG: the column mixes k passages per retrieval, shows their weights, and splits a token’s probability among them', async ({ app, page }) => {
  await app.goto({ backend: 'wasm' });
  await app.waitUntilReady();
  await expect(page.getByTestId('column-replug')).toHaveCount(0);
  await app.buildDatastore([textFile('lighthouse.txt', LIGHTHOUSE), textFile('hurricane.txt', HURRICANE), textFile('orchard.txt', ORCHARD)], 'Harbour');
  await app.waitForBuildToFinish();
  await expect.poll(() => app.activeDatastoreName()).toBe('Harbour');

  // Off by default; the switch adds the column; k = 3 passages.
  await app.openSettings();
  const toggle = page.getByRole('switch', { name: 'REPLUG column' });
  await expect(toggle).not.toBeChecked();
  await toggle.check();
  await app.field('Passages k').fill('3');
  await expect(page.getByTestId('replug-status')).toContainText('Harbour');
  await app.closeSettings();
  await expect(page.getByTestId('column-replug')).toBeVisible();
  // Its header shows REPLUG's own WikiText-2 test perplexity (npm run eval --replug), not the GPT's.
  const metrics = (JSON.parse(readFileSync('public/models/gpt-wt2/manifest.json', 'utf8')) as { metrics: Record<string, { word_ppl: number }> }).metrics;
  await expect(page.getByTestId('column-replug').locator('.model-meta')).toContainText(`test perplexity ${metrics.wt2_test_replug!.word_ppl.toFixed(1)}`);
  await expect(page.getByTestId('column-gpt').locator('.model-meta')).toContainText(`test perplexity ${metrics.wt2_test!.word_ppl.toFixed(1)}`);

  await app.generate(LIGHTHOUSE.slice(0, 200), { maxTokens: 8 });
  const state = await app.state();
  const run = state.runs.replug!;
  expect(run.status).toBe('done');
  expect(run.generated.length).toBe(state.runs.gpt!.generated.length);
  // s = 4: a retrieval at the prompt's end and every 4 tokens, each with 3 passages whose weights sum to 1, nearest heaviest.
  expect(run.chunks.map((c) => c.end - run.prompt.length)).toEqual([0, 4]);
  for (const c of run.chunks) {
    expect(c.neighbours).toHaveLength(3);
    expect(c.weights!.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect([...c.weights!].sort((a, b) => b - a)).toEqual(c.weights);
  }

  // A mark per retrieval opens the three passages with their weights.
  const marks = app.output('replug').getByTestId('icralm-passage');
  await expect(marks).toHaveCount(2);
  await marks.first().click();
  const panel = page.getByTestId('replug-passages-panel');
  await expect(panel).toBeVisible();
  await expect(panel.getByTestId('neighbour')).toHaveCount(3);
  await expect(panel.getByTestId('neighbour-weight')).toHaveCount(3);
  await page.keyboard.press('Escape');

  // A token's panel splits its probability among the passages: Σ weight × p = the token's probability.
  await app.output('replug').getByTestId('generated-token').first().click();
  const tokenPanel = page.getByTestId('token-panel');
  const shares = tokenPanel.getByTestId('replug-share');
  await expect(shares).toHaveCount(3);
  const values = await shares.evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-weight')) * Number(r.getAttribute('data-probability'))));
  const probability = Number(await tokenPanel.getByTestId('token-probability').getAttribute('data-probability'));
  expect(values.reduce((a, b) => a + b, 0)).toBeCloseTo(probability, 4);
});
