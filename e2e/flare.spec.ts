import { readFileSync } from 'node:fs';
import { expect, test } from './fixtures';
import { HURRICANE, LIGHTHOUSE, ORCHARD, textFile } from './texts';

test('FLARE: the column retrieves only where a look-ahead token is below θ, marks those places and counts them', async ({ app, page }) => {
  await app.goto({ backend: 'wasm' });
  await app.waitUntilReady();
  await expect(page.getByTestId('column-flare')).toHaveCount(0);
  await app.buildDatastore([textFile('lighthouse.txt', LIGHTHOUSE), textFile('hurricane.txt', HURRICANE), textFile('orchard.txt', ORCHARD)], 'Harbour');
  await app.waitForBuildToFinish();
  await expect.poll(() => app.activeDatastoreName()).toBe('Harbour');

  // Off by default; θ = 1 retrieves at every look-ahead (every probability is below 1).
  await app.openSettings();
  const toggle = page.getByRole('switch', { name: 'FLARE column' });
  await expect(toggle).not.toBeChecked();
  await toggle.check();
  await app.field('Look-ahead').fill('4');
  await app.field('θ (retrieve below)').fill('1');
  await expect(page.getByTestId('flare-status')).toContainText('Harbour');
  await app.closeSettings();
  await expect(page.getByTestId('column-flare')).toBeVisible();
  // Its header shows FLARE's own WikiText-2 test perplexity (npm run eval --flare, two parts merged).
  const metrics = (JSON.parse(readFileSync('public/models/gpt-wt2/manifest.json', 'utf8')) as { metrics: Record<string, { word_ppl: number }> }).metrics;
  await expect(page.getByTestId('column-flare').locator('.model-meta')).toContainText(`test perplexity ${metrics.wt2_test_flare!.word_ppl.toFixed(1)}`);

  await app.generate(LIGHTHOUSE.slice(0, 200), { maxTokens: 8 });
  let state = await app.state();
  let run = state.runs.flare!;
  expect(run.status).toBe('done');
  expect(run.generated.length).toBe(state.runs.gpt!.generated.length);
  // A decision at the prompt's end and after 4 tokens, both retrieved, each with its look-ahead.
  expect(run.chunks.map((c) => c.end - run.prompt.length)).toEqual([0, 4]);
  for (const c of run.chunks) {
    expect(c.flare!.retrieved).toBe(true);
    expect(c.flare!.lookahead).toHaveLength(4);
    expect(c.neighbours).toHaveLength(1);
  }
  const marks = app.output('flare').getByTestId('flare-trigger');
  await expect(marks).toHaveCount(2);
  await expect(page.getByTestId('column-flare').getByTestId('flare-footer')).toHaveAttribute('data-retrieved', '2');

  // The mark opens what FLARE saw: the look-ahead with each probability, the triggers, the query and the passage.
  await marks.first().click();
  const decision = page.getByTestId('flare-decision');
  await expect(decision).toBeVisible();
  await expect(decision.getByTestId('flare-lookahead-token')).toHaveCount(4);
  await expect(decision.locator('[data-trigger="true"]')).toHaveCount(4);
  const panel = page.getByTestId('flare-passage-panel');
  await expect(panel.getByTestId('neighbour')).toHaveCount(1);
  // The query is the recent text followed by the look-ahead (θ = 1 with β = the default keeps its likely tokens).
  await expect(panel.locator('.query')).toContainText('Query (recent text + masked look-ahead)');
  await page.keyboard.press('Escape');

  // A θ between the look-ahead probabilities: retrieval exactly where a token fell below it, and a mark only there.
  await app.openSettings();
  await app.field('θ (retrieve below)').fill('0.2');
  await app.closeSettings();
  await app.generate(LIGHTHOUSE.slice(0, 200), { maxTokens: 24 });
  state = await app.state();
  run = state.runs.flare!;
  expect(run.chunks).toHaveLength(6);
  let retrieved = 0;
  for (const c of run.chunks) {
    const below = c.flare!.lookahead.flatMap((t, i) => (t.probability < 0.2 ? [i] : []));
    expect(c.flare!.triggers).toEqual(below);
    expect(c.flare!.retrieved).toBe(below.length > 0);
    expect(c.neighbours).toHaveLength(below.length > 0 ? 1 : 0);
    if (below.length > 0) retrieved++;
  }
  await expect(marks).toHaveCount(retrieved);
  const footer = page.getByTestId('column-flare').getByTestId('flare-footer');
  await expect(footer).toHaveAttribute('data-retrieved', String(retrieved));
  await expect(footer).toHaveAttribute('data-decisions', '6');
});
