import { expect, test } from './fixtures';
import { HURRICANE, LIGHTHOUSE, ORCHARD, textFile } from './texts';

test('In-Context RALM: the fourth column retrieves every s tokens and shows the passage it read', async ({ app, page }) => {
  await app.goto({ backend: 'wasm' });
  await app.waitUntilReady();
  await expect(page.getByTestId('column-icralm')).toHaveCount(0);
  await app.buildDatastore([textFile('lighthouse.txt', LIGHTHOUSE), textFile('hurricane.txt', HURRICANE), textFile('orchard.txt', ORCHARD)], 'Harbour');
  await app.waitForBuildToFinish();
  await expect.poll(() => app.activeDatastoreName()).toBe('Harbour');

  // Off by default; the switch adds the column.
  const toggle = page.getByRole('switch', { name: 'In-Context RALM column' });
  await expect(toggle).not.toBeChecked();
  await toggle.check();
  await expect(page.getByTestId('column-icralm')).toBeVisible();
  await expect(page.getByTestId('icralm-status')).toContainText('Harbour');

  await app.generate(LIGHTHOUSE.slice(0, 200), { maxTokens: 9 });
  const state = await app.state();
  const run = state.runs.icralm!;
  expect(run.status).toBe('done');
  // Same decoding settings (greedy) as the other columns.
  expect(run.generated.length).toBe(state.runs.gpt!.generated.length);
  // s = 4: retrievals at the prompt's end and every 4 tokens after it, each with the last 32 tokens as query.
  const promptLength = run.prompt.length;
  const generatedCount = run.generated.length;
  expect(run.chunks.map((c) => c.end)).toEqual(Array.from({ length: Math.ceil(generatedCount / 4) }, (_, i) => promptLength + 4 * i));
  for (const c of run.chunks) expect(c.end - c.start).toBe(Math.min(32, c.end));
  expect(run.chunks[0]!.neighbours[0]!.title).toContain('lighthouse');

  // A mark per retrieval; Enter on the first opens the passage placed before the context.
  const marks = app.output('icralm').getByTestId('icralm-passage');
  await expect(marks).toHaveCount(run.chunks.length);
  await marks.first().focus();
  await page.keyboard.press('Enter');
  const panel = page.getByTestId('icralm-passage-panel');
  await expect(panel).toBeVisible();
  await expect(panel.getByTestId('neighbour')).toHaveCount(1);
  await expect(panel.getByTestId('neighbour-title')).toContainText('lighthouse');

  // s = 2: twice as many retrievals.
  await app.field('Stride s').fill('2');
  await app.generate(LIGHTHOUSE.slice(0, 200), { maxTokens: 5 });
  const again = (await app.state()).runs.icralm!;
  expect(again.chunks.map((c) => c.end - again.prompt.length)).toEqual(Array.from({ length: Math.ceil(again.generated.length / 2) }, (_, i) => 2 * i));
});
