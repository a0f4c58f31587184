/**
 * BM25 through the retrieval engine's API, as the search box and the In-Context RALM / REPLUG hosts
 * reach it: the index is built on the first BM25 search (reported as 'bm25-index'), kept for the
 * datastore, and answers exactly what a Bm25Index over the same chunks answers; the neighbour server
 * decodes token-id queries to words; a removed datastore takes its index with it.
 */
import 'fake-indexeddb/auto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Progress } from '../../protocol/api';
import { buildShard } from '../datastore/builder';
import { Datastore } from '../datastore/datastore';
import { dataDir, loadModelFiles, REPO_ROOT } from '../datastore/node';
import { parseDocuments } from '../datastore/parse';
import { DatastoreStore } from '../datastore/store';
import { Bm25Index } from '../retrieval/bm25';
import { nodeFolder } from './node-folder';
import { RetrievalEngine } from './retrieval';

const TEXT = readFileSync(join(dataDir(), 'wikitext-2', 'wiki.valid.tokens'), 'utf8').slice(0, 100_000);

describe('RetrievalEngine: BM25', () => {
  let dir: string;
  let engine: RetrievalEngine;
  let reference: Bm25Index;
  let datastore: Datastore;
  const files = loadModelFiles({});

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'retrolab-bm25-'));
    symlinkSync(join(REPO_ROOT, 'public', 'models'), join(dir, 'models'));
    mkdirSync(join(dir, 'datastores'));
    const { bytes, shard } = await buildShard(parseDocuments(new TextEncoder().encode(TEXT), 'valid.tokens', 'wikitext'), {
      name: 'Valid sample',
      tokenizer: files.tokenizer,
      embedder: files.embedder,
      chunkSize: files.chunkSize,
      neighbourLen: files.neighbourLen,
    });
    writeFileSync(join(dir, 'datastores', 'valid-sample.rlds'), bytes);
    const entry = { id: 'valid-sample', name: 'Valid sample', file: 'valid-sample.rlds', bytes: bytes.length, embedder_fingerprint: shard.meta.embedder.fingerprint };
    writeFileSync(join(dir, 'datastores', 'index.json'), JSON.stringify({ format_version: 1, datastores: [entry] }));
    datastore = Datastore.fromShard(shard, files.embedder);
    reference = Bm25Index.build(datastore.chunkCount, (c) => datastore.chunkText(c));
    engine = new RetrievalEngine({ folder: nodeFolder(dir), openStore: () => DatastoreStore.open(`bm25-test-${process.pid}`) });
    await engine.init('http://retrolab.test/', () => undefined);
  }, 120_000);

  afterAll(() => {
    engine?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('builds the index on the first BM25 search, with progress, and returns what the index returns', async () => {
    const query = 'a conspicuous pair of claws';
    const progress: Progress[] = [];
    const result = await engine.retrieveText(query, 4, [], 'bm25', (p) => void progress.push(p));
    const built = progress.filter((p) => p.kind === 'bm25-index');
    expect(built.at(-1)).toMatchObject({ datastoreId: 'valid-sample', done: datastore.chunkCount, total: datastore.chunkCount, finished: true });
    const expected = reference.search(query, 4);
    expect(result.neighbours.map((n) => n.chunkIndex)).toEqual(expected.map((h) => h.id));
    for (const [i, n] of result.neighbours.entries()) {
      expect(n.retriever).toBe('bm25');
      expect(n.score).toBeCloseTo(expected[i]!.score, 10);
      expect(Number.isNaN(n.distance)).toBe(true);
    }
    expect(result.neighbours[0]!.text).toContain('conspicuous pair of claws');
    expect(result.neighbours[0]!.title).toContain('Homarus gammarus');

    // Kept: a second search builds nothing.
    const again: Progress[] = [];
    await engine.retrieveText('European lobster', 2, [], 'bm25', (p) => void again.push(p));
    expect(again).toEqual([]);

    // Dense is unchanged and says so.
    const dense = await engine.retrieveText(query, 4);
    expect(dense.neighbours.every((n) => n.retriever === 'dense' && Number.isFinite(n.distance) && n.score === undefined)).toBe(true);
  });

  it('serves token-id queries by their words, and leaves out excluded documents', async () => {
    const ids = files.tokenizer.encode(' Mating occurs in the summer , producing eggs');
    const served = await engine.neighbourServer.retrieve(ids, 3, [], 'bm25');
    const expected = reference.search(files.tokenizer.decode(ids), 3);
    expect(served.views.map((v) => v.chunkIndex)).toEqual(expected.map((h) => h.id));
    expect(served.views[0]!.text).toContain('Mating occurs in the summer');
    expect(served.tokenIds[0]).toEqual(Array.from(datastore.neighbourTokens(expected[0]!.id)));
    const topDoc = served.views[0]!.docId;
    const without = await engine.neighbourServer.retrieve(ids, 3, [topDoc], 'bm25');
    const docs = datastore.shard.chunkDocs;
    expect(without.views.map((v) => v.chunkIndex)).toEqual(reference.search(files.tokenizer.decode(ids), 3, (c) => docs[c] === topDoc).map((h) => h.id));
    expect(without.views.every((v) => v.docId !== topDoc)).toBe(true);
  });

  it('lets the index go with its datastore', async () => {
    await engine.remove('valid-sample');
    await expect(engine.retrieveText('Herons', 1, [], 'bm25')).rejects.toThrow(/No datastore is active/);
  });
});
