/**
 * The app's one handle on its workers: holds the state the UI renders (an external store read with
 * useSyncExternalStore) and turns user actions into worker calls. Everything heavy happens in the
 * workers; this file only routes messages and keeps the latest state.
 */
import * as Comlink from 'comlink';
import type {
  Backend,
  BackendInfo,
  ChunkReport,
  ColumnControls,
  DatastoreInfo,
  EvalRequest,
  EvalResult,
  GenerateRequest,
  GenerationEvent,
  IndexKind,
  ModelDescription,
  ModelKey,
  Progress,
  RetrievalState,
  RetrieveResult,
  RagSequenceDecodeEvent,
  RagSequenceDecodeRequest,
  RagSequenceDecodeResult,
  RetrieverKind,
  ScoreEvent,
  ScoreRequest,
  ScoreResult,
  TokenView,
  KnnExplanationView,
  KnnLmSettings,
  KnnModelState,
  KnnUse,
} from '../protocol/api';
import { startWorkers, type WorkerPair } from './workers';


export interface RunState {
  prefix: TokenView[];
  /** prefix tokens with this id are padding */
  paddingId: number | null;
  prompt: TokenView[];
  generated: TokenView[];
  chunk: number | null;
  chunks: ChunkReport[];
  tokensPerSecond: number | null;
  status: 'waiting' | 'running' | 'done' | 'stopped' | 'error';
  ms: number | null;
  /** Retrieval columns: the experiment controls the run used (random neighbours, the prompt's documents excluded) */
  controls?: ColumnControls;
}

export interface Notice {
  id: number;
  kind: 'error' | 'info';
  message: string;
  /**
   * What the notice is about, when its cause can go away: a new notice with the same owner replaces
   * it, and the client removes it when the cause is gone (see `clearResolvedNotices`).
   */
  owner?: string;
}

export interface AppState {
  phase: 'starting' | 'ready' | 'error';
  fatal: string | null;
  backend: BackendInfo | null;
  models: ModelDescription[];
  progress: Record<string, Progress>;
  retrieval: RetrievalState | null;
  /** null when the worker is still starting */
  runs: Partial<Record<ModelKey, RunState>>;
  generating: boolean;
  /** A datastore build, or a key pass over a stored datastore (`keying`: its id); one at a time. */
  build: { running: boolean; progress: Progress | null; error: string | null; keying?: string };
  busy: string | null;
  notices: Notice[];
  lastQueryMs: number | null;
  lens: LensState;
  /** The curves view's kNN-LM sweep (InferenceApi.evaluate) */
  curves: CurvesState;
  knn: KnnState;
}

/** A whole-text evaluation (the curves view): progress while it runs, then its result. */
export interface CurvesState {
  running: boolean;
  /** targets scored of the targets to score */
  progress: { done: number; total: number } | null;
  result: EvalResult | null;
  /** the request `result` answers (its sweep names the settings) */
  request: EvalRequest | null;
  error: string | null;
  stopped: boolean;
}

/** The kNN-LM column: the user's switch and the datastore the inference worker holds. */
export interface KnnState {
  /** The user's choice; null = the default (on when a kNN-LM datastore is already in this browser). */
  choice: boolean | null;
  /** stored datastore id the column would use (the active datastore's own keys, else the built-in one) */
  sourceId: string | null;
  loading: boolean;
  progress: Progress | null;
  model: KnnModelState | null;
  error: string | null;
  /** GPT tokens per second for building keys here (measured once on request) */
  keyRate: number | null;
}

/** Owners of notices whose cause can go away (Notice.owner is `cause` or `cause:datastoreId`). */
const NOTICE = {
  noActive: 'no-active-datastore',
  noKeys: 'no-knn-keys',
  keysFailed: 'knn-keys-failed',
} as const;

export const KNN_NOT_BUILT_MESSAGE = 'kNN-LM datastore not built: run `npm run setup` (it builds the keys, then the app), or build one from your own text (tick “Also build kNN-LM keys”).';
const KNN_CHOICE_KEY = 'retrolab.knn-enabled.v1';

/** The perplexity lens's run: progress while scoring, then the per-token scores. */
export interface LensState {
  running: boolean;
  /** tokens scored so far over all models, while running */
  progress: { model: ModelKey; done: number; total: number; etaSeconds: number | null } | null;
  /** token and word counts once the text is tokenized */
  counts: { tokens: number; words: number; windows: number } | null;
  result: ScoreResult | null;
  error: string | null;
  stopped: boolean;
}

const initialState: AppState = {
  phase: 'starting',
  fatal: null,
  backend: null,
  models: [],
  progress: {},
  retrieval: null,
  runs: {},
  generating: false,
  build: { running: false, progress: null, error: null },
  busy: null,
  notices: [],
  lastQueryMs: null,
  lens: { running: false, progress: null, counts: null, result: null, error: null, stopped: false },
  curves: { running: false, progress: null, result: null, request: null, error: null, stopped: false },
  knn: { choice: null, sourceId: null, loading: false, progress: null, model: null, error: null, keyRate: null },
};

function emptyRun(): RunState {
  return { prefix: [], paddingId: null, prompt: [], generated: [], chunk: null, chunks: [], tokensPerSecond: null, status: 'waiting', ms: null };
}

function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

export class RetroLabClient {
  private state: AppState = initialState;
  private readonly listeners = new Set<() => void>();
  private workers: WorkerPair | null = null;
  private noticeId = 0;

  /** Tabs of this app tell each other when the stored datastores change, so every tab lists what is stored. */
  private readonly tabs = typeof BroadcastChannel === 'undefined' ? null : new BroadcastChannel('retrolab-datastores');

  constructor(
    private readonly baseUrl: string,
    private readonly preferredBackend: Backend | 'auto',
    /** onnxruntime-web's WASM threads when the page asks (`?threads=N`); else the runtime's default. */
    private readonly wasmThreads?: number,
  ) {
    if (this.tabs) this.tabs.onmessage = () => {
      if (this.state.phase === 'ready') void this.refreshStorage();
    };
  }

  private tellOtherTabs(): void {
    this.tabs?.postMessage('datastores-changed');
  }

  // --- external store -------------------------------------------------------------------------

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getState = (): AppState => this.state;

  private set(update: Partial<AppState> | ((s: AppState) => Partial<AppState>)): void {
    const patch = typeof update === 'function' ? update(this.state) : update;
    this.state = { ...this.state, ...patch };
    for (const listener of this.listeners) listener();
  }

  private onProgress = (progress: Progress): void => {
    this.set((s) => ({ progress: { ...s.progress, [progress.target]: progress } }));
  };

  notify(message: string, kind: Notice['kind'] = 'error', owner?: string): void {
    const id = ++this.noticeId;
    this.set((s) => ({ notices: [...s.notices.filter((n) => owner === undefined || n.owner !== owner), { id, kind, message, ...(owner ? { owner } : {}) }] }));
  }

  /** Removes owned notices whose cause is gone: `stale` says which owners no longer hold. */
  private clearNotices(stale: (owner: string) => boolean): void {
    if (!this.state.notices.some((n) => n.owner !== undefined && stale(n.owner))) return;
    this.set((s) => ({ notices: s.notices.filter((n) => n.owner === undefined || !stale(n.owner)) }));
  }

  /**
   * Notices about the datastores clear when the datastores change under them: "no datastore is
   * active" once one is, "this datastore has no kNN-LM keys" once another is active or its keys load.
   */
  private clearResolvedNotices(): void {
    const activeId = this.state.retrieval?.activeId ?? null;
    const keysId = this.state.knn.model?.datastoreId ?? null;
    this.clearNotices((owner) => {
      const [cause, id] = owner.split(':', 2);
      if (cause === NOTICE.noActive) return activeId !== null;
      // Another datastore is active, or this one has been given keys.
      if (cause === NOTICE.noKeys) return id !== activeId || this.state.retrieval?.knn.retro != null;
      if (cause === NOTICE.keysFailed) return id !== activeId || (keysId !== null && keysId === this.state.retrieval?.knn.retro?.id);
      return false;
    });
  }

  dismiss(id: number): void {
    this.set((s) => ({ notices: s.notices.filter((n) => n.id !== id) }));
  }

  // --- start-up -------------------------------------------------------------------------------

  async start(): Promise<void> {
    if (this.workers) return;
    const workers = startWorkers();
    this.workers = workers;
    const progress = Comlink.proxy(this.onProgress);
    // Both start at once: the datastore copy and the model download do not depend on each other.
    const retrieval = workers.retrieval
      .init(this.baseUrl, progress)
      .then((state) => this.applyRetrieval(state))
      .catch((error: unknown) => this.notify(`Datastores could not be loaded: ${errorMessage(error)}`));
    const inference = workers.inference
      .init(this.baseUrl, this.preferredBackend, progress, this.wasmThreads ? { wasmThreads: this.wasmThreads } : {})
      .then((ready) => this.set({ backend: ready.backend, models: ready.models }))
      .catch((error: unknown) => {
        this.set({ phase: 'error', fatal: `The models could not be loaded: ${errorMessage(error)}` });
        throw error;
      });
    await Promise.allSettled([retrieval, inference]);
    if (this.state.phase !== 'error') this.set({ phase: 'ready' });
    void this.syncKnn();
    void this.requestPersistence();
  }

  /** Asks the browser not to evict the datastores; the answer is shown next to the storage bar. */
  private async requestPersistence(): Promise<void> {
    if (!navigator.storage?.persist) return;
    try {
      const persisted = (await navigator.storage.persisted()) || (await navigator.storage.persist());
      const retrieval = this.state.retrieval;
      if (retrieval) this.set({ retrieval: { ...retrieval, storage: { ...retrieval.storage, persisted } } });
    } catch {
      // Some browsers refuse without a user gesture; the storage line then says "not persistent".
    }
  }

  private get api(): WorkerPair {
    if (!this.workers) throw new Error('RetroLab has not started yet.');
    return this.workers;
  }

  // --- generation -----------------------------------------------------------------------------

  async generate(request: GenerateRequest): Promise<void> {
    if (this.state.generating) return;
    if (request.retro.retrieval && request.models.includes('retro') && !this.state.retrieval?.activeId) {
      this.notify('No datastore is active, so RETRO runs without retrieval. Pick or add a datastore to see neighbours.', 'info', NOTICE.noActive);
      request = { ...request, retro: { ...request.retro, retrieval: false } };
    }
    if (request.retro.retrieval && request.models.includes('retro') && !(await this.prepareAlignedRetrieval('runs'))) {
      request = { ...request, retro: { ...request.retro, retrieval: false } };
    }
    // RETRO may just have loaded the keys the kNN-LM column was waiting for: that column runs too.
    if (this.knnEnabled() && this.state.knn.model && !request.models.includes('knnlm')) {
      request = { ...request, models: [...request.models, 'knnlm'] };
    }
    if (request.models.includes('knnlm') && !this.state.knn.model) {
      request = { ...request, models: request.models.filter((m) => m !== 'knnlm') };
    }
    const runs: Partial<Record<ModelKey, RunState>> = {};
    for (const model of request.models) runs[model] = emptyRun();
    this.set({ generating: true, runs });
    const onEvent = Comlink.proxy((event: GenerationEvent) => this.applyEvent(event));
    try {
      await this.api.inference.generate(request, onEvent);
    } catch (error) {
      this.set((s) => ({ runs: markUnfinished(s.runs, 'error') }));
      this.notify(`Generation failed: ${errorMessage(error)}`);
    } finally {
      this.set((s) => ({ generating: false, runs: markUnfinished(s.runs, 'stopped') }));
    }
  }

  stop(): void {
    if (this.state.generating) void this.api.inference.stop();
  }

  /**
   * RAG-Sequence's thorough decoding of the prompt (src/core/ragseq/decode.ts). It holds the GPT as a
   * generation does, so the compare view counts it as generating: Stop and Esc stop it.
   */
  async ragSequenceDecode(request: RagSequenceDecodeRequest, onEvent: (event: RagSequenceDecodeEvent) => void): Promise<RagSequenceDecodeResult> {
    if (this.state.generating) throw new Error('A generation is already running.');
    if (this.state.lens.running || this.state.curves.running) throw new Error('The lens or the curves are scoring a text: stop them (or wait) before generating.');
    this.set({ generating: true });
    try {
      return await this.api.inference.ragSequenceDecode(request, Comlink.proxy(onEvent));
    } finally {
      this.set({ generating: false });
    }
  }

  private applyEvent(event: GenerationEvent): void {
    this.set((s) => {
      const run = s.runs[event.model] ?? emptyRun();
      let next: RunState;
      switch (event.type) {
        case 'start':
          next = { ...run, prefix: event.prefix, paddingId: event.paddingId, prompt: event.prompt, chunk: event.chunk, status: 'running', ...(event.controls ? { controls: event.controls } : {}) };
          break;
        case 'tokens':
          next = { ...run, generated: [...run.generated, ...event.tokens], tokensPerSecond: event.tokensPerSecond };
          break;
        case 'chunk': {
          const chunks = run.chunks.filter((c) => c.chunk !== event.report.chunk);
          chunks.push(event.report);
          chunks.sort((a, b) => a.chunk - b.chunk);
          return { runs: { ...s.runs, [event.model]: { ...run, chunks } }, lastQueryMs: event.report.latencyMs };
        }
        case 'done':
          next = { ...run, tokensPerSecond: event.tokensPerSecond, status: event.stopped ? 'stopped' : 'done', ms: event.ms };
          break;
      }
      return { runs: { ...s.runs, [event.model]: next } };
    });
  }

  // --- datastores -----------------------------------------------------------------------------

  /** Takes a new retrieval state; the worker's notices (drained on each call) become toasts. */
  private applyRetrieval(state: RetrievalState): void {
    this.set({ retrieval: stripExtras(state) });
    this.clearResolvedNotices();
    for (const notice of state.notices) this.notify(notice, 'info');
    void this.syncKnn();
  }

  private async datastoreAction<T extends RetrievalState>(label: string, action: () => Promise<T>): Promise<T | null> {
    this.set({ busy: label });
    try {
      const result = await action();
      this.applyRetrieval(result);
      return result;
    } catch (error) {
      this.notify(errorMessage(error));
      return null;
    } finally {
      this.set({ busy: null });
    }
  }

  async setActive(id: string): Promise<void> {
    await this.datastoreAction('Loading datastore…', () => this.api.retrieval.setActive(id, Comlink.proxy(this.onProgress)));
  }

  async setIndexKind(kind: IndexKind): Promise<void> {
    await this.datastoreAction(`Building ${kind} index…`, () =>
      this.api.retrieval.setIndexKind(kind, Comlink.proxy(this.onProgress)),
    );
  }

  async restoreDefaults(): Promise<void> {
    await this.datastoreAction('Restoring built-in datastores…', () => this.api.retrieval.restoreDefaults(Comlink.proxy(this.onProgress)));
  }

  async remove(id: string): Promise<void> {
    if (await this.datastoreAction('Deleting…', () => this.api.retrieval.remove(id))) this.tellOtherTabs();
  }

  async importFile(file: File): Promise<DatastoreInfo | null> {
    const result = await this.datastoreAction('Importing…', () => this.api.retrieval.importFile(file));
    if (result) this.tellOtherTabs();
    return result?.imported ?? null;
  }

  async exportFile(id: string): Promise<void> {
    try {
      const file = await this.api.retrieval.exportFile(id);
      const url = URL.createObjectURL(file);
      const a = document.createElement('a');
      a.href = url;
      a.download = file.name;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (error) {
      this.notify(`Export failed: ${errorMessage(error)}`);
    }
  }

  /**
   * Builds a datastore from the user's files in the retrieval worker; returns it when stored. With
   * `knnKeys` the GPT also runs over the text (inference worker) and the keys go into the same shard.
   */
  async build(name: string, files: File[], makeActive = true, knnKeys = false): Promise<DatastoreInfo | null> {
    if (this.state.build.running) return null;
    if (knnKeys && this.state.generating) {
      this.set({ build: { running: false, progress: null, error: 'A generation is running: stop it or wait, then build with kNN-LM keys.' } });
      return null;
    }
    this.set({ build: { running: true, progress: null, error: null } });
    // A late progress message can arrive after the build settled; it must not resurrect the bar.
    const onProgress = Comlink.proxy((progress: Progress) => this.set((s) => (s.build.running ? { build: { ...s.build, progress } } : {})));
    try {
      const result = await this.api.retrieval.build({ name, files, ...(knnKeys ? { knnKeys } : {}) }, onProgress);
      this.set({ build: { running: false, progress: null, error: null } });
      this.applyRetrieval(result);
      this.tellOtherTabs();
      if (makeActive) await this.setActive(result.built.id);
      return result.built;
    } catch (error) {
      const cancelled = error instanceof Error && error.name === 'AbortError';
      this.set({ build: { running: false, progress: null, error: cancelled ? null : errorMessage(error) } });
      if (cancelled) this.notify('Build cancelled; nothing was stored.', 'info');
      return null;
    }
  }

  /**
   * Runs the GPT over a stored datastore that has no kNN-LM keys and stores them in it (what “Also
   * build kNN-LM keys” adds to a build), with the build's progress bar and Cancel; true when stored.
   */
  async addKnnKeys(id: string): Promise<boolean> {
    if (this.state.build.running) return false;
    // The list entry starts it, so its problems are notices there, not the build form's error line.
    if (this.state.generating) {
      this.notify('A generation is running: stop it or wait, then add the kNN-LM keys.');
      return false;
    }
    this.set({ build: { running: true, progress: null, error: null, keying: id } });
    const onProgress = Comlink.proxy((progress: Progress) => this.set((s) => (s.build.running ? { build: { ...s.build, progress } } : {})));
    try {
      const result = await this.api.retrieval.addKnnKeys(id, onProgress);
      this.set({ build: { running: false, progress: null, error: null } });
      this.applyRetrieval(result);
      this.tellOtherTabs();
      return true;
    } catch (error) {
      this.set({ build: { running: false, progress: null, error: null } });
      const cancelled = error instanceof Error && error.name === 'AbortError';
      this.notify(cancelled ? 'Cancelled; the datastore is as it was.' : `The kNN-LM keys could not be added: ${errorMessage(error)}`, cancelled ? 'info' : 'error');
      return false;
    }
  }

  cancelBuild(): void {
    void this.api.retrieval.cancelBuild();
  }

  clearBuildError(): void {
    this.set((s) => ({ build: { ...s.build, error: null } }));
  }

  /** The datastore search box; BM25's index is built on its first search, its progress shown like a load's. */
  async retrieveText(text: string, k: number, excludeDocIds: number[] = [], retriever: RetrieverKind = 'dense'): Promise<RetrieveResult> {
    const result = await this.api.retrieval.retrieveText(text, k, excludeDocIds, retriever, Comlink.proxy(this.onProgress));
    this.set({ lastQueryMs: result.latencyMs });
    return result;
  }

  /** Token ids of `text` as the models see it (the inference worker's tokenizer). */
  encode(text: string): Promise<number[]> {
    return this.api.inference.encode(text);
  }

  /** Text of token ids, the inverse of `encode`. */
  decode(ids: number[]): Promise<string> {
    return this.api.inference.decode(ids);
  }

  // --- kNN-LM --------------------------------------------------------------------------------

  /** Whether the kNN-LM column is on: the user's switch, else on when a datastore is already here. */
  knnEnabled(state: AppState = this.state): boolean {
    return state.knn.choice ?? !!state.retrieval?.knn.knnlm?.stored;
  }

  /** The user's switch. Turning it on the first time copies the built-in kNN-LM datastore in (~210 MB). */
  async setKnnEnabled(on: boolean): Promise<void> {
    saveKnnChoice(on);
    this.set((s) => ({ knn: { ...s.knn, choice: on, error: null } }));
    await this.syncKnn();
  }

  /**
   * Asks the inference engine for the kNN-LM keys of the active datastore when the switch is on (it
   * decides which, with the retrieval engine: RetrievalState.knn); a no-op when they are loaded.
   */
  private async syncKnn(): Promise<void> {
    if (!this.workers || this.state.models.length === 0 || !this.state.retrieval) return;
    if (this.state.knn.choice === null) {
      const stored = readKnnChoice();
      if (stored !== null) this.set((s) => ({ knn: { ...s.knn, choice: stored } }));
    }
    const source = this.state.retrieval.knn.knnlm;
    this.set((s) => ({ knn: { ...s.knn, sourceId: source?.id ?? null } }));
    if (!this.knnEnabled()) return;
    const knn = this.state.knn;
    if (source && (knn.loading || knn.model?.datastoreId === source.id)) return;
    await this.loadKnnKeys('knnlm', source !== null && !source.stored);
    // The active datastore may have changed while these keys loaded.
    const now = this.state.retrieval.knn.knnlm;
    if (now && now.id !== this.state.knn.model?.datastoreId && !this.state.knn.loading && !this.state.knn.error) await this.syncKnn();
  }

  /**
   * A token-aligned RETRO searches the active datastore's kNN-LM keys: loads them (with progress)
   * when they are not loaded. False, with a notice, when the active datastore has none; true for a
   * chunk-retrieval RETRO, whose neighbours come from the retrieval worker.
   */
  private async prepareAlignedRetrieval(verb: string): Promise<boolean> {
    if (!this.state.models.some((m) => m.architecture === 'retro' && m.tokenAligned) || !this.state.retrieval?.activeId) return true;
    const source = this.state.retrieval.knn.retro;
    if (!source) {
      this.notify(`RETRO retrieves with the GPT’s kNN-LM keys, which “${activeName(this.state.retrieval)}” does not have, so it ${verb} without retrieval. Use WikiText-2 train, or give your datastore kNN-LM keys (“Add kNN-LM keys” in the datastore list).`, 'info', `${NOTICE.noKeys}:${this.state.retrieval.activeId}`);
      return false;
    }
    if (this.state.knn.model?.datastoreId === source.id) return true;
    const failure = await this.loadKnnKeys('retro', !source.stored);
    if (failure) this.notify(`RETRO could not load the kNN-LM keys it retrieves with, so it ${verb} without retrieval: ${failure}`, 'error', `${NOTICE.keysFailed}:${this.state.retrieval.activeId}`);
    return failure === null;
  }

  /**
   * Has the inference engine load the keys `use` reads for the active datastore, with progress; the
   * error message, or null. `copiesIn`: the built-in keys are copied into storage first (the meter changes).
   */
  private async loadKnnKeys(use: KnnUse, copiesIn: boolean): Promise<string | null> {
    this.set((s) => ({ knn: { ...s.knn, loading: true, progress: null, error: null } }));
    const onProgress = Comlink.proxy((progress: Progress) => {
      this.onProgress(progress);
      this.set((s) => (s.knn.loading ? { knn: { ...s.knn, progress } } : {}));
    });
    try {
      const model = await this.api.inference.loadKnnFor(use, onProgress);
      this.set((s) => ({ knn: { ...s.knn, loading: false, progress: null, model, error: model ? null : use === 'knnlm' ? KNN_NOT_BUILT_MESSAGE : s.knn.error } }));
      this.clearResolvedNotices();
      if (!model && use === 'retro') return 'the active datastore has no kNN-LM keys';
      if (copiesIn) await this.refreshStorage();
      return null;
    } catch (error) {
      this.set((s) => ({ knn: { ...s.knn, loading: false, progress: null, error: errorMessage(error) } }));
      return errorMessage(error);
    }
  }

  /** Frees the built-in kNN-LM datastore's storage (it is not in the datastore list); kNN-LM turns off. */
  async removeKnnDefault(): Promise<void> {
    const d = this.state.retrieval?.knnDefault;
    if (!d?.stored) return;
    saveKnnChoice(false);
    this.set((s) => ({ knn: { ...s.knn, choice: false, error: null } }));
    if (this.state.knn.model?.datastoreId === d.id) {
      await this.api.inference.unloadKnn().catch(() => undefined);
      this.set((s) => ({ knn: { ...s.knn, model: null } }));
    }
    await this.remove(d.id);
  }

  /** The kNN-LM column's distribution after sequence position `position`, optionally re-mixed. */
  explainKnn(position: number, chosenTokenId: number, settings?: Partial<KnnLmSettings>): Promise<KnnExplanationView> {
    return this.api.inference.explainKnn(position, settings ? { settings } : {}, chosenTokenId);
  }

  /** GPT key-building speed here, measured once (the custom datastore form quotes it). */
  async measureKeyRate(): Promise<number | null> {
    if (this.state.knn.keyRate !== null) return this.state.knn.keyRate;
    try {
      const rate = await this.api.inference.keyRate();
      if (rate > 0) this.set((s) => ({ knn: { ...s.knn, keyRate: rate } }));
      return rate > 0 ? rate : null;
    } catch {
      return null;
    }
  }

  // --- perplexity lens -------------------------------------------------------------------------

  /** Scores a text under each model (src/core/engine/score.ts); the previous result stays until the new one is in. */
  async score(request: ScoreRequest): Promise<ScoreResult | null> {
    if (this.state.lens.running) return null;
    if (this.state.generating) {
      this.set((s) => ({ lens: { ...s.lens, error: 'A generation is running: stop it (or wait) before scoring.' } }));
      return null;
    }
    if (this.state.curves.running) {
      this.set((s) => ({ lens: { ...s.lens, error: 'The curves view is evaluating a text: stop it (or wait) before scoring.' } }));
      return null;
    }
    if (request.retro.retrieval && request.models.includes('retro') && !this.state.retrieval?.activeId) {
      this.notify('No datastore is active, so RETRO is scored without retrieval. Pick or add a datastore to score it with neighbours.', 'info', NOTICE.noActive);
      request = { ...request, retro: { ...request.retro, retrieval: false } };
    }
    if (request.retro.retrieval && request.models.includes('retro') && !(await this.prepareAlignedRetrieval('is scored'))) {
      request = { ...request, retro: { ...request.retro, retrieval: false } };
    }
    const missing = request.models.includes('knnlm') && !this.state.knn.model
      ? 'kNN-LM is off: turn it on in the compare view to score with it.'
      : (request.models.includes('icralm') || request.models.includes('ragseq')) && !this.state.retrieval?.activeId
        ? `${request.models.includes('icralm') ? 'In-Context RALM' : 'RAG-Sequence'} needs an active datastore to retrieve passages from.`
        : null;
    if (missing) {
      this.set((s) => ({ lens: { ...s.lens, error: missing } }));
      return null;
    }
    this.set((s) => ({ lens: { ...s.lens, running: true, progress: null, counts: null, error: null, stopped: false } }));
    const onEvent = Comlink.proxy((event: ScoreEvent) => {
      this.set((s) => {
        if (!s.lens.running) return {};
        if (event.type === 'tokenized') return { lens: { ...s.lens, counts: { tokens: event.tokens, words: event.words, windows: event.windows } } };
        const { model, done, total, etaSeconds } = event;
        return { lens: { ...s.lens, progress: { model, done, total, etaSeconds } } };
      });
    });
    try {
      const result = await this.api.inference.score(request, onEvent);
      this.set((s) => ({ lens: { ...s.lens, running: false, progress: null, result } }));
      return result;
    } catch (error) {
      const stopped = error instanceof Error && error.name === 'AbortError';
      this.set((s) => ({ lens: { ...s.lens, running: false, progress: null, stopped, error: stopped ? null : errorMessage(error) } }));
      return null;
    }
  }

  /**
   * The lens's default text, WikiText-2 test, served next to the default datastores
   * (public/datastores/, built by `npm run setup:datastores`; the app does not ship the corpus).
   */
  async loadLensSample(): Promise<string> {
    const url = new URL('datastores/wikitext-2-test.tokens', this.baseUrl);
    const response = await fetch(url);
    if (!response.ok) {
      throw new Error(`WikiText-2 test is not on this server (${url.pathname}: HTTP ${response.status}); run npm run setup:datastores. Paste text or pick a file instead.`);
    }
    return response.text();
  }

  stopScore(): void {
    if (this.state.lens.running) void this.api.inference.stopScore();
  }

  clearLensError(): void {
    this.set((s) => ({ lens: { ...s.lens, error: null } }));
  }

  // --- curves ----------------------------------------------------------------------------------

  /**
   * Perplexity of a whole text for one model (InferenceApi.evaluate): for kNN-LM every setting of
   * `request.knn.sweep` comes from one forward and one search pass. The previous result stays until
   * the new one is in; `stopEvaluate` stops it.
   */
  async evaluate(request: EvalRequest): Promise<EvalResult | null> {
    if (this.state.curves.running) return null;
    const busy = this.state.generating
      ? 'A generation is running: stop it (or wait) before computing curves.'
      : this.state.lens.running
        ? 'The lens is scoring a text: stop it (or wait) before computing curves.'
        : request.model === 'knnlm' && !this.state.knn.model
          ? 'kNN-LM is off: turn it on to compute its curves.'
          : null;
    if (busy) {
      this.set((s) => ({ curves: { ...s.curves, error: busy } }));
      return null;
    }
    this.set((s) => ({ curves: { ...s.curves, running: true, progress: null, error: null, stopped: false } }));
    const onProgress = Comlink.proxy((done: number, total: number) => {
      this.set((s) => (s.curves.running ? { curves: { ...s.curves, progress: { done, total } } } : {}));
    });
    try {
      const result = await this.api.inference.evaluate(request, onProgress);
      this.set((s) => ({ curves: { ...s.curves, running: false, progress: null, result, request } }));
      return result;
    } catch (error) {
      const stopped = error instanceof Error && error.name === 'AbortError';
      this.set((s) => ({ curves: { ...s.curves, running: false, progress: null, stopped, error: stopped ? null : errorMessage(error) } }));
      return null;
    }
  }

  /** Stops a running `evaluate` (it rejects with an AbortError; the state says stopped). */
  stopEvaluate(): void {
    if (this.state.curves.running) void this.api.inference.stopScore();
  }

  clearCurvesError(): void {
    this.set((s) => ({ curves: { ...s.curves, error: null } }));
  }

  async refreshStorage(): Promise<void> {
    try {
      this.applyRetrieval(await this.api.retrieval.state());
    } catch (error) {
      this.notify(errorMessage(error));
    }
  }
}

function markUnfinished(runs: Partial<Record<ModelKey, RunState>>, status: 'stopped' | 'error') {
  const next: Partial<Record<ModelKey, RunState>> = {};
  for (const [key, run] of Object.entries(runs) as [ModelKey, RunState][]) {
    next[key] = run.status === 'running' || run.status === 'waiting' ? { ...run, status } : run;
  }
  return next;
}

function stripExtras(state: RetrievalState): RetrievalState {
  const { datastores, activeId, indexKind, storage, missingDefaults, knnDefault, knn } = state;
  return { datastores, activeId, indexKind, storage, missingDefaults, notices: [], knnDefault, knn };
}

function activeName(retrieval: RetrievalState): string {
  return retrieval.datastores.find((d) => d.id === retrieval.activeId)?.name ?? 'the active datastore';
}

function readKnnChoice(): boolean | null {
  try {
    const raw = localStorage.getItem(KNN_CHOICE_KEY);
    return raw === 'on' ? true : raw === 'off' ? false : null;
  } catch {
    return null;
  }
}

function saveKnnChoice(on: boolean): void {
  try {
    localStorage.setItem(KNN_CHOICE_KEY, on ? 'on' : 'off');
  } catch {
    // Private mode: the switch just won't persist.
  }
}
