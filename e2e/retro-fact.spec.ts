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
});
