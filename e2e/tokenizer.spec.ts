import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import tokenizers from 'tokenizers';
import type { RetroLabTestHook } from '../src/client/testHook';
import { expect, test } from './fixtures';

/**
 * The browser's tokenizer (pure-JS @huggingface/tokenizers in the inference worker) must give the
 * ids the Rust `tokenizers` library gives in Node for the same tokenizer.json: the models were
 * trained, and the datastores built, on the Rust ids.
 */
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DATA_DIR = process.env.RETROLAB_DATA ? resolve(process.env.RETROLAB_DATA) : resolve(REPO_ROOT, '..', 'shared', 'data');
const VALID_PATH = join(DATA_DIR, 'wikitext-2', 'wiki.valid.tokens');
const TOKENIZER_PATH = join(REPO_ROOT, 'public', 'models', 'gpt-wt2', 'tokenizer.json');

/** About the first 20,000 characters of WikiText-2 valid, cut at a line end (no half lines or surrogates). */
function wikiTextSample(): string {
  const text = readFileSync(VALID_PATH, 'utf8');
  const end = text.lastIndexOf('\n', 20_000);
  return text.slice(0, end > 0 ? end + 1 : 20_000);
}

const NON_ASCII = 'Zürich — 東京 <unk> café';

async function nodeIds(text: string): Promise<number[]> {
  const native = tokenizers.Tokenizer.fromFile(TOKENIZER_PATH);
  return (await native.encode(text, null, { addSpecialTokens: false })).getIds();
}

test.describe('tokenizer in the browser', () => {
  test.skip(!existsSync(VALID_PATH), `WikiText-2 is not at ${VALID_PATH} (set RETROLAB_DATA)`);
  test.skip(!existsSync(TOKENIZER_PATH), `no tokenizer at ${TOKENIZER_PATH}`);

  test('gives the same ids as the Rust tokenizers library in Node, and decodes them back', async ({ app }) => {
    const texts = { wikitext: wikiTextSample(), nonAscii: NON_ASCII };
    expect(texts.wikitext.length).toBeGreaterThan(19_000);

    await app.goto({ backend: 'wasm' });
    await app.waitUntilReady();

    const browser = await app.page.evaluate(async (inputs) => {
      const hook = (window as unknown as { __retrolab: RetroLabTestHook }).__retrolab;
      const out: Record<string, { ids: number[]; decoded: string }> = {};
      for (const [name, text] of Object.entries(inputs)) {
        const ids = await hook.encode(text);
        out[name] = { ids, decoded: await hook.decode(ids) };
      }
      return out;
    }, texts);

    for (const [name, text] of Object.entries(texts)) {
      const expected = await nodeIds(text);
      const got = browser[name]!;
      expect(got.ids.length, `${name}: id count`).toBe(expected.length);
      expect(got.ids, `${name}: ids`).toEqual(expected);
      expect(got.decoded, `${name}: decode(encode(x)) === x`).toBe(text);
    }

    expect(browser.wikitext!.ids.length).toBeGreaterThan(1000);
    // WikiText's unknown-word marker is one special token (id 0), also inside other text.
    expect(texts.wikitext).toContain('<unk>');
    expect(browser.nonAscii!.ids).toContain(0);
    expect(browser.nonAscii!.ids.length).toBeGreaterThan(1);
    expect(app.consoleErrors).toEqual([]);
  });
});
