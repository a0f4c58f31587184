import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { dataDir, findTokenizerPath, loadVoyForNode, readTokenizer, REPO_ROOT, syntheticEmbedderBytes } from './node';
import { MeanEmbedder } from '../retrieval/embedder';
import { parseDocuments } from './parse';
import { buildShard } from './builder';
import { Datastore } from './datastore';
import { ShardMismatchError } from './errors';
import { encodeShard } from './shard';
import { byteTokenizer, testEmbedder, TOY_DOCUMENTS } from './test-helpers';

const tokenizer = byteTokenizer();
const embedder = testEmbedder();

function seeded(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
}

describe('Datastore', () => {
  beforeAll(loadVoyForNode);

  async function toyBytes(indexKind: 'flat' | 'voy' = 'flat') {
    return (await buildShard(TOY_DOCUMENTS, { name: 'toy', tokenizer, embedder, chunkSize: 8, indexKind })).bytes;
  }

  it('retrieves a stored chunk as its own nearest neighbour, with text and continuation', async () => {
    const ds = await Datastore.open(await toyBytes(), embedder);
    const target = ds.neighbour(3);
    const hits = ds.retrieve(target.tokenIds.slice(0, target.chunkLength), 4);
    expect(hits).toHaveLength(4);
    expect(hits[0]!.chunkIndex).toBe(3);
    expect(Math.abs(hits[0]!.distance)).toBeLessThan(1e-6);
    expect(hits[0]!.text).toBe(target.text);
    expect(hits[0]!.tokenIds).toHaveLength(16);
    for (let i = 1; i < hits.length; i++) expect(hits[i]!.distance).toBeGreaterThanOrEqual(hits[i - 1]!.distance);
    const summary = ds.summary;
    expect(summary.chunks).toBe(ds.chunkCount);
    expect(summary.documents).toBe(4);
    expect(summary.indexKind).toBe('flat');
    expect(summary.bytes).toBeGreaterThan(0);
    expect(summary.sectionBytes.embeddingCodes).toBe(ds.chunkCount * 16);
  });

  it('never returns chunks of excluded documents', async () => {
    const ds = await Datastore.open(await toyBytes(), embedder);
    const query = ds.neighbour(0).tokenIds.slice(0, 8);
    const hits = ds.retrieve(query, ds.chunkCount, { excludeDocIds: [0, 2] });
    expect(hits.length).toBe(ds.chunkCount - (ds.documentChunks(0).end - ds.documentChunks(0).first) - 1);
    expect(hits.some((h) => h.docId === 0 || h.docId === 2)).toBe(false);
  });

  it('draws random neighbours uniformly, reproducibly for a seeded rng', async () => {
    const ds = await Datastore.open(await toyBytes(), embedder);
    const a = ds.randomNeighbours(5, seeded(1)).map((n) => n.chunkIndex);
    expect(ds.randomNeighbours(5, seeded(1)).map((n) => n.chunkIndex)).toEqual(a);
    expect(Number.isNaN(ds.randomNeighbours(1, seeded(2))[0]!.distance)).toBe(true);
    const withQuery = ds.randomNeighbours(3, seeded(3), ds.neighbour(0).tokenIds.slice(0, 8));
    expect(withQuery.every((n) => n.distance >= 0 && n.distance <= 2)).toBe(true);
    const counts = new Array(ds.chunkCount).fill(0);
    for (const n of ds.randomNeighbours(ds.chunkCount * 200, seeded(4))) counts[n.chunkIndex]++;
    expect(Math.min(...counts)).toBeGreaterThan(100);
  });

  it('refuses an embedder other than the one the shard was built with', async () => {
    const bytes = await toyBytes();
    await expect(Datastore.open(bytes, testEmbedder(258, 16, 6))).rejects.toBeInstanceOf(ShardMismatchError);
    await expect(Datastore.open(bytes, testEmbedder(258, 16, 6))).rejects.toThrow(/Rebuild the datastore/);
  });

  it('gives the same neighbours over voy as over the flat index, and switches kinds', async () => {
    const flat = await Datastore.open(await toyBytes('flat'), embedder);
    const voy = await Datastore.open(await toyBytes('voy'), embedder);
    expect(voy.summary.indexKind).toBe('voy');
    expect(voy.summary.sectionBytes.index).toBeGreaterThan(1000);
    const switched = flat.withIndexKind('voy');
    const reopened = await Datastore.open(encodeShard(switched.toShard()), embedder);
    expect(reopened.index.kind).toBe('voy');
    for (let c = 0; c < flat.chunkCount; c += 2) {
      const q = flat.neighbour(c).tokenIds.slice(0, 5);
      const want = flat.search(q, 3);
      for (const ds of [voy, switched, reopened]) {
        const got = ds.search(q, 3);
        expect(Array.from(got.distances)).toEqual(Array.from(want.distances));
        expect(new Set(got.ids)).toEqual(new Set(want.ids));
      }
    }
  });
});

// Parity with the Python pipeline (models/retrolab/data.py + FAISS): same chunks, same neighbours.
const tokenizerPath = findTokenizerPath();
const validPath = join(dataDir(), 'wikitext-2', 'wiki.valid.tokens');
const hasPython = existsSync('/usr/bin/python3') && (() => {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import numpy, faiss'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!tokenizerPath || !existsSync(validPath) || !hasPython)('parity with models/retrolab (WikiText-2 valid, synthetic embedder)', () => {
  it('builds the rows of build_datastore and finds the neighbours FAISS finds', async () => {
    const tok = readTokenizer(tokenizerPath!);
    const vocab = tok.vocabSize, dim = 64;
    const embBytes = syntheticEmbedderBytes(vocab, dim, 3);
    const emb = MeanEmbedder.fromBytes(embBytes, vocab, dim);
    const docs = parseDocuments(new Uint8Array(readFileSync(validPath)), 'wiki.valid.tokens', 'wikitext');
    const { shard, stats } = await buildShard(docs, { name: 'valid', tokenizer: tok, embedder: emb, chunkSize: 32 });
    const ds = Datastore.fromShard(shard, emb);

    // The Python side tokenizes nothing: give it our token stream the way cli/prepare-corpus.ts writes it.
    const dir = mkdtempSync(join(tmpdir(), 'retrolab-parity-'));
    const ids = tok.encodeDocuments(docs.map((d) => d.text));
    const stream = new Uint16Array(ids.reduce((n, d) => n + d.length, 0));
    const meta: { title: string; start: number; length: number }[] = [];
    let o = 0;
    ids.forEach((d, i) => {
      stream.set(d, o);
      meta.push({ title: docs[i]!.title, start: o, length: d.length });
      o += d.length;
    });
    writeFileSync(join(dir, 'valid.ids.u16'), stream);
    writeFileSync(join(dir, 'valid.docs.json'), JSON.stringify(meta));
    writeFileSync(join(dir, 'embedder.bin'), embBytes);
    // Queries: stream chunks of the test split's first article-sized stretch, as the eval does.
    const queries: number[][] = [];
    for (let q = 0; q < 200; q++) {
      const start = ((q * 7919) % Math.floor(stream.length / 32)) * 32;
      queries.push(Array.from(stream.subarray(start, start + 32)).map((id, j) => (j % 11 === q % 11 ? (id * 31 + q) % vocab : id)));
    }
    writeFileSync(join(dir, 'queries.json'), JSON.stringify(queries));
    const script = `
import json, sys, numpy as np
from retrolab.data import MeanEmbedder, build_datastore, load_split, search
d = sys.argv[1]; vocab, dim = ${vocab}, ${dim}
store = build_datastore([load_split(d, 'valid')], 32)
store.neighbour_tokens.astype('<i4').tofile(d + '/rows.i32')
store.chunk_lengths.astype('<i4').tofile(d + '/lengths.i32')
raw = np.fromfile(d + '/embedder.bin', dtype=np.uint8)
e = MeanEmbedder(raw[:vocab*dim].view(np.int8).reshape(vocab, dim), raw[vocab*dim:].view('<f4'))
keys = e.embed(store.neighbour_tokens[:, :32], store.chunk_lengths)
q = e.embed(np.array(json.load(open(d + '/queries.json')), dtype=np.int64))
scores, ids = search(keys, q, 10)
ids.astype('<i4').tofile(d + '/ids.i32'); scores.astype('<f4').tofile(d + '/scores.f32')
`;
    execFileSync('/usr/bin/python3', ['-c', script, dir], { env: { ...process.env, PYTHONPATH: join(REPO_ROOT, 'models') } });
    const read = (f: string) => new Uint8Array(readFileSync(join(dir, f))).buffer;
    const rows = new Int32Array(read('rows.i32'));
    expect(rows.length).toBe(shard.tokens.length);
    expect(Array.from(rows).every((id, i) => id === shard.tokens[i])).toBe(true);
    expect(Array.from(new Int32Array(read('lengths.i32')))).toEqual(Array.from(shard.chunkLengths));

    const pyIds = new Int32Array(read('ids.i32'));
    const pyScores = new Float32Array(read('scores.f32'));
    let same = 0, maxScoreDiff = 0;
    queries.forEach((q, i) => {
      const got = ds.search(q, 10);
      for (let r = 0; r < 10; r++) {
        maxScoreDiff = Math.max(maxScoreDiff, Math.abs(1 - got.distances[r]! - pyScores[i * 10 + r]!));
        if (got.ids[r] === pyIds[i * 10 + r]) same++;
      }
    });
    // Identical up to float32 rounding: FAISS sums in float32, so exact ties and 1e-7 gaps may swap.
    expect(maxScoreDiff).toBeLessThan(1e-5);
    expect(same / 2000).toBeGreaterThanOrEqual(0.995);
    expect(stats.chunks).toBe(shard.chunkLengths.length);
  });
});

// The default WikiText-2 datastore (npm run setup:datastores) must hold exactly the chunks the
// Python pipeline trains and evaluates with (models/.work/data from cli/prepare-corpus.ts).
const defaultShard = join(REPO_ROOT, 'public', 'datastores', 'wikitext-2-train.rlds');
// npm test prepares the ids into .cache/prepared-corpus where the pipeline has not run (a fresh clone).
const pythonCorpus = process.env.RETROLAB_PREPARED_CORPUS ?? join(REPO_ROOT, 'models', '.work', 'data');
describe.skipIf(!existsSync(defaultShard) || !existsSync(join(pythonCorpus, 'train.ids.u16')))('default WikiText-2 datastore', () => {
  it('has the chunk rows of models/retrolab/data.py build_datastore over the prepared train split', async () => {
    const { decodeShard } = await import('./shard');
    const shard = decodeShard(new Uint8Array(readFileSync(defaultShard)));
    const stream = new Uint16Array(new Uint8Array(readFileSync(join(pythonCorpus, 'train.ids.u16'))).buffer);
    const docs = JSON.parse(readFileSync(join(pythonCorpus, 'train.docs.json'), 'utf8')) as { title: string; start: number; length: number }[];
    const { chunkSize: C, neighbourLen: L } = shard;
    expect(shard.titles.length).toBe(docs.length);
    let r = 0, mismatches = 0;
    for (const d of docs) {
      for (let s = 0; s < d.length; s += C, r++) {
        for (let j = 0; j < L; j++) {
          const want = s + j < d.length ? stream[d.start + s + j]! : shard.eotId;
          if (shard.tokens[r * L + j] !== want) mismatches++;
        }
        if (shard.chunkLengths[r] !== Math.min(C, d.length - s)) mismatches++;
      }
    }
    expect(r).toBe(shard.chunkLengths.length);
    expect(mismatches).toBe(0);
  });
});
