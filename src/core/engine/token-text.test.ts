import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadTokenizer } from '../tokenizer';
import { TokenBytes, TokenTexts } from './token-text';

const json: unknown = JSON.parse(readFileSync(new URL('../../../public/models/retro-wt2/tokenizer.json', import.meta.url), 'utf8'));
const tokenizer = loadTokenizer(json);
const texts = new TokenTexts(new TokenBytes(json));

describe('TokenTexts', () => {
  // Multi-byte characters: byte-level BPE splits some of them across tokens.
  const sample = 'Café Zürich — “naïve” façade, 東京 and Ωmega; = Valkyria Chronicles III = \n <unk> @-@ 1911\n';

  it('streams per-token text that joins to exactly what the tokenizer decodes', () => {
    const ids = tokenizer.encode(sample);
    texts.start();
    const views = texts.views(ids);
    expect(views.map((v) => v.text).join('')).toBe(tokenizer.decode(ids));
    expect(views.map((v) => v.text).join('')).toBe(sample);
    expect(views.some((v) => v.text.includes('\uFFFD'))).toBe(false);
  });

  it('standalone decoding of a neighbour matches too, and keeps one view per token', () => {
    const ids = tokenizer.encode('東京 tower');
    const views = texts.standalone(ids);
    expect(views).toHaveLength(ids.length);
    expect(views.map((v) => v.id)).toEqual(ids);
    expect(views.map((v) => v.text).join('')).toBe('東京 tower');
  });

  it('knows the special tokens as text', () => {
    const bytes = new TokenBytes(json);
    expect(new TextDecoder().decode(bytes.of(tokenizer.eotId))).toBe('<|endoftext|>');
    expect(new TextDecoder().decode(bytes.of(tokenizer.unkId))).toBe('<unk>');
  });
});
