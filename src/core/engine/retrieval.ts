/**
 * The retrieval engine: owns the datastores. It keeps them in IndexedDB (store.ts), copies the
 * built-in ones in on first launch, holds the active one in memory with its vector index, builds
 * datastores from the user's files, imports and exports them, and answers neighbour queries: from
 * the UI (inspector, tests) and from the inference engine (`neighbourServer`: RETRO's per-chunk
 * retrievals, In-Context RALM's passages, kNN-LM shards). The browser runs it in a worker
 * (workers/retrieval.worker.ts); Node tests run it in their own thread over fake-indexeddb.
 */
import { chunkDatastoreGeometry, type ModelManifest } from '../../protocol/manifest';
import type { IndexKind, Neighbour, RetrieverKind } from '../../protocol/retrieval';
import type { Shard } from '../../protocol/shard';
import { DOCUMENT_FORMATS, type BuildProgress, type DocumentFormat, type DocumentInput } from '../../protocol/shard';
import type {
  BuildRequest,
  DatastoreInfo,
  KnnDefaultInfo,
  KnnKeyBuilder,
  KnnShardBytes,
  NeighbourDisplay,
  NeighbourServer,
  Progress,
  ProgressCallback,
  RetrievalApi,
  RetrievalLinks,
  RetrievalState,
  RetrieveResult,
  RetrievedForModel,
} from '../../protocol/api';
import { fingerprint } from '../datastore/checksum';
import { InputTooLargeError } from '../datastore/errors';
import { Datastore, buildShard, detectFormat, parseDocuments, readShardHeader } from '../datastore';
import { blobShardSource, readShardHeaderFrom } from '../datastore/shard';
import { DatastoreStore, knnRecordInfo, type DatastoreRecord } from '../datastore/store';
import { formatBytes } from '../io';
import { Bm25Index, MeanEmbedder, initVoy } from '../retrieval';
import type { VoyWasmSource } from '../retrieval/voy';
import { detokenizeWikiText, loadTokenizer, type RetroTokenizer } from '../tokenizer';
import { TokenBytes, TokenTexts } from './token-text';
import { fetchFolder, type FolderOpener } from './folder';
import { inThread, type Transfer } from './transfer';
import { knnSources } from './knn-sources';
import { Rng, seedOfIds } from '../generate/rng';

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

export interface RetrievalEngineOptions {
  /** Default: fetch from `baseUrl` (the browser). Node passes its public/ folder. */
  folder?: FolderOpener;
  /** Default: the browser's IndexedDB database 'retrolab'. */
  openStore?: () => Promise<DatastoreStore>;
  /** voy's WASM, for the voy index kind: the worker passes its bundled asset, Node the file. */
  voyWasm?: () => VoyWasmSource;
  /** Default: nothing crosses a thread. The worker passes Comlink's `transfer`. */
  transfer?: Transfer;
  /** What a build may take. Default BROWSER_BUILDS; the Node tools pass TOOL_BUILDS. */
  builds?: BuildLimits;
  /** Copy the built-in datastores in at `init` (default). Tools that only build a datastore skip it. */
  installBuiltIns?: boolean;
}

export interface BuildLimits {
  /** the most tokens a built datastore may hold */
  maxTokens: number;
  /** the input formats a build takes */
  formats: readonly DocumentFormat[];
  /** what the refusal of a file over `maxTokens` tells the user to do instead */
  tooLarge: string;
}

/**
 * The most tokens a datastore built in the browser may hold. The build's arrays grow by roughly
 * 250 bytes per token at chunk 8 and 256 dims (float vectors while embedding, the encoded shard, its
 * copy into IndexedDB, the index on activation), so 4M tokens (about 18 MB of English text, 1.5x
 * WikiText-2 train) keeps the tab near 1 GB.
 */
export const BROWSER_MAX_BUILD_TOKENS = 4_000_000;
/** Files over this many bytes per allowed token are refused before they are read: no text averages more. */
const MAX_BYTES_PER_TOKEN = 12;

/** The app's builds: what a tab's memory allows, from the files the drop zone offers (a WikiText dump is a tool's job). */
export const BROWSER_BUILDS: BuildLimits = {
  maxTokens: BROWSER_MAX_BUILD_TOKENS,
  formats: ['txt', 'md', 'jsonl'],
  tooLarge: 'Build it with `npm run datastore -- build` and import the file.',
};

/** The Node tools' builds (npm run datastore, npm run setup:datastores): whole corpora, every format. */
export const TOOL_BUILDS: BuildLimits = {
  maxTokens: Number.POSITIVE_INFINITY,
  formats: DOCUMENT_FORMATS,
  tooLarge: '',
};

const KNN_NOT_BUILT = 'kNN-LM datastore not built: run `npm run setup` (it builds the keys, then the app), or build one from your own text.';

/** ".txt, .md or .jsonl" */
function formatList(formats: readonly DocumentFormat[]): string {
  const names = formats.map((f) => (f === 'wikitext' ? 'WikiText' : `.${f}`));
  return names.length > 1 ? `${names.slice(0, -1).join(', ')} or ${names.at(-1)}` : (names[0] ?? '');
}

function cancelled(): Error {
  return Object.assign(new Error('the datastore build was cancelled'), { name: 'AbortError' });
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class RetrievalEngine implements RetrievalApi, RetrievalLinks {
  private baseUrl = '';
  private store: DatastoreStore | null = null;
  private assets: Promise<Assets> | null = null;
  private active: { id: string; datastore: Datastore } | null = null;
  /**
   * The active datastore's BM25 index, built the first time BM25 is asked for (seconds for
   * WikiText-2 train) and let go with the datastore. Keyed by the shard: another index kind over the
   * same chunks keeps it.
   */
  private bm25: { shard: Shard; index: Bm25Index } | null = null;
  /** init's progress callback: where a BM25 build started by the inference engine (a column's first passage) reports. */
  private appProgress: ProgressCallback | null = null;
  private indexKind: IndexKind = 'flat';
  private voyReady: Promise<void> | null = null;
  private buildController: AbortController | null = null;
  private keyBuilder: KnnKeyBuilder | null = null;
  private readonly notices: string[] = [];
  private readonly folder: FolderOpener;
  private readonly openStore: () => Promise<DatastoreStore>;
  private readonly voyWasm: (() => VoyWasmSource) | null;
  private readonly transfer: Transfer;
  private readonly builds: BuildLimits;
  private readonly installBuiltIns: boolean;

  constructor(options: RetrievalEngineOptions = {}) {
    this.folder = options.folder ?? fetchFolder;
    this.openStore = options.openStore ?? (() => DatastoreStore.open());
    this.voyWasm = options.voyWasm ?? null;
    this.transfer = options.transfer ?? inThread;
    this.builds = options.builds ?? BROWSER_BUILDS;
    this.installBuiltIns = options.installBuiltIns ?? true;
  }

  // --- RetrievalLinks ---------------------------------------------------------------------------

  /** What the inference engine reads: neighbours of the active datastore, and kNN-LM shards. */
  readonly neighbourServer: NeighbourServer = {
    knnShard: (id, onProgress) => this.knnShardBytes(id, onProgress),
    // Read without state()'s side effects: its notices are the client's to collect.
    knnSources: async () => {
      const records = await this.requireStore().list();
      const entries = (await this.fetchDefaults().catch(() => null)) ?? [];
      const activeId = this.active && records.some((r) => r.id === this.active!.id) ? this.active.id : null;
      return knnSources(records.filter((r) => r.kind !== 'knnlm').map(info), activeId, knnDefault(entries, records));
    },
    retrieve: async (chunkTokenIds, k, excludeDocIds, options = {}): Promise<RetrievedForModel> => {
      const { texts, tokenizer } = await this.loadAssets();
      const retriever = options.retriever ?? 'dense';
      // A random draw stands in for any retriever: it reads the query ids only to seed itself.
      const query = options.random
        ? { retriever: 'dense' as const, ids: chunkTokenIds, random: true }
        : retriever === 'bm25'
          ? { retriever, text: tokenizer.decode(chunkTokenIds) }
          : { retriever, ids: chunkTokenIds };
      const { neighbours, latencyMs, datastoreId } = this.retrieveQuery(query, k, excludeDocIds);
      return { tokenIds: neighbours.map((n) => n.tokenIds), views: neighbours.map((n) => display(n, texts)), latencyMs, datastoreId };
    },
    promptSources: async (promptIds) => {
      if (!this.active) throw new Error('No datastore is active: pick one in the Datastores panel or add your own text.');
      return this.active.datastore.promptSources(promptIds);
    },
  };

  useKeyBuilder(builder: KnnKeyBuilder): void {
    this.keyBuilder = builder;
  }

  // --- RetrievalApi -----------------------------------------------------------------------------

  async init(baseUrl: string, onProgress: ProgressCallback): Promise<RetrievalState> {
    this.baseUrl = baseUrl;
    this.appProgress = onProgress;
    this.store ??= await this.openStore();
    const s = this.store;
    this.indexKind = (await s.getSetting('indexKind')) === 'voy' ? 'voy' : 'flat';
    await this.loadAssets();
    try {
      if (this.installBuiltIns) await this.installDefaults(onProgress);
    } catch (error) {
      this.notices.push(`The built-in datastores could not be copied into this browser: ${errorMessage(error)}`);
    }
    const records = (await s.list()).filter((r) => r.kind !== 'knnlm');
    const wanted = (await s.getActive()) ?? records[0]?.id;
    if (wanted && records.some((r) => r.id === wanted)) {
      try {
        await this.activate(wanted, onProgress);
      } catch (error) {
        this.notices.push(`The datastore “${wanted}” could not be opened: ${errorMessage(error)}`);
      }
    }
    return this.state();
  }

  async state(): Promise<RetrievalState> {
    const s = this.requireStore();
    const records = await s.list();
    const entries = (await this.fetchDefaults().catch(() => null)) ?? [];
    const active = this.active;
    if (active && !records.some((r) => r.id === active.id)) {
      // Deleted in another tab: this tab lets go of it too.
      active.datastore.dispose();
      this.active = null;
      this.bm25 = null;
      this.notices.push('The active datastore was deleted in another tab.');
    }
    const datastores = records.filter((r) => r.kind !== 'knnlm').map(info);
    const activeId = this.active?.id ?? null;
    const builtInKnn = knnDefault(entries, records);
    return {
      datastores,
      activeId,
      // What the active datastore really uses: after a fall-back to flat (voy's size limit) the
      // choice shown is flat, not the voy that was asked for.
      indexKind: this.active?.datastore.index.kind ?? this.indexKind,
      storage: await DatastoreStore.estimate(),
      missingDefaults: missingDefaults(entries, records),
      notices: this.notices.splice(0),
      knnDefault: builtInKnn,
      knn: knnSources(datastores, activeId, builtInKnn),
    };
  }

  async setActive(id: string, onProgress?: ProgressCallback): Promise<RetrievalState> {
    await this.activate(id, onProgress);
    return this.state();
  }

  async setIndexKind(kind: IndexKind, onProgress?: ProgressCallback): Promise<RetrievalState> {
    const previous = this.indexKind;
    this.indexKind = kind;
    const label = `Building the ${kind} index`;
    try {
      if (this.active) {
        if (kind === 'voy') await this.ensureVoy();
        onProgress?.({ kind: 'index', indexKind: kind, target: 'index', label, done: 0, total: null, unit: 'chunks', finished: false });
        const next = this.active.datastore.withIndexKind(kind);
        if (next !== this.active.datastore) {
          this.active.datastore.dispose();
          this.active = { id: this.active.id, datastore: next };
        }
        onProgress?.({ kind: 'index', indexKind: kind, target: 'index', label, done: 1, total: 1, unit: 'chunks', finished: true });
      }
      await this.requireStore().setSetting('indexKind', kind);
    } catch (error) {
      this.indexKind = previous;
      onProgress?.({ kind: 'index', indexKind: kind, target: 'index', label, done: 1, total: 1, unit: 'chunks', finished: true });
      throw error;
    }
    return this.state();
  }

  async retrieveText(text: string, k: number, excludeDocIds: number[] = [], retriever: RetrieverKind = 'dense', onProgress?: ProgressCallback): Promise<RetrieveResult> {
    const { tokenizer, texts, manifest } = await this.loadAssets();
    if (retriever === 'bm25') {
      if (text.trim() === '') throw new RangeError('Nothing to retrieve for an empty text.');
      // Built here, with progress, so the search's latency is the search's alone.
      this.bm25Index(onProgress ?? this.appProgress);
      const { neighbours, latencyMs } = this.retrieveQuery({ retriever, text }, k, excludeDocIds);
      return { neighbours: neighbours.map((n) => display(n, texts)), latencyMs };
    }
    const { chunk } = chunkDatastoreGeometry(manifest);
    const ids = tokenizer.encode(text).slice(-chunk);
    if (ids.length === 0) throw new RangeError('Nothing to retrieve for an empty text.');
    const { neighbours, latencyMs } = this.retrieveQuery({ retriever, ids }, k, excludeDocIds);
    return { neighbours: neighbours.map((n) => display(n, texts)), latencyMs };
  }

  async build(request: BuildRequest, onProgress: ProgressCallback): Promise<RetrievalState & { built: DatastoreInfo }> {
    if (this.buildController) throw new Error('A datastore is already being built.');
    const controller = new AbortController();
    this.buildController = controller;
    const startedAt = performance.now();
    try {
      const { tokenizer, embedder, manifest } = await this.loadAssets();
      if (request.files.length === 0) throw new Error('Choose at least one .txt, .md or .jsonl file.');
      const inputBytes = request.files.reduce((n, f) => n + f.size, 0);
      const { maxTokens, formats } = this.builds;
      if (inputBytes > maxTokens * MAX_BYTES_PER_TOKEN) {
        throw new InputTooLargeError(
          `${request.files.map((f) => f.name).join(', ')}: ${formatBytes(inputBytes)} of text is more than a datastore built here can hold (${maxTokens.toLocaleString('en')} tokens, about ${formatBytes(maxTokens * 4.5)}). ${this.builds.tooLarge}`,
          request.files[0]!.name,
        );
      }
      const indexKind = request.index ?? 'flat';
      if (indexKind === 'voy') await this.ensureVoy();
      const documents: DocumentInput[] = [];
      const sources: { name: string; bytes: number; format: string }[] = [];
      for (const [i, file] of request.files.entries()) {
        onProgress({ kind: 'build', target: 'build', label: 'Building datastore', phase: 'Reading', done: i, total: request.files.length, unit: 'documents', finished: false });
        const format = request.format ?? detectFormat(file.name);
        if (!format || !formats.includes(format)) {
          throw new Error(`${file.name}: unsupported file type. Use ${formatList(formats)} files.`);
        }
        documents.push(...parseDocuments(new Uint8Array(await file.arrayBuffer()), file.name, format));
        sources.push({ name: file.name, bytes: file.size, format });
        if (controller.signal.aborted) throw cancelled();
      }
      const geometry = chunkDatastoreGeometry(manifest);
      const result = await buildShard(documents, {
        name: request.name,
        description: request.description ?? `Built from ${sources.map((s) => s.name).join(', ')}`,
        tokenizer,
        embedder,
        chunkSize: geometry.chunk,
        neighbourLen: geometry.neighbourLen,
        indexKind,
        sources,
        maxTokens,
        signal: controller.signal,
        onProgress: (p) => onProgress(buildProgress(p, startedAt)),
      });
      let bytes = result.bytes;
      if (request.knnKeys) bytes = await this.attachKnnKeys(bytes, controller.signal, onProgress);
      const knnlm = request.knnKeys ? knnRecordInfo(readShardHeader(bytes).meta) : undefined;
      const s = this.requireStore();
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
      return { ...(await this.state()), built: info(record) };
    } finally {
      this.buildController = null;
    }
  }

  async addKnnKeys(id: string, onProgress: ProgressCallback): Promise<RetrievalState & { updated: DatastoreInfo }> {
    if (this.buildController) throw new Error('A datastore is already being built.');
    const controller = new AbortController();
    this.buildController = controller;
    try {
      const s = this.requireStore();
      const { record, bytes } = await s.get(id);
      if (record.kind === 'knnlm') throw new Error(`“${record.name}” is a kNN-LM datastore: it has its keys.`);
      if (record.knnlm) return { ...(await this.state()), updated: info(record) };
      const withKeys = await this.attachKnnKeys(bytes, controller.signal, onProgress);
      const updated: DatastoreRecord = { ...record, bytes: withKeys.length, knnlm: knnRecordInfo(readShardHeader(withKeys).meta) };
      // One transaction, as a build's last step: a quota error leaves the datastore as it was.
      await s.put(updated, withKeys);
      return { ...(await this.state()), updated: info(updated) };
    } finally {
      this.buildController = null;
    }
  }

  cancelBuild(): void {
    this.buildController?.abort();
  }

  async restoreDefaults(onProgress: ProgressCallback): Promise<RetrievalState> {
    await this.installDefaults(onProgress, true);
    if (!this.active) {
      const first = (await this.requireStore().list()).find((r) => r.kind !== 'knnlm');
      if (first) await this.activate(first.id, onProgress);
    }
    return this.state();
  }

  async importFile(file: File): Promise<RetrievalState & { imported: DatastoreInfo }> {
    const s = this.requireStore();
    const { embedder } = await this.loadAssets();
    const bytes = new Uint8Array(await file.arrayBuffer());
    // A full open checks magic, version, checksums and the embedder before anything is stored.
    const datastore = await this.openDatastore(bytes, embedder);
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
    return { ...(await this.state()), imported: info(record) };
  }

  exportFile(id: string): Promise<File> {
    return this.requireStore().exportFile(id);
  }

  async remove(id: string): Promise<RetrievalState> {
    const s = this.requireStore();
    await s.delete(id);
    if (this.active?.id === id) {
      this.active.datastore.dispose();
      this.active = null;
      this.bm25 = null;
      const next = (await s.list()).find((r) => r.kind !== 'knnlm');
      if (next) await this.activate(next.id);
    }
    return this.state();
  }

  /** Lets go of the active datastore and the database (Node tools and tests; a worker just ends). */
  dispose(): void {
    this.active?.datastore.dispose();
    this.active = null;
    this.bm25 = null;
    this.store?.close();
    this.store = null;
  }

  // --- internals --------------------------------------------------------------------------------

  private requireStore(): DatastoreStore {
    if (!this.store) throw new Error('The datastore worker has not been initialised.');
    return this.store;
  }

  /** The RETRO model's tokenizer and embedder: a datastore is only usable with the embedder it was built with. */
  private loadAssets(): Promise<Assets> {
    this.assets ??= (async () => {
      const index = JSON.parse(await this.folder(this.baseUrl, 'models/').text('index.json')) as { models: string[] };
      for (const id of index.models) {
        const dir = this.folder(this.baseUrl, `models/${id}/`);
        const manifest = JSON.parse(await dir.text('manifest.json')) as ModelManifest;
        if (manifest.architecture !== 'retro') continue;
        const embedderSpec = manifest.embedder;
        if (!embedderSpec) throw new Error(`${id}/manifest.json has no retrieval embedder.`);
        const [tokenizerJson, embedderBytes] = await Promise.all([
          dir.text(manifest.tokenizer.file).then((text) => JSON.parse(text) as unknown),
          dir.bytes(embedderSpec.file),
        ]);
        const tokenizer = loadTokenizer(tokenizerJson, { id: manifest.tokenizer.id });
        const embedder = MeanEmbedder.fromBytes(embedderBytes, embedderSpec.vocab_size, embedderSpec.dim, embedderSpec.id);
        return { manifest, tokenizer, embedder, texts: new TokenTexts(new TokenBytes(tokenizerJson)) };
      }
      throw new Error('No RETRO model in models/index.json: datastores need its tokenizer and embedder.');
    })();
    return this.assets;
  }

  private ensureVoy(): Promise<void> {
    const wasm = this.voyWasm;
    if (!wasm) return Promise.reject(new Error('The voy index is not available here (no voy WASM given to the retrieval engine).'));
    this.voyReady ??= initVoy(wasm());
    return this.voyReady;
  }

  /** The built-in datastores the server offers (public/datastores/index.json), or null if it has none. */
  private async fetchDefaults(): Promise<DefaultEntry[] | null> {
    let json: DefaultEntry[] | { datastores?: DefaultEntry[] };
    try {
      // A dev server answers a missing file with index.html (SPA fallback): that does not parse.
      json = JSON.parse(await this.folder(this.baseUrl, 'datastores/').text('index.json')) as typeof json;
    } catch {
      return null;
    }
    return Array.isArray(json) ? json : (json.datastores ?? []);
  }

  private async installDefault(entry: DefaultEntry, onProgress: ProgressCallback): Promise<Uint8Array | Blob> {
    const base: Omit<Extract<Progress, { kind: 'datastore-copy' }>, 'done' | 'total' | 'finished'> = {
      kind: 'datastore-copy',
      datastoreId: entry.id,
      target: `datastore:${entry.id}`,
      label: `Datastore “${entry.name}”`,
      unit: 'bytes',
    };
    const folder = this.folder(this.baseUrl, 'datastores/');
    const progress = (loaded: number, total: number | undefined) => onProgress({ ...base, done: loaded, total: total ?? entry.bytes ?? null, finished: false });
    // The kNN-LM datastore (~200 MB) is gathered as a Blob where the folder can (the browser): it is
    // stored and later read section by section, so the tab never holds the whole file.
    const bytes = entry.knnlm && folder.blob ? await folder.blob(entry.file, progress) : await folder.bytes(entry.file, progress);
    const size = bytes instanceof Blob ? bytes.size : bytes.length;
    onProgress({ ...base, done: size, total: size, finished: true });
    const header = bytes instanceof Blob ? await readShardHeaderFrom(blobShardSource(bytes)) : readShardHeader(bytes);
    const knnlm = knnRecordInfo(header.meta);
    await this.requireStore().put(
      {
        id: entry.id,
        name: entry.name,
        origin: 'default',
        bytes: size,
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
  private async installDefaults(onProgress: ProgressCallback, restore = false): Promise<void> {
    const s = this.requireStore();
    const installed = new Set<string>(JSON.parse((await s.getSetting('defaultsInstalled')) ?? '[]') as string[]);
    const entries = await this.fetchDefaults();
    if (entries === null) {
      if ((await s.list()).length === 0) {
        this.notices.push('No built-in datastores were found (public/datastores/index.json). Run `npm run setup:datastores`, or add your own text.');
      }
      return;
    }
    // The kNN-LM datastore (~210 MB) is copied only when the user first turns kNN-LM on (knnShard).
    for (const entry of entries.filter((e) => !e.knnlm)) {
      const existing = await s.getRecord(entry.id);
      const stale = existing?.origin === 'default' && entry.embedder_fingerprint !== undefined && existing.embedderFingerprint !== entry.embedder_fingerprint;
      const wanted = existing ? stale : restore || !installed.has(entry.id);
      if (wanted) {
        try {
          await this.installDefault(entry, onProgress);
        } catch (error) {
          // One that does not fit (quota) must not keep the others out.
          this.notices.push(`The built-in datastore “${entry.name}” could not be copied into this browser: ${errorMessage(error)}`);
          continue;
        }
      }
      installed.add(entry.id);
      await s.setSetting('defaultsInstalled', JSON.stringify([...installed]));
    }
  }

  /**
   * Shard bytes of a datastore with kNN-LM sections, for the inference engine. The built-in one is
   * fetched and stored first if this browser does not hold it yet.
   */
  private async knnShardBytes(id: string, onProgress?: ProgressCallback): Promise<KnnShardBytes> {
    const s = this.requireStore();
    let record = await s.getRecord(id);
    if (!record) {
      const entry = ((await this.fetchDefaults()) ?? []).find((e) => e.id === id && e.knnlm);
      if (!entry) throw new Error(`No kNN-LM datastore "${id}": ${KNN_NOT_BUILT}`);
      const bytes = await this.installDefault(entry, onProgress ?? (() => undefined)).catch((error: unknown) => {
        throw new Error(`The kNN-LM datastore “${entry.name}” could not be copied into this browser: ${errorMessage(error)}`);
      });
      record = await s.getRecord(id);
      // Stored as a Blob (kNN-LM-only shards are): hand the stored one on, so fetched bytes can go now.
      if (!record || record.kind !== 'knnlm') {
        if (bytes instanceof Blob) return { id, name: entry.name, blob: bytes };
        return this.transfer({ id, name: entry.name, bytes }, [bytes.buffer as ArrayBuffer]);
      }
    }
    if (!record.knnlm) throw new Error(`“${record.name}” has no kNN-LM keys: add them (“Add kNN-LM keys” in the datastore list).`);
    const shard = await s.getShard(id);
    // A Blob is handed on as it is: the inference engine reads it section by section.
    if ('blob' in shard) return { id, name: record.name, blob: shard.blob };
    return this.transfer({ id, name: record.name, bytes: shard.bytes }, [shard.bytes.buffer as ArrayBuffer]);
  }

  /** Opens a stored datastore with the current index kind and makes it the one RETRO reads. */
  /** A shard stored with a voy index (a tool's `--index voy`) needs voy's WASM before it opens. */
  private async openDatastore(bytes: Uint8Array, embedder: MeanEmbedder): Promise<Datastore> {
    if (readShardHeader(bytes).indexKind === 'voy') await this.ensureVoy();
    return Datastore.open(bytes, embedder);
  }

  private async activate(id: string, onProgress?: ProgressCallback): Promise<void> {
    const s = this.requireStore();
    const { embedder } = await this.loadAssets();
    const { record, bytes } = await s.get(id);
    const base = { kind: 'datastore-open' as const, datastoreId: id, target: `open:${id}`, label: `Opening “${record.name}”`, unit: 'chunks' as const };
    onProgress?.({ ...base, done: 0, total: null, finished: false });
    try {
      let datastore = await this.openDatastore(bytes, embedder);
      if (datastore.index.kind !== this.indexKind) {
        if (this.indexKind === 'voy') await this.ensureVoy();
        try {
          datastore = datastore.withIndexKind(this.indexKind);
        } catch (error) {
          // Voy cannot hold every datastore (size limit): keep the exact index and say why.
          this.notices.push(`${errorMessage(error)} Using the flat index for “${record.name}”.`);
        }
      }
      this.active?.datastore.dispose();
      this.active = { id, datastore };
      if (this.bm25?.shard !== datastore.shard) this.bm25 = null;
      await s.setActive(id);
    } finally {
      onProgress?.({ ...base, done: record.chunks, total: record.chunks, finished: true });
    }
  }

  private requireActive(): { id: string; datastore: Datastore } {
    if (!this.active) throw new Error('No datastore is active: pick one in the Datastores panel or add your own text.');
    return this.active;
  }

  /** The active datastore's BM25 index, built now if it is not yet (reported as 'bm25-index'). */
  private bm25Index(onProgress: ProgressCallback | null = this.appProgress): Bm25Index {
    const { id, datastore } = this.requireActive();
    if (this.bm25?.shard === datastore.shard) return this.bm25.index;
    this.bm25 = null;
    const name = datastore.summary.name || id;
    const base = { kind: 'bm25-index' as const, datastoreId: id, target: `bm25:${id}`, label: `Building the BM25 index of “${name}”`, unit: 'chunks' as const };
    onProgress?.({ ...base, done: 0, total: datastore.chunkCount, finished: false });
    const index = Bm25Index.build(datastore.chunkCount, (c) => datastore.chunkText(c), {
      onProgress: (done, total) => onProgress?.({ ...base, done, total, finished: done === total }),
    });
    this.bm25 = { shard: datastore.shard, index };
    return index;
  }

  private retrieveQuery(
    query: { retriever: 'dense'; ids: number[]; random?: boolean } | { retriever: 'bm25'; text: string },
    k: number,
    excludeDocIds: number[],
  ): { neighbours: Neighbour[]; latencyMs: number; datastoreId: string } {
    const { id, datastore } = this.requireActive();
    if (query.retriever === 'dense') {
      const t0 = performance.now();
      // The random-neighbour control: drawn with a generator seeded by the query (docs/controls.md).
      const rng = query.random ? new Rng(seedOfIds(query.ids)) : null;
      const neighbours = rng ? datastore.randomNeighboursExcluding(k, () => rng.next(), query.ids, { excludeDocIds }) : datastore.retrieve(query.ids, k, { excludeDocIds });
      return { neighbours, latencyMs: performance.now() - t0, datastoreId: id };
    }
    const index = this.bm25Index();
    const t0 = performance.now();
    const excluded = new Set(excludeDocIds);
    const docs = datastore.shard.chunkDocs;
    const hits = index.search(query.text, k, excluded.size > 0 ? (c) => excluded.has(docs[c]!) : undefined);
    const neighbours = hits.map((h) => ({ ...datastore.neighbour(h.id, Number.NaN), bm25: h.score }));
    return { neighbours, latencyMs: performance.now() - t0, datastoreId: id };
  }

  /**
   * Runs the GPT over the shard's text in the inference engine (it holds the model) and returns the
   * shard with kNN-LM sections attached. Cancelling the build cancels the key pass too.
   */
  private async attachKnnKeys(bytes: Uint8Array, signal: AbortSignal, onProgress: ProgressCallback): Promise<Uint8Array> {
    const builder = this.keyBuilder;
    if (!builder) throw new Error('The model worker is not connected: kNN-LM keys cannot be built.');
    const cancel = () => void builder.cancel();
    signal.addEventListener('abort', cancel);
    try {
      if (signal.aborted) throw cancelled();
      return await builder.attachKeys(bytes, onProgress);
    } catch (error) {
      // Keep 'AbortError' recognisable for the client whatever the key builder threw.
      if (signal.aborted) throw cancelled();
      throw error;
    } finally {
      signal.removeEventListener('abort', cancel);
    }
  }
}

function info(record: DatastoreRecord): DatastoreInfo {
  const view: DatastoreInfo & { kind?: string } = { ...record };
  delete view.kind;
  return view;
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

/** Names of built-in chunk datastores the server offers that are not stored (deleted by the user). */
function missingDefaults(entries: DefaultEntry[], records: DatastoreRecord[]): string[] {
  const stored = new Set(records.map((r) => r.id));
  return entries.filter((e) => !e.knnlm && !stored.has(e.id)).map((e) => e.name);
}

/** `bm25`: the BM25 score when BM25 found it. */
function display(n: Neighbour & { bm25?: number }, texts: TokenTexts): NeighbourDisplay {
  const real = n.tokenIds.slice(0, n.chunkLength + n.continuationLength);
  return {
    docId: n.docId,
    title: n.title,
    chunkIndex: n.chunkIndex,
    distance: n.distance,
    ...(n.bm25 !== undefined ? { retriever: 'bm25' as const, score: n.bm25 } : { retriever: 'dense' as const }),
    text: detokenizeWikiText(n.text),
    continuationText: detokenizeWikiText(n.continuationText),
    tokens: texts.standalone(real),
    chunkLength: n.chunkLength,
  };
}

function buildProgress(p: BuildProgress, startedAt: number): Progress {
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
    kind: 'build',
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
