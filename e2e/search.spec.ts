import { expect, test } from './fixtures';
import { HURRICANE, LIGHTHOUSE, ORCHARD, textFile } from './texts';

test('Datastore search: BM25 and dense list the active datastore’s chunks; In-Context RALM reads a BM25 passage and says so', async ({ app, page }) => {
  await app.goto({ backend: 'wasm' });
  await app.waitUntilReady();
  await app.buildDatastore([textFile('lighthouse.txt', LIGHTHOUSE), textFile('hurricane.txt', HURRICANE), textFile('orchard.txt', ORCHARD)], 'Harbour');
  await app.waitForBuildToFinish();
  await expect.poll(() => app.activeDatastoreName()).toBe('Harbour');

  const search = page.getByTestId('datastore-search');
  const results = search.getByTestId('search-result');
  // Nothing typed: a message, no search.
  await search.getByRole('button', { name: 'Search', exact: true }).click();
  await expect(search.getByTestId('search-error')).toContainText('Type something');

  // BM25 (the default): "zebrafish" is in one document only, so its chunk comes first; Enter searches.
  await expect(app.field('Retriever')).toHaveValue('bm25');
  await app.field('Results').fill('3');
  await app.field('Search text').fill('a zebrafish in the harbour');
  await app.field('Search text').press('Enter');
  await expect(search.getByTestId('search-summary')).toContainText('BM25');
  await expect(search.getByTestId('search-error')).toHaveCount(0);
  const bm25Count = await results.count();
  expect(bm25Count).toBeGreaterThan(0);
  expect(bm25Count).toBeLessThanOrEqual(3);
  await expect(results.first()).toHaveAttribute('data-retriever', 'bm25');
  await expect(results.first().getByTestId('search-result-title')).toContainText('lighthouse');
  await expect(results.first().getByTestId('search-result-text')).toContainText('zebrafish');
  const scores = await search.getByTestId('search-result-score').evaluateAll((spans) => spans.map((s) => Number(s.getAttribute('data-score'))));
  expect(scores[0]).toBeGreaterThan(0);
  expect([...scores].sort((a, b) => b - a)).toEqual(scores);

  // Dense: the same box, the embedder's nearest chunks with their cosine distances.
  await app.field('Retriever').selectOption('dense');
  await app.field('Search text').press('Enter');
  await expect(search.getByTestId('search-summary')).toContainText('Dense');
  await expect(results).toHaveCount(3);
  await expect(results.first()).toHaveAttribute('data-retriever', 'dense');
  const distances = await search.getByTestId('search-result-score').evaluateAll((spans) => spans.map((s) => Number(s.getAttribute('data-distance'))));
  expect(distances.every((d) => Number.isFinite(d) && d >= 0 && d <= 2)).toBe(true);
  expect([...distances].sort((a, b) => a - b)).toEqual(distances);

  // Words no chunk holds: BM25 says so.
  await app.field('Retriever').selectOption('bm25');
  await app.field('Search text').fill('the of and');
  await app.field('Search text').press('Enter');
  await expect(search.getByTestId('search-none')).toBeVisible();

  // In-Context RALM with BM25: its passage comes from BM25 and the passage panel says which retriever found it.
  await page.getByRole('switch', { name: 'In-Context RALM column' }).check();
  await app.field('In-Context RALM retriever').selectOption('bm25');
  await app.generate(LIGHTHOUSE.slice(0, 200), { maxTokens: 5 });
  const run = (await app.state()).runs.icralm!;
  expect(run.status).toBe('done');
  expect(run.chunks.length).toBeGreaterThan(0);
  const passage = run.chunks[0]!.neighbours[0]!;
  expect(passage.retriever).toBe('bm25');
  expect(passage.score).toBeGreaterThan(0);
  expect(passage.title).toContain('lighthouse');
  await app.output('icralm').getByTestId('icralm-passage').first().click();
  const panel = page.getByTestId('icralm-passage-panel');
  await expect(panel.getByTestId('passage-retriever')).toHaveAttribute('data-retriever', 'bm25');
  await expect(panel.getByTestId('passage-retriever')).toContainText('BM25');
  await expect(panel.getByTestId('neighbour-score')).toContainText('BM25');
});
