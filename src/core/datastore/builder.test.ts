import { describe, expect, it } from 'vitest';
import type { BuildProgress } from '../../protocol/shard';
import { VoyLimitError } from '../retrieval/voy';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { buildShard, sliceEnd, tokenizeInSlices } from './builder';
import { InputTooLargeError } from './errors';
import { dataDir, findTokenizerPath, readTokenizer } from './node';
import { Datastore } from './datastore';
import { byteTokenizer, testEmbedder, TOY_DOCUMENTS } from './test-helpers';

const tokenizer = byteTokenizer();
const embedder = testEmbedder();

describe('buildShard', () => {
  it('builds a shard whose chunks, continuations and texts follow the chunking rule', async () => {
    const events: BuildProgress[] = [];
    const { shard, bytes, stats } = await buildShard(TOY_DOCUMENTS, {
      name: 'toy',
      tokenizer,
      embedder,
      chunkSize: 8,
      onProgress: (p) => events.push(p),
      sources: [{ name: 'toy.jsonl', bytes: 123, format: 'jsonl' }],
    });
    const expectedChunks = TOY_DOCUMENTS.reduce((n, d) => n + Math.ceil(new TextEncoder().encode(d.text).length / 8), 0);
    expect(stats.chunks).toBe(expectedChunks);
    expect(stats.documents).toBe(4);
    expect(stats.bytes).toBe(bytes.length);
    expect(stats.chunksPerSecond).toBeGreaterThan(0);
    expect(shard.meta.sources[0]!.name).toBe('toy.jsonl');
    expect(shard.meta.embedder.fingerprint).toBe(embedder.fingerprint);

    // Progress: phases in order, never past their totals, ending with 'done'.
    const order = ['tokenize', 'chunk', 'embed', 'index', 'encode', 'done'];
    const phases = events.map((e) => order.indexOf(e.phase));
    expect(phases.every((p, i) => p >= 0 && (i === 0 || p >= phases[i - 1]!))).toBe(true);
    expect(events.every((e) => e.done <= e.total)).toBe(true);
    expect(events.at(-1)!.phase).toBe('done');

    const ds = Datastore.fromShard(shard, embedder, bytes.length);
    TOY_DOCUMENTS.forEach((doc, d) => {
      const ids = tokenizer.encode(doc.text);
      const { first, end } = ds.documentChunks(d);
      expect(end - first).toBe(Math.ceil(ids.length / 8));
      let joined = '';
      for (let c = first; c < end; c++) {
        const nb = ds.neighbour(c);
        const start = (c - first) * 8;
        const want = ids.slice(start, start + 16);
        expect(nb.tokenIds).toEqual([...want, ...Array(16 - want.length).fill(tokenizer.eotId)]);
        expect(nb.chunkLength).toBe(Math.min(8, ids.length - start));
        expect(nb.continuationLength).toBe(Math.max(0, Math.min(8, ids.length - start - 8)));
        expect(nb.docId).toBe(d);
        expect(nb.title).toBe(doc.title);
        // Chunk texts tile the document; a character split between chunks goes with the chunk it starts in.
        joined += nb.text;
        expect(nb.continuationText).toBe(c + 1 < end ? ds.neighbour(c + 1).text : '');
      }
      expect(joined).toBe(doc.text);
    });
  });

  it('can be cancelled through its AbortSignal', async () => {
    const controller = new AbortController();
    const many = Array.from({ length: 300 }, (_, i) => ({ title: `d${i}`, text: 'some words here '.repeat(50) }));
    const run = buildShard(many, {
      name: 'big',
      tokenizer,
      embedder,
      chunkSize: 4,
      yieldEveryMs: 0,
      onProgress: (p) => {
        if (p.phase === 'embed') controller.abort();
      },
      signal: controller.signal,
    });
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('refuses a voy index past its limit before embedding anything', async () => {
    let embedded = false;
    const run = buildShard([{ title: 'long', text: 'x'.repeat(20_001) }], {
      name: 'too big for voy',
      tokenizer,
      embedder,
      chunkSize: 1,
      indexKind: 'voy',
      onProgress: (p) => {
        if (p.phase === 'embed') embedded = true;
      },
    });
    await expect(run).rejects.toBeInstanceOf(VoyLimitError);
    expect(embedded).toBe(false);
  });

  it('refuses an embedder smaller than the tokenizer and input without text', async () => {
    await expect(buildShard(TOY_DOCUMENTS, { name: 'x', tokenizer, embedder: testEmbedder(100), chunkSize: 8 })).rejects.toThrow(/embedder only 100 rows/);
    await expect(buildShard([{ title: 'e', text: '' }], { name: 'x', tokenizer, embedder, chunkSize: 8 })).rejects.toMatchObject({ name: 'EmptyInputError' });
  });
});

/** Tokenizing 300 KB twice takes 2 s on an idle machine; a loaded 2-core one has taken 85 s. */
const SLOW = 300_000;

describe('streamed tokenization', () => {
  const real = readTokenizer(findTokenizerPath()!);
  const text = readFileSync(join(dataDir(), 'wikitext-2', 'wiki.valid.tokens'), 'utf8').slice(0, 300_000) + ' Café Zürich 東京 😀 end';

  it('encodes slice by slice to exactly the ids and bytes of the whole text', async () => {
    let slices = 0;
    const { ids, bytes } = await tokenizeInSlices(real, text, async () => void slices++, 4096);
    expect(slices).toBeGreaterThan(70);
    expect(Array.from(ids)).toEqual(real.encode(text));
    expect(bytes).toEqual(new TextEncoder().encode(text));
  }, SLOW);

  it('ends slices before a space between two words, and never inside a surrogate pair', () => {
    expect(sliceEnd('alpha beta gamma', 0, 8)).toBe(5);
    expect(sliceEnd('short', 0, 100)).toBe(5);
    const emoji = 'x'.repeat(7) + '😀' + 'y'.repeat(10);
    expect(sliceEnd(emoji, 0, 8)).toBe(7);
  });

  it('reports tokenizing progress in bytes as it goes, and Cancel stops it between slices', async () => {
    const big = text.repeat(3);
    const events: BuildProgress[] = [];
    const controller = new AbortController();
    const build = buildShard([{ title: 'big.txt', text: big }], {
      name: 'big',
      tokenizer: real,
      embedder: testEmbedder(real.vocabSize),
      chunkSize: 8,
      yieldEveryMs: 0,
      signal: controller.signal,
      onProgress: (p) => {
        events.push(p);
        if (p.phase === 'tokenize' && p.done > 0) controller.abort();
      },
    });
    await expect(build).rejects.toMatchObject({ name: 'AbortError' });
    const tokenizing = events.filter((e) => e.phase === 'tokenize');
    expect(tokenizing[0]).toMatchObject({ unit: 'bytes', done: 0, total: new TextEncoder().encode(big).length });
    // Stopped in the first part of the text, not after tokenizing all of it.
    expect(tokenizing.at(-1)!.done).toBeLessThan(tokenizing[0]!.total / 4);
  });

  it('refuses text past maxTokens while tokenizing, with a message that names the limit', async () => {
    const build = buildShard([{ title: 'big.txt', text }], { name: 'big', tokenizer: real, embedder: testEmbedder(real.vocabSize), chunkSize: 8, maxTokens: 20_000 });
    await expect(build).rejects.toThrow(InputTooLargeError);
    await expect(build).rejects.toThrow(/big\.txt: more than 20,000 tokens .*npm run datastore -- build/);
  });
});
