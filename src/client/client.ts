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
  DatastoreInfo,
  GenerateRequest,
  GenerationEvent,
  IndexKind,
  ModelInfo,
  ModelKey,
  Progress,
  RetrievalState,
  RetrieveResult,
  TokenView,
} from '../../workers/protocol';
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
}

export interface Notice {
  id: number;
  kind: 'error' | 'info';
  message: string;
}

export interface AppState {
  phase: 'starting' | 'ready' | 'error';
  fatal: string | null;
  backend: BackendInfo | null;
  models: ModelInfo[];
  progress: Record<string, Progress>;
  retrieval: RetrievalState | null;
  /** null when the worker is still starting */
  runs: Partial<Record<ModelKey, RunState>>;
  generating: boolean;
  build: { running: boolean; progress: Progress | null; error: string | null };
  busy: string | null;
  notices: Notice[];
  lastQueryMs: number | null;
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

  constructor(
    private readonly baseUrl: string,
    private readonly preferredBackend: Backend | 'auto',
  ) {}

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

  notify(message: string, kind: Notice['kind'] = 'error'): void {
    const id = ++this.noticeId;
    this.set((s) => ({ notices: [...s.notices, { id, kind, message }] }));
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
      .init(this.baseUrl, this.preferredBackend, progress)
      .then((ready) => this.set({ backend: ready.backend, models: ready.models }))
      .catch((error: unknown) => {
        this.set({ phase: 'error', fatal: `The models could not be loaded: ${errorMessage(error)}` });
        throw error;
      });
    await Promise.allSettled([retrieval, inference]);
    if (this.state.phase !== 'error') this.set({ phase: 'ready' });
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
      this.notify('No datastore is active, so RETRO runs without retrieval. Pick or add a datastore to see neighbours.', 'info');
      request = { ...request, retro: { ...request.retro, retrieval: false } };
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

  private applyEvent(event: GenerationEvent): void {
    this.set((s) => {
      const run = s.runs[event.model] ?? emptyRun();
      let next: RunState;
      switch (event.type) {
        case 'start':
          next = { ...run, prefix: event.prefix, paddingId: event.paddingId, prompt: event.prompt, chunk: event.chunk, status: 'running' };
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
    for (const notice of state.notices) this.notify(notice, 'info');
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
    await this.datastoreAction('Deleting…', () => this.api.retrieval.remove(id));
  }

  async importFile(file: File): Promise<DatastoreInfo | null> {
    const result = await this.datastoreAction('Importing…', () => this.api.retrieval.importFile(file));
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

  /** Builds a datastore from the user's files in the retrieval worker; returns it when stored. */
  async build(name: string, files: File[], makeActive = true): Promise<DatastoreInfo | null> {
    if (this.state.build.running) return null;
    this.set({ build: { running: true, progress: null, error: null } });
    // A late progress message can arrive after the build settled; it must not resurrect the bar.
    const onProgress = Comlink.proxy((progress: Progress) => this.set((s) => (s.build.running ? { build: { ...s.build, progress } } : {})));
    try {
      const result = await this.api.retrieval.build({ name, files }, onProgress);
      this.set({ build: { running: false, progress: null, error: null } });
      this.applyRetrieval(result);
      if (makeActive) await this.setActive(result.built.id);
      return result.built;
    } catch (error) {
      const cancelled = error instanceof Error && error.name === 'AbortError';
      this.set({ build: { running: false, progress: null, error: cancelled ? null : errorMessage(error) } });
      if (cancelled) this.notify('Build cancelled; nothing was stored.', 'info');
      return null;
    }
  }

  cancelBuild(): void {
    void this.api.retrieval.cancelBuild();
  }

  clearBuildError(): void {
    this.set((s) => ({ build: { ...s.build, error: null } }));
  }

  async retrieveText(text: string, k: number, excludeDocIds: number[] = []): Promise<RetrieveResult> {
    const result = await this.api.retrieval.retrieveText(text, k, excludeDocIds);
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
  const { datastores, activeId, indexKind, storage, missingDefaults } = state;
  return { datastores, activeId, indexKind, storage, missingDefaults, notices: [] };
}
