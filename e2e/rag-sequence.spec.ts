import { expect, test } from './fixtures';
import { HURRICANE, LIGHTHOUSE, ORCHARD, textFile } from './texts';

const values = (cells: import('@playwright/test').Locator) => cells.evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-value'))));

test('RAG-Sequence: thorough decoding picks the candidate with the best marginal; the lens shows each token’s passage posterior', async ({ app, page }) => {
  await app.goto({ backend: 'wasm' });
  await app.waitUntilReady();
  await app.buildDatastore([textFile('lighthouse.txt', LIGHTHOUSE), textFile('hurricane.txt', HURRICANE), textFile('orchard.txt', ORCHARD)], 'Harbour');
  await app.waitForBuildToFinish();
  await expect.poll(() => app.activeDatastoreName()).toBe('Harbour');
  await app.closeSettings();

  // Thorough decoding: three passages, a greedy candidate under each, every candidate scored under every passage.
  await app.prompt.fill(LIGHTHOUSE.slice(0, 200));
  const thorough = page.getByTestId('ragseq-thorough');
  await thorough.locator('summary').click();
  await thorough.getByLabel('RAG-Sequence k', { exact: true }).fill('3');
  await thorough.getByLabel('Tokens per candidate', { exact: true }).fill('6');
  await thorough.getByTestId('ragseq-decode').click();
  await expect(thorough.getByTestId('ragseq-result')).toBeVisible({ timeout: 120_000 });
  await expect(thorough.getByTestId('ragseq-passage')).toHaveCount(3);
  const candidates = thorough.getByTestId('ragseq-candidate');
  const n = await candidates.count();
  expect(n).toBeGreaterThanOrEqual(1);
  expect(n).toBeLessThanOrEqual(3);
  // Each candidate has its marginal and one score per passage; exactly one is chosen, the largest marginal, listed first.
  const marginals = await candidates.evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-marginal'))));
  expect(marginals.every(Number.isFinite)).toBe(true);
  await expect(candidates.first().locator('td')).toHaveCount(2 + 3);
  const chosen = await candidates.evaluateAll((rows) => rows.map((r) => r.getAttribute('data-chosen') === 'true'));
  expect(chosen.filter(Boolean)).toHaveLength(1);
  expect(chosen[0]).toBe(true);
  expect(marginals[0]).toBe(Math.max(...marginals));
  expect((await app.state()).generating).toBe(false);

  // The lens: RAG-Sequence over 16-token sequences with three passages.
  await app.openLens();
  await page.getByTestId('lens-source-text').check();
  await page.getByTestId('lens-text').fill(LIGHTHOUSE);
  await page.getByTestId('lens-model-retro').setChecked(false);
  await page.getByTestId('lens-model-ragseq').check();
  const lens = app.lens;
  await lens.getByLabel('RAG-Sequence k', { exact: true }).fill('3');
  await lens.getByLabel('RAG-Sequence span', { exact: true }).fill('16');
  await page.getByTestId('lens-run').click();
  await app.waitForLens();
  const ppl = await app.lensPerplexity('ragseq');
  expect(ppl.token).toBeGreaterThan(1);
  expect(Number.isFinite(ppl.token)).toBe(true);

  const view = page.getByTestId('ragseq-posterior');
  await expect(view).toBeVisible();
  await expect(view.getByTestId('ragseq-sequence-range')).toContainText('tokens 2–17');
  const prior = await values(view.getByTestId('ragseq-prior'));
  expect(prior).toHaveLength(3);
  expect(prior.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
  // Before each of the 16 tokens the three posteriors sum to 1; before the first they are the prior.
  const posterior = await view.getByTestId('ragseq-post').evaluateAll((els) => els.map((e) => ({ z: Number(e.getAttribute('data-passage')), i: Number(e.getAttribute('data-token')), v: Number(e.getAttribute('data-value')) })));
  expect(posterior).toHaveLength(3 * 16);
  for (let i = 0; i < 16; i++) {
    const column = posterior.filter((c) => c.i === i);
    expect(column.reduce((a, c) => a + c.v, 0)).toBeCloseTo(1, 5);
    if (i === 0) column.forEach((c) => expect(c.v).toBeCloseTo(prior[c.z]!, 5));
  }
  const after = await values(view.getByTestId('ragseq-post-after'));
  expect(after.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
  // The text moves the weights away from the retriever's prior: that is what RAG-Sequence adds to REPLUG.
  expect(Math.max(...after.map((a, z) => Math.abs(a - prior[z]!)))).toBeGreaterThan(0.01);
  await expect(view.getByTestId('ragseq-token-p')).toHaveCount(16);
  await expect(view.getByTestId('ragseq-attributed')).toBeVisible();

  // Another sequence: the view follows the number.
  await view.getByLabel('Sequence', { exact: true }).fill('2');
  await expect(view.getByTestId('ragseq-sequence-range')).toContainText('tokens 18–33');
});
