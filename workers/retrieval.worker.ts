/// <reference lib="webworker" />
/**
 * Retrieval worker: owns the datastores. It keeps them in IndexedDB (store.ts), copies the
 * built-in ones in on first launch, holds the active one in memory with its vector index, builds
 * datastores from the user's files, and answers neighbour queries: from the UI (inspector, tests)
 * and from the inference worker over a MessageChannel (RETRO's per-chunk retrievals).
 */
import * as Comlink from 'comlink';
import { fingerprint } from '../src/core/datastore/checksum';
// eslint-disable-next-line no-restricted-imports -- a Vite asset URL, which only the bundled worker entry can resolve; src/core/retrieval/voy.ts takes it as an argument
import voyWasmUrl from 'voy-search/voy_search_bg.wasm?url';
import { chunkDatastoreGeometry, type ModelManifest } from '../src/protocol/manifest';
import type { IndexKind, Neighbour } from '../src/protocol/retrieval';
import type { BuildProgress, DocumentInput } from '../src/protocol/shard';
import { Datastore, buildShard, detectFormat, parseDocuments, readShardHeader } from '../src/core/datastore';
import { DatastoreStore, knnRecordInfo, type DatastoreRecord } from '../src/core/datastore/store';
import { formatBytes, readResponseBytes } from '../src/core/io';
import { MeanEmbedder, initVoy } from '../src/core/retrieval';
import { detokenizeWikiText, loadTokenizer, type RetroTokenizer } from '../src/core/tokenizer';
import type {
  BuildRequest,
  DatastoreInfo,
  KnnDefaultInfo,
  KnnKeyBuilder,
  KnnShardBytes,
  NeighbourServer,
  NeighbourView,
  Progress,
  ProgressCallback,
  RetrievalState,
  RetrievalWorkerApi,
  RetrieveResult,
  RetrievedForModel,
} from './protocol';
import { TokenBytes, TokenTexts } from './token-text';

interface Assets {
  manifest: ModelManifest;
  tokenizer: RetroTokenizer;
  embedder: MeanEmbedder;
  texts: TokenTexts;
}

/** One entry of public/datastores/index.json (written by `npm run setup:datastores`). */
interface DefaultEntry {
  id: string;
  name: string;
  file: string;
  bytes?: number;
  chunks?: number;
  documents?: number;
  description?: string;
  embedder_fingerprint?: string;
  /** a kNN-LM datastore: copied in on first use, not at first launch */
  knnlm?: { model: string; decoder_sha256: string; entries: number; dim: number };
  base_id?: string;
}

let baseUrl = '';
let store: DatastoreStore | null = null;
let assets: Promise<Assets> | null = null;
let active: { id: string; datastore: Datastore } | null = null;
let indexKind: IndexKind = 'flat';
let voyReady: Promise<void> | null = null;
let buildController: AbortController | null = null;
let keyBuilder: Comlink.Remote<KnnKeyBuilder> | null = null;
const notices: string[] = [];

function requireStore(): DatastoreStore {
  if (!store) throw new Error('The datastore worker has not been initialised.');
  return store;
}

/** The RETRO model's tokenizer and embedder: a datastore is only usable with the embedder it was built with. */
function loadAssets(): Promise<Assets> {
  assets ??= (async () => {
    const indexUrl = new URL('models/index.json', baseUrl);
    const index = (await (await fetch(indexUrl)).json()) as { models: string[] };
    for (const id of index.models) {
      const dir = new URL(`models/${id}/`, baseUrl);
      const manifest = (await (await fetch(new URL('manifest.json', dir))).json()) as ModelManifest;
      if (manifest.architecture !== 'retro') continue;
      const embedderSpec = manifest.embedder;
      if (!embedderSpec) throw new Error(`${id}/manifest.json has no retrieval embedder.`);
      const [tokenizerJson, embedderBytes] = await Promise.all([
        fetch(new URL(manifest.tokenizer.file, dir)).then((r) => r.json() as Promise<unknown>),
        fetch(new URL(embedderSpec.file, dir)).then(async (r) => {
          if (!r.ok) throw new Error(`${embedderSpec.file}: HTTP ${r.status}`);
          return new Uint8Array(await r.arrayBuffer());
        }),
      ]);
      const tokenizer = loadTokenizer(tokenizerJson, { id: manifest.tokenizer.id });
      const embedder = MeanEmbedder.fromBytes(embedderBytes, embedderSpec.vocab_size, embedderSpec.dim, embedderSpec.id);
      return { manifest, tokenizer, embedder, texts: new TokenTexts(new TokenBytes(tokenizerJson)) };
    }
    throw new Error('No RETRO model in models/index.json: datastores need its tokenizer and embedder.');
  })();
  return assets;
}

function ensureVoy(): Promise<void> {
  voyReady ??= initVoy(fetch(voyWasmUrl));
  return voyReady;
}

function info(record: DatastoreRecord): DatastoreInfo {
  const view: DatastoreInfo & { kind?: string } = { ...record };
  delete view.kind;
  return view;
}

async function state(): Promise<RetrievalState> {
  const s = requireStore();
  const records = await s.list();
  const entries = (await fetchDefaults().catch(() => null)) ?? [];
  if (active && !records.some((r) => r.id === active!.id)) {
    // Deleted in another tab: this tab lets go of it too.
    active.datastore.dispose();
    active = null;
    notices.push('The active datastore was deleted in another tab.');
  }
  return {
    datastores: records.filter((r) => r.kind !== 'knnlm').map(info),
    activeId: active?.id ?? null,
    indexKind,
    storage: await DatastoreStore.estimate(),
    missingDefaults: missingDefaults(entries, records),
    notices: notices.splice(0),
    knnDefault: knnDefault(entries, records),
  };
}

/** The server's kNN-LM datastore, if `npm run setup:knn` built one. */
function knnDefault(entries: DefaultEntry[], records: DatastoreRecord[]): KnnDefaultInfo | null {
  const entry = entries.find((e) => e.knnlm);
  if (!entry?.knnlm) return null;
  const k = entry.knnlm;
  return {
    id: entry.id,
    name: entry.name,
    description: entry.description ?? '',
    bytes: entry.bytes ?? 0,
    knnlm: { entries: k.entries, dim: k.dim, model: k.model, decoderSha256: k.decoder_sha256 },
    // Older index files lack base_id; their kNN-LM entry is named after its chunk datastore.
    baseId: entry.base_id ?? entry.id.replace(/-knnlm$/, ''),
    stored: records.some((r) => r.id === entry.id),
  };
}

async function fetchWithProgress(url: URL, target: string, label: string, onProgress: ProgressCallback, expectedBytes?: number): Promise<Uint8Array> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url.pathname}: HTTP ${response.status}`);
  const header = response.headers.get('content-length');
  const total = header ? Number(header) : (expectedBytes ?? null);
  if (!response.body) return new Uint8Array(await response.arrayBuffer());
  const bytes = await readResponseBytes(response, (loaded) =>
    onProgress({ target, label, done: loaded, total, unit: 'bytes', finished: false }));
  onProgress({ target, label, done: bytes.length, total: bytes.length, unit: 'bytes', finished: true });
  return bytes;
}

/** The built-in datastores the server offers (public/datastores/index.json), or null if it has none. */
async function fetchDefaults(): Promise<DefaultEntry[] | null> {
  const response = await fetch(new URL('datastores/index.json', baseUrl));
  // A dev server answers a missing file with index.html (SPA fallback), hence the type check.
  if (!response.ok || !(response.headers.get('content-type') ?? '').includes('json')) return null;
  const json = (await response.json()) as DefaultEntry[] | { datastores?: DefaultEntry[] };
  return Array.isArray(json) ? json : (json.datastores ?? []);
}

async function installDefault(entry: DefaultEntry, onProgress: ProgressCallback): Promise<Uint8Array> {
  const target = `datastore:${entry.id}`;
  const bytes = await fetchWithProgress(new URL(`datastores/${entry.file}`, baseUrl), target, `Datastore “${entry.name}”`, onProgress, entry.bytes);
  const header = readShardHeader(bytes);
  const knnlm = knnRecordInfo(header.meta);
  await requireStore().put(
    {
      id: entry.id,
      name: entry.name,
      origin: 'default',
      bytes: bytes.length,
      chunks: header.chunkCount,
      documents: header.documentCount,
      createdAt: Date.now(),
      description: entry.description ?? header.meta.description,
      embedderFingerprint: header.meta.embedder.fingerprint,
      ...(knnlm ? { knnlm } : {}),
      ...(entry.knnlm ? { kind: 'knnlm' as const } : {}),
    },
    bytes,
  );
  return bytes;
}

/**
 * Copies the built-in datastores into IndexedDB the first time the app runs, and again when the
 * server's copy was rebuilt for another embedder (a new model release). One the user deleted is not
 * brought back (it is remembered as installed) unless they ask: `restoreDefaults`.
 */
async function installDefaults(onProgress: ProgressCallback, restore = false): Promise<void> {
  const s = requireStore();
  const installed = new Set<string>(JSON.parse((await s.getSetting('defaultsInstalled')) ?? '[]') as string[]);
  const entries = await fetchDefaults();
  if (entries === null) {
    if ((await s.list()).length === 0) {
      notices.push('No built-in datastores were found (public/datastores/index.json). Run `npm run setup:datastores`, or add your own text.');
    }
    return;
  }
  // The kNN-LM datastore (~210 MB) is copied only when the user first turns kNN-LM on (knnShard).
  for (const entry of entries.filter((e) => !e.knnlm)) {
    const existing = await s.getRecord(entry.id);
    const stale =
      existing?.origin === 'default' &&
      entry.embedder_fingerprint !== undefined &&
      existing.embedderFingerprint !== entry.embedder_fingerprint;
    const wanted = existing ? stale : restore || !installed.has(entry.id);
    if (wanted) {
      try {
        await installDefault(entry, onProgress);
      } catch (error) {
        // One that does not fit (quota) must not keep the others out.
        notices.push(`The built-in datastore “${entry.name}” could not be copied into this browser: ${errorMessage(error)}`);
        continue;
      }
    }
    installed.add(entry.id);
    await s.setSetting('defaultsInstalled', JSON.stringify([...installed]));
  }
}

/** Names of built-in chunk datastores the server offers that are not stored (deleted by the user). */
function missingDefaults(entries: DefaultEntry[], records: DatastoreRecord[]): string[] {
  const stored = new Set(records.map((r) => r.id));
  return entries.filter((e) => !e.knnlm && !stored.has(e.id)).map((e) => e.name);
}

/**
 * Shard bytes of a datastore with kNN-LM sections, for the inference worker. The built-in one is
 * fetched and stored first if this browser does not hold it yet.
 */
async function knnShardBytes(id: string, onProgress?: ProgressCallback): Promise<KnnShardBytes> {
  const s = requireStore();
  const record = await s.getRecord(id);
  if (!record) {
    const entry = ((await fetchDefaults()) ?? []).find((e) => e.id === id && e.knnlm);
    if (!entry) throw new Error(`No kNN-LM datastore "${id}": ${KNN_NOT_BUILT}`);
    const bytes = await installDefault(entry, onProgress ?? (() => undefined)).catch((error: unknown) => {
      throw new Error(`The kNN-LM datastore “${entry.name}” could not be copied into this browser: ${errorMessage(error)}`);
    });
    return Comlink.transfer({ id, name: entry.name, bytes }, [bytes.buffer as ArrayBuffer]);
  }
  if (!record.knnlm) throw new Error(`“${record.name}” has no kNN-LM keys: rebuild it with “Also build kNN-LM keys” ticked.`);
  const { bytes } = await s.get(id);
  return Comlink.transfer({ id, name: record.name, bytes }, [bytes.buffer as ArrayBuffer]);
}

const KNN_NOT_BUILT = 'kNN-LM datastore not built: run `npm run setup:knn`, or build one from your own text.';

/** Opens a stored datastore with the current index kind and makes it the one RETRO reads. */
async function activate(id: string, onProgress?: ProgressCallback): Promise<void> {
  const s = requireStore();
  const { embedder } = await loadAssets();
  const { record, bytes } = await s.get(id);
  const target = `open:${id}`;
  onProgress?.({ target, label: `Opening “${record.name}”`, done: 0, total: null, unit: 'chunks', finished: false });
  try {
    let datastore = await Datastore.open(bytes, embedder);
    if (datastore.index.kind !== indexKind) {
      if (indexKind === 'voy') await ensureVoy();
      try {
        datastore = datastore.withIndexKind(indexKind);
      } catch (error) {
        // Voy cannot hold every datastore (size limit): keep the exact index and say why.
        notices.push(`${errorMessage(error)} Using the flat index for “${record.name}”.`);
      }
    }
    active?.datastore.dispose();
    active = { id, datastore };
    await s.setActive(id);
  } finally {
    onProgress?.({ target, label: `Opening “${record.name}”`, done: record.chunks, total: record.chunks, unit: 'chunks', finished: true });
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function requireActive(): Datastore {
  if (!active) throw new Error('No datastore is active: pick one in the Datastores panel or add your own text.');
  return active.datastore;
}

function view(n: Neighbour, texts: TokenTexts): NeighbourView {
  const real = n.tokenIds.slice(0, n.chunkLength + n.continuationLength);
  return {
    docId: n.docId,
    title: n.title,
    chunkIndex: n.chunkIndex,
    distance: n.distance,
    text: detokenizeWikiText(n.text),
    continuationText: detokenizeWikiText(n.continuationText),
    tokens: texts.standalone(real),
    chunkLength: n.chunkLength,
  };
}

async function retrieveIds(chunkTokenIds: number[], k: number, excludeDocIds: number[]): Promise<{ neighbours: Neighbour[]; latencyMs: number }> {
  const datastore = requireActive();
  const t0 = performance.now();
  const neighbours = datastore.retrieve(chunkTokenIds, k, { excludeDocIds });
  return { neighbours, latencyMs: performance.now() - t0 };
}

const neighbourServer: NeighbourServer = {
  knnShard: knnShardBytes,

  async retrieve(chunkTokenIds, k, excludeDocIds): Promise<RetrievedForModel> {
    const { texts } = await loadAssets();
    const { neighbours, latencyMs } = await retrieveIds(chunkTokenIds, k, excludeDocIds);
    return {
      tokenIds: neighbours.map((n) => n.tokenIds),
      views: neighbours.map((n) => view(n, texts)),
      latencyMs,
      datastoreId: active!.id,
    };
  },
};

/**
 * Runs the GPT over the shard's text in the inference worker (it holds the model) and returns the
 * shard with kNN-LM sections attached. Cancelling the build cancels the key pass too.
 */
async function attachKnnKeys(bytes: Uint8Array, signal: AbortSignal, onProgress: ProgressCallback): Promise<Uint8Array> {
  if (!keyBuilder) throw new Error('The model worker is not connected: kNN-LM keys cannot be built.');
  const builder = keyBuilder;
  const cancel = () => void builder.cancel();
  signal.addEventListener('abort', cancel);
  try {
    if (signal.aborted) throw Object.assign(new Error('the datastore build was cancelled'), { name: 'AbortError' });
    return await builder.attachKeys(Comlink.transfer(bytes, [bytes.buffer as ArrayBuffer]), Comlink.proxy(onProgress));
  } catch (error) {
    // Errors cross Comlink as plain Errors; keep 'AbortError' recognisable for the client.
    if (signal.aborted) throw Object.assign(new Error('the datastore build was cancelled'), { name: 'AbortError' });
    throw error;
  } finally {
    signal.removeEventListener('abort', cancel);
  }
}

function toProgress(p: BuildProgress, startedAt: number): Progress {
  const phaseNames: Record<BuildProgress['phase'], string> = {
    parse: 'Reading',
    tokenize: 'Tokenizing',
    chunk: 'Chunking',
    embed: 'Embedding',
    index: 'Indexing',
    encode: 'Packing',
    done: 'Done',
  };
  const unit = p.unit === 'bytes' ? 'bytes' : p.unit === 'documents' ? 'documents' : 'chunks';
  const progress: Progress = {
    target: 'build',
    label: 'Building datastore',
    phase: phaseNames[p.phase],
    done: p.done,
    total: p.total,
    unit,
    finished: p.phase === 'done',
  };
  if (p.phase === 'embed' && p.chunksPerSecond > 0) {
    progress.rate = p.chunksPerSecond;
    progress.etaSeconds = Math.max(0, (p.total - p.done) / p.chunksPerSecond);
  } else if (p.elapsedMs > 0 && p.done > 0 && p.total > p.done) {
    progress.etaSeconds = ((p.total - p.done) * (performance.now() - startedAt)) / p.done / 1000;
  }
  return progress;
}

const api: RetrievalWorkerApi = {
  async init(url, onProgress) {
    baseUrl = url;
    store ??= await DatastoreStore.open();
    const s = store;
    indexKind = (await s.getSetting('indexKind')) === 'voy' ? 'voy' : 'flat';
    await loadAssets();
    try {
      await installDefaults(onProgress);
    } catch (error) {
      notices.push(`The built-in datastores could not be copied into this browser: ${errorMessage(error)}`);
    }
    const records = (await s.list()).filter((r) => r.kind !== 'knnlm');
    const wanted = (await s.getActive()) ?? records[0]?.id;
    if (wanted && records.some((r) => r.id === wanted)) {
      try {
        await activate(wanted, onProgress);
      } catch (error) {
        notices.push(`The datastore “${wanted}” could not be opened: ${errorMessage(error)}`);
      }
    }
    return state();
  },

  state,

  async setActive(id, onProgress) {
    await activate(id, onProgress);
    return state();
  },

  async setIndexKind(kind, onProgress) {
    const previous = indexKind;
    indexKind = kind;
    try {
      if (active) {
        if (kind === 'voy') await ensureVoy();
        onProgress?.({ target: 'index', label: `Building the ${kind} index`, done: 0, total: null, unit: 'chunks', finished: false });
        const next = active.datastore.withIndexKind(kind);
        if (next !== active.datastore) {
          active.datastore.dispose();
          active = { id: active.id, datastore: next };
        }
        onProgress?.({ target: 'index', label: `Building the ${kind} index`, done: 1, total: 1, unit: 'chunks', finished: true });
      }
      await requireStore().setSetting('indexKind', kind);
    } catch (error) {
      indexKind = previous;
      onProgress?.({ target: 'index', label: `Building the ${kind} index`, done: 1, total: 1, unit: 'chunks', finished: true });
      throw error;
    }
    return state();
  },

  async retrieveText(text, k, excludeDocIds = []): Promise<RetrieveResult> {
    const { tokenizer, texts, manifest } = await loadAssets();
    const { chunk } = chunkDatastoreGeometry(manifest);
    const ids = tokenizer.encode(text).slice(-chunk);
    if (ids.length === 0) throw new RangeError('Nothing to retrieve for an empty text.');
    const { neighbours, latencyMs } = await retrieveIds(ids, k, excludeDocIds);
    return { neighbours: neighbours.map((n) => view(n, texts)), latencyMs };
  },

  async build(request: BuildRequest, onProgress) {
    if (buildController) throw new Error('A datastore is already being built.');
    const controller = new AbortController();
    buildController = controller;
    const startedAt = performance.now();
    try {
      const { tokenizer, embedder, manifest } = await loadAssets();
      if (request.files.length === 0) throw new Error('Choose at least one .txt, .md or .jsonl file.');
      const documents: DocumentInput[] = [];
      const sources: { name: string; bytes: number; format: string }[] = [];
      for (const [i, file] of request.files.entries()) {
        onProgress({ target: 'build', label: 'Building datastore', phase: 'Reading', done: i, total: request.files.length, unit: 'documents', finished: false });
        const format = detectFormat(file.name);
        // Only the formats the UI offers: a WikiText dump is a CLI job, not a drop-in.
        if (format !== 'txt' && format !== 'md' && format !== 'jsonl') {
          throw new Error(`${file.name}: unsupported file type. Use .txt, .md or .jsonl files.`);
        }
        documents.push(...parseDocuments(new Uint8Array(await file.arrayBuffer()), file.name, format));
        sources.push({ name: file.name, bytes: file.size, format });
        if (controller.signal.aborted) throw Object.assign(new Error('the datastore build was cancelled'), { name: 'AbortError' });
      }
      const geometry = chunkDatastoreGeometry(manifest);
      const result = await buildShard(documents, {
        name: request.name,
        description: `Built in the browser from ${sources.map((s) => s.name).join(', ')}`,
        tokenizer,
        embedder,
        chunkSize: geometry.chunk,
        neighbourLen: geometry.neighbourLen,
        indexKind: 'flat',
        sources,
        signal: controller.signal,
        onProgress: (p) => onProgress(toProgress(p, startedAt)),
      });
      let bytes = result.bytes;
      if (request.knnKeys) bytes = await attachKnnKeys(bytes, controller.signal, onProgress);
      const knnlm = request.knnKeys ? knnRecordInfo(readShardHeader(bytes).meta) : undefined;
      const s = requireStore();
      const record: DatastoreRecord = {
        id: await s.freshId(request.name),
        name: request.name,
        origin: 'custom',
        bytes: bytes.length,
        chunks: result.stats.chunks,
        documents: result.stats.documents,
        createdAt: Date.now(),
        description: `${sources.map((x) => `${x.name} (${formatBytes(x.bytes)})`).join(', ')}`,
        embedderFingerprint: result.shard.meta.embedder.fingerprint,
        ...(knnlm ? { knnlm } : {}),
      };
      // Last step, one transaction: a quota error leaves the stored datastores as they were.
      await s.put(record, bytes);
      return { ...(await state()), built: info(record) };
    } finally {
      buildController = null;
    }
  },

  async restoreDefaults(onProgress) {
    await installDefaults(onProgress, true);
    if (!active) {
      const first = (await requireStore().list()).find((r) => r.kind !== 'knnlm');
      if (first) await activate(first.id, onProgress);
    }
    return state();
  },

  cancelBuild() {
    buildController?.abort();
  },

  async importFile(file) {
    const s = requireStore();
    const { embedder } = await loadAssets();
    const bytes = new Uint8Array(await file.arrayBuffer());
    // A full open checks magic, version, checksums and the embedder before anything is stored.
    const datastore = await Datastore.open(bytes, embedder);
    const summary = datastore.summary;
    datastore.dispose();
    const name = summary.name || file.name.replace(/\.rlds$/i, '');
    // The same file twice would only be a second copy under the same name: say so and store nothing.
    let incoming: string | null = null;
    for (const r of await s.list()) {
      if (r.bytes !== bytes.length || r.chunks !== summary.chunks || r.documents !== summary.documents) continue;
      incoming ??= fingerprint(bytes);
      if (fingerprint((await s.get(r.id)).bytes) === incoming) throw new Error(`“${file.name}” is already stored as “${r.name}”: nothing was imported.`);
    }
    const knnlm = knnRecordInfo(readShardHeader(bytes).meta);
    const record: DatastoreRecord = {
      id: await s.freshId(name),
      name,
      origin: 'imported',
      bytes: bytes.length,
      chunks: summary.chunks,
      documents: summary.documents,
      createdAt: Date.now(),
      description: summary.description,
      embedderFingerprint: summary.embedderFingerprint,
      ...(knnlm ? { knnlm } : {}),
    };
    await s.put(record, bytes);
    return { ...(await state()), imported: info(record) };
  },

  exportFile(id) {
    return requireStore().exportFile(id);
  },

  async remove(id) {
    const s = requireStore();
    await s.delete(id);
    if (active?.id === id) {
      active.datastore.dispose();
      active = null;
      const next = (await s.list()).find((r) => r.kind !== 'knnlm');
      if (next) await activate(next.id);
    }
    return state();
  },

  connect(port) {
    Comlink.expose(neighbourServer, port);
  },

  connectKeyBuilder(port) {
    keyBuilder = Comlink.wrap<KnnKeyBuilder>(port);
  },
};

Comlink.expose(api);
