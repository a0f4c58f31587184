/**
 * BM25 over chunks: the scores are the textbook formula (minisearch's match-count factor divided
 * out), and on real chunks (WikiText-2 valid, the shipped tokenizer and chunking) a chunk's rare
 * words find that chunk first.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildShard } from '../datastore/builder';
import { Datastore } from '../datastore/datastore';
import { dataDir, loadModelFiles } from '../datastore/node';
import { parseDocuments } from '../datastore/parse';
import { BM25_PARAMETERS, Bm25Index, bm25Words } from './bm25';

/**
 * BM25 written out from Robertson & Zaragoza (2009) with the non-negative idf, to check the
 * library's numbers against. Document length: distinct words (minisearch's measure, see bm25.ts).
 */
function referenceScores(docs: string[], query: string, k1: number, b: number): number[] {
  const words = docs.map(bm25Words);
  const length = (w: string[]) => new Set(w).size;
  const avgdl = words.reduce((n, w) => n + length(w), 0) / docs.length;
  return words.map((doc) => {
    let score = 0;
    for (const term of bm25Words(query)) {
      const n = words.filter((w) => w.includes(term)).length;
      const tf = doc.filter((w) => w === term).length;
      if (tf === 0) continue;
      const idf = Math.log(1 + (docs.length - n + 0.5) / (n + 0.5));
      score += (idf * tf * (k1 + 1)) / (tf + k1 * (1 - b + (b * length(doc)) / avgdl));
    }
    return score;
  });
}

describe('Bm25Index', () => {
  const docs = [
    'The lighthouse keeper climbed the tower every night.',
    'A storm flooded the harbour and the lighthouse went dark; the keeper relit the lighthouse lamp.',
    'Apples and pears grew in the orchard behind the harbour.',
    'The tower clock struck nine.',
  ];

  it('scores each chunk with the BM25 formula (k1 1.2, b 0.75, no BM25+ offset), best first', () => {
    const index = Bm25Index.build(docs.length, (i) => docs[i]!);
    const query = 'lighthouse keeper tower harbour';
    const expected = referenceScores(docs, query, BM25_PARAMETERS.k, BM25_PARAMETERS.b);
    const hits = index.search(query, 4);
    expect(BM25_PARAMETERS).toEqual({ k: 1.2, b: 0.75, d: 0 });
    expect(hits.map((h) => h.id)).toEqual([0, 1, 3, 2].filter((i) => expected[i]! > 0).sort((x, y) => expected[y]! - expected[x]!));
    for (const h of hits) expect(h.score).toBeCloseTo(expected[h.id]!, 10);
    // Chunk 1 holds more query words but chunk 0 is short and dense with them: the formula, not the match count, decides.
    expect(hits[0]!.id).toBe(0);
  });

  it('drops stop words and <unk>, matches words case-insensitively, and skips excluded chunks', () => {
    expect(bm25Words('The <unk> Lighthouse , of 1887')).toEqual(['lighthouse', '1887']);
    const index = Bm25Index.build(docs.length, (i) => docs[i]!);
    expect(index.search('the of and', 3)).toEqual([]);
    expect(index.search('ORCHARD', 3).map((h) => h.id)).toEqual([2]);
    expect(index.search('lighthouse', 3, (id) => id === 0).map((h) => h.id)).toEqual([1]);
  });
});

describe('Bm25Index over a real chunk datastore', () => {
  let datastore: Datastore;
  let index: Bm25Index;

  beforeAll(async () => {
    const text = readFileSync(join(dataDir(), 'wikitext-2', 'wiki.valid.tokens'), 'utf8').slice(0, 60_000);
    const files = loadModelFiles({});
    const { shard } = await buildShard(parseDocuments(new TextEncoder().encode(text), 'valid.tokens', 'wikitext'), {
      name: 'Valid sample',
      tokenizer: files.tokenizer,
      embedder: files.embedder,
      chunkSize: files.chunkSize,
      neighbourLen: files.neighbourLen,
    });
    datastore = Datastore.fromShard(shard, files.embedder);
    const progress: number[] = [];
    index = Bm25Index.build(datastore.chunkCount, (c) => datastore.chunkText(c), { onProgress: (done) => void progress.push(done), progressEvery: 100 });
    expect(progress.at(-1)).toBe(datastore.chunkCount);
    expect(progress.length).toBeGreaterThan(1);
  }, 120_000);

  it('finds the chunk whose rare words the query holds first, among common words', () => {
    // Words that occur in exactly one chunk, grouped by that chunk: two of them and common words find it first.
    const df = new Map<string, Set<number>>();
    for (let c = 0; c < datastore.chunkCount; c++) for (const w of bm25Words(datastore.chunkText(c))) (df.get(w) ?? df.set(w, new Set()).get(w)!).add(c);
    const rareByChunk = new Map<number, string[]>();
    for (const [w, chunks] of df) if (chunks.size === 1 && w.length > 4 && !/\d/.test(w)) (rareByChunk.get([...chunks][0]!) ?? rareByChunk.set([...chunks][0]!, []).get([...chunks][0]!)!).push(w);
    const cases = [...rareByChunk].filter(([, words]) => words.length >= 2).slice(0, 20);
    expect(cases.length).toBe(20);
    for (const [chunk, words] of cases) {
      const hits = index.search(`the ${words[0]} of the city , ${words[1]} in the first year`, 5);
      expect(hits[0]!.id, words.join(' ')).toBe(chunk);
      expect(datastore.chunkText(hits[0]!.id).toLowerCase()).toContain(words[0]);
      expect(hits.map((h) => h.score)).toEqual([...hits.map((h) => h.score)].sort((a, b) => b - a));
    }
  });
});
