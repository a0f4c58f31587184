import { describe, expect, it } from 'vitest';
import type { BuildProgress } from '../../protocol/shard';
import { VoyLimitError } from '../retrieval/voy';
import { buildShard } from './builder';
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
