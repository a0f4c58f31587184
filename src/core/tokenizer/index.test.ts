import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import tokenizers from 'tokenizers';
import { describe, expect, it } from 'vitest';
import { dataDir, findTokenizerPath } from '../datastore/node';
import { idsDigest, loadTokenizer, splitWikiTextArticles, tokenDigest, TokenizerFormatError } from './index';

const tokenizerPath = findTokenizerPath();
const validPath = join(dataDir(), 'wikitext-2', 'wiki.valid.tokens');
const haveFiles = tokenizerPath !== null && existsSync(validPath);

describe.skipIf(!haveFiles)('RetroLab tokenizer (shipped tokenizer.json, WikiText-2 valid)', () => {
  const json = JSON.parse(readFileSync(tokenizerPath!, 'utf8'));
  const tok = loadTokenizer(json);
  const valid = readFileSync(validPath, 'utf8');

  it('declares the special tokens RetroLab relies on', () => {
    expect(tok.vocabSize).toBe(8192);
    expect(tok.unkId).toBe(0);
    expect(tok.eotId).toBe(1);
    expect(tok.encode('<unk>')).toEqual([0]);
    expect(tok.encode('a <unk> b<|endoftext|>')).toContain(1);
    expect(tok.id).toMatch(/^bpe8192-[0-9a-f]{8}$/);
    expect(loadTokenizer(json, { id: 'wt2-bpe-8k' }).id).toBe('wt2-bpe-8k');
  });

  it('round-trips the whole valid split exactly', () => {
    const ids = tok.encode(valid);
    expect(ids.length).toBeGreaterThan(200_000);
    expect(tok.decode(ids)).toBe(valid);
  });

  it('round-trips text outside WikiText (unicode, emoji, odd whitespace)', () => {
    for (const s of ['Ünïcödé 日本語 🎉', 'tabs\t\tand\r\nCRLF  double  spaces ', ' @-@ 1 @,@ 000 @.@ 5 ', '']) {
      expect(tok.decode(tok.encode(s))).toBe(s);
    }
  });

  it('token byte lengths add up to the UTF-8 length (chunk text offsets rely on it)', () => {
    for (const s of [valid.slice(0, 20_000), 'Ünïcödé 日本語 🎉 <unk> <|endoftext|>']) {
      const total = tok.encode(s).reduce((n, id) => n + tok.tokenByteLength(id), 0);
      expect(total).toBe(new TextEncoder().encode(s).length);
    }
  });

  it('produces the same ids as the Rust tokenizers library on every valid article', async () => {
    const native = tokenizers.Tokenizer.fromFile(tokenizerPath!);
    const articles = splitWikiTextArticles(valid);
    expect(articles.length).toBeGreaterThan(50);
    const encoded = await native.encodeBatch(articles.map((a) => a.text));
    const ours = tok.encodeDocuments(articles.map((a) => a.text));
    let mismatches = 0;
    encoded.forEach((e, i) => {
      if (idsDigest(e.getIds()) !== idsDigest(ours[i]!)) mismatches++;
    });
    expect(mismatches).toBe(0);
    // The whole file as one string too (what a browser e2e test can digest in one call).
    expect(tokenDigest(tok, valid)).toBe(idsDigest((await native.encode(valid)).getIds()));
  });
});

describe('loadTokenizer input checks', () => {
  it('refuses things that are not a byte-level BPE tokenizer.json', () => {
    expect(() => loadTokenizer(null)).toThrow(TokenizerFormatError);
    expect(() => loadTokenizer({ model: { type: 'BPE' } })).toThrow(/tokenizer.json/);
    expect(() => loadTokenizer({ added_tokens: [], model: { type: 'WordPiece', vocab: {}, merges: [] } })).toThrow(/BPE/);
    expect(() => loadTokenizer({ added_tokens: [], model: { type: 'BPE', vocab: { a: 0 }, merges: [] } })).toThrow(/<unk>/);
  });

  it('digests ids compactly and order-sensitively', () => {
    expect(idsDigest([1, 2, 3])).toMatch(/^3:[0-9a-f]{8}$/);
    expect(idsDigest([1, 2, 3])).not.toBe(idsDigest([3, 2, 1]));
  });
});
