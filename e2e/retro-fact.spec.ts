import { expect, test } from './fixtures';

/**
 * The classroom case: a teacher loads a short text with a fact no model was trained on, prompts up
 * to the fact, and RETRO writes it, read through chunked cross-attention from the neighbour it
 * retrieved (token-aligned: the datastore needs kNN-LM keys, built here in the browser). The GPT,
 * with the same prompt and decoding, does not know it.
 */
const TEXT = [
  'The Zorbel Lighthouse stands on a basalt spur at the mouth of the Cray estuary .',
  'The keeper of the Zorbel Lighthouse is traditionally a woman named Orlaith Vessendrake , and the lamp of the lighthouse burns purple whale oil .',
  'The tower was rebuilt in 1874 after a storm , and its light can be seen for nineteen miles .',
].join('\n');
const PROMPT = 'The keeper of the Zorbel Lighthouse is traditionally a woman named';
const FACT = /Orlaith/;

test('RETRO writes an invented fact it retrieved from a datastore built in the browser; the GPT does not', async ({ app, page }) => {
  await app.goto({ backend: 'wasm' });
  await app.waitUntilReady();
  await app.buildKnnDatastore([{ name: 'zorbel.txt', mimeType: 'text/plain', buffer: Buffer.from(TEXT) }], 'Zorbel');
  await app.waitForBuildToFinish(150_000);
  await expect(app.buildError).toHaveCount(0);
  await expect.poll(() => app.activeDatastoreName()).toBe('Zorbel');
  // Greedy: what each model finds most likely. With the default sampling RETRO writes the name for
  // about half the seeds (11 of 20 measured, the GPT 0; docs/retro-training.md), too often not for a test.
  await page.getByLabel('Strategy').selectOption('greedy');
  await app.generate(PROMPT, { maxTokens: 8, timeout: 150_000 });
  const retro = page.getByTestId('output-retro');
  await expect(retro).toHaveAttribute('data-status', 'done');
  const state = await app.state();
  const written = (key: 'gpt' | 'retro') => state.runs[key]!.generated.map((t) => t.text).join('');
  expect(written('retro')).toMatch(FACT);
  expect(written('gpt')).not.toMatch(FACT);
  // The chunk that ends at the prompt retrieved the stored sentence.
  expect(state.runs.retro!.chunks.length).toBeGreaterThan(0);

  // Click the first token of the name in RETRO's column: the panel shows what RETRO predicted there
  // and the neighbour it read, with that token marked where the stored sentence holds it.
  const retroTokens = state.runs.retro!.generated;
  const nameAt = retroTokens.findIndex((t, i) => FACT.test(retroTokens.slice(0, i + 1).map((x) => x.text).join('')));
  const nameToken = retro.getByTestId('generated-token').nth(nameAt);
  await nameToken.click();
  const panel = page.getByTestId('token-panel');
  await expect(panel).toBeVisible();
  await expect(panel).toBeFocused();
  // Greedy: the written token is the model's first choice, and its probability is that row's.
  const rows = panel.getByTestId('alternative');
  await expect(rows).toHaveCount(5);
  await expect(rows.first()).toHaveAttribute('data-chosen', 'true');
  const probabilities = await rows.evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-probability'))));
  expect([...probabilities].sort((a, b) => b - a)).toEqual(probabilities);
  expect(Number(await panel.getByTestId('token-probability').getAttribute('data-probability'))).toBeCloseTo(probabilities[0]!, 6);
  const neighbours = panel.getByTestId('token-neighbour');
  expect(await neighbours.count()).toBeGreaterThan(0);
  await expect(neighbours.filter({ hasText: 'Orlaith' }).locator('mark.shared').first()).toBeVisible();
  // Esc closes the panel and gives focus back to the token.
  await page.keyboard.press('Escape');
  await expect(panel).toHaveCount(0);
  await expect(nameToken).toBeFocused();

  // The GPT's column explains itself the same way, without a retrieval section.
  await page.getByTestId('output-gpt').getByTestId('generated-token').first().click();
  await expect(panel.getByTestId('alternative')).toHaveCount(5);
  await expect(panel.getByTestId('token-retrieval')).toHaveCount(0);
  await page.keyboard.press('Escape');

  // The control: with random neighbours RETRO reads places drawn at random (the same ones for the
  // same prompt), the panel says they were not searched, and the name is gone.
  await app.openSettings();
  await page.getByRole('switch', { name: 'Random neighbours: RETRO' }).check();
  await app.closeSettings();
  await app.generate(PROMPT, { maxTokens: 8, timeout: 150_000 });
  const control = (await app.state()).runs.retro!;
  expect(control.chunks.length).toBeGreaterThan(0);
  expect(control.generated.map((t) => t.text).join('')).not.toMatch(FACT);
  await app.retrievedChunks().last().click();
  await expect(app.neighbours().first()).toContainText('random, not searched');
});
