/**
 * voy-search 0.6.3 (a k-d tree compiled to WASM) behind VectorIndex; the only importer of
 * voy-search. What it cannot do, and how this adapter copes (measured in docs/datastore-format.md):
 * - it returns ids without distances: distances are computed here from the exact vectors;
 * - it pads or truncates every vector to 768 dims: dims above 768 are refused;
 * - it serializes to one JSON string of ~7 KB per vector (768 floats as text), which passes V8's
 *   string limit near 100k x 384, and its build panicked at 500k: datastores over VOY_MAX_VECTORS
 *   are refused with VoyLimitError;
 * - its package imports its .wasm as an ES module, which neither Node nor a plain Vite worker
 *   loads: the glue is imported directly and the WASM bytes are handed to `initVoy` by the caller
 *   (Node: the file's bytes; Vite: `fetch(new URL(... '?url'))`, see initVoy).
 */
import * as glue from 'voy-search/voy_search_bg.js';
import type { SearchOptions, SearchResult } from '../../protocol/retrieval';
import { TopK, dot, toSearchResult, type VectorIndex, type VectorSource } from './vector-index';

/**
 * At 20k x 256 voy's JSON is 138 MB and its build takes ~2.5 s and ~350 MB (Node, this machine);
 * at 50k it was 356 MB of JSON and 1.7 GB resident during deserialize, too much for a browser tab.
 */
export const VOY_MAX_VECTORS = 20_000;
/** voy pads/truncates to this many dimensions. */
export const VOY_MAX_DIM = 768;

export class VoyLimitError extends Error {
  override name = 'VoyLimitError';
}

export class VoyNotLoadedError extends Error {
  override name = 'VoyNotLoadedError';
  constructor() {
    super('voy-search WASM is not loaded: await initVoy(<wasm bytes or fetch(url)>) first');
  }
}

export type VoyWasmSource = WebAssembly.Module | BufferSource | Response | PromiseLike<Response>;

let loaded: Promise<void> | null = null;
let ready = false;

function isResponse(x: unknown): x is Response {
  return typeof Response !== 'undefined' && x instanceof Response;
}

/**
 * Loads voy's WASM once. Node: `initVoy(readFileSync(require.resolve('voy-search/voy_search_bg.wasm')))`
 * (src/core/datastore/node.ts `loadVoyForNode`). Vite worker:
 * `import url from 'voy-search/voy_search_bg.wasm?url'; await initVoy(fetch(url))`.
 */
export function initVoy(source: VoyWasmSource): Promise<void> {
  if (loaded) return loaded;
  const imports = { './voy_search_bg.js': glue as unknown as WebAssembly.ModuleImports };
  loaded = (async () => {
    const resolved = 'then' in (source as object) ? await (source as PromiseLike<Response>) : source;
    let instance: WebAssembly.Instance;
    if (resolved instanceof WebAssembly.Module) {
      instance = await WebAssembly.instantiate(resolved, imports);
    } else if (isResponse(resolved)) {
      if (!resolved.ok) throw new Error(`could not fetch voy-search WASM: HTTP ${resolved.status}`);
      instance = (await WebAssembly.instantiate(await resolved.arrayBuffer(), imports)).instance;
    } else {
      instance = (await WebAssembly.instantiate(resolved as BufferSource, imports)).instance;
    }
    glue.__wbg_set_wasm(instance.exports);
    ready = true;
  })();
  loaded.catch(() => {
    loaded = null;
  });
  return loaded;
}

export function voyLoaded(): boolean {
  return ready;
}

function checkSize(count: number, dim: number): void {
  if (count > VOY_MAX_VECTORS) {
    throw new VoyLimitError(
      `the voy index is limited to ${VOY_MAX_VECTORS.toLocaleString('en')} chunks (this datastore has ${count.toLocaleString('en')}): ` +
        'its JSON serialization grows by ~7 KB per chunk. Use the flat index, which is exact and faster.',
    );
  }
  if (dim > VOY_MAX_DIM) throw new VoyLimitError(`voy truncates vectors to ${VOY_MAX_DIM} dimensions; these have ${dim}`);
}

export class VoyIndex implements VectorIndex {
  readonly kind = 'voy' as const;
  readonly size: number;
  readonly dim: number;
  private voy: glue.Voy | null;
  private readonly buffer: Float32Array;

  private constructor(voy: glue.Voy, private readonly source: VectorSource) {
    this.voy = voy;
    this.size = source.count;
    this.dim = source.dim;
    this.buffer = new Float32Array(source.dim);
  }

  /** Builds voy's tree over all vectors of `source` (synchronous: seconds at the limit). */
  static build(source: VectorSource): VoyIndex {
    if (!ready) throw new VoyNotLoadedError();
    checkSize(source.count, source.dim);
    const v = new Float32Array(source.dim);
    const embeddings: glue.EmbeddedResource[] = [];
    for (let i = 0; i < source.count; i++) {
      source.vector(i, v);
      embeddings.push({ id: String(i), title: '', url: '', embeddings: Array.from(v) });
    }
    return new VoyIndex(new glue.Voy({ embeddings }), source);
  }

  /** From the UTF-8 JSON `serialize` wrote; distances come from `source`. */
  static deserialize(bytes: Uint8Array, source: VectorSource): VoyIndex {
    if (!ready) throw new VoyNotLoadedError();
    checkSize(source.count, source.dim);
    const voy = glue.Voy.deserialize(new TextDecoder().decode(bytes));
    if (voy.size() !== source.count) {
      const n = voy.size();
      voy.free();
      throw new RangeError(`voy index holds ${n} vectors, the datastore ${source.count}`);
    }
    return new VoyIndex(voy, source);
  }

  private get live(): glue.Voy {
    if (!this.voy) throw new Error('this voy index was disposed');
    return this.voy;
  }

  search(query: Float32Array, k: number, options: SearchOptions = {}): SearchResult {
    k = Math.max(0, Math.min(Math.floor(k), this.size));
    if (k === 0) return { ids: new Int32Array(0), distances: new Float32Array(0) };
    if (query.length !== this.dim) throw new RangeError(`query has ${query.length} dims, the index ${this.dim}`);
    // voy cannot filter: ask for more until k survive the exclusion (or everything was returned).
    let ask = k;
    for (;;) {
      const found = this.live.search(query, ask).neighbors;
      const top = new TopK(k);
      for (const hit of found) {
        const id = Number(hit.id);
        if (options.exclude?.(id)) continue;
        this.source.vector(id, this.buffer);
        top.push(dot(query, this.buffer, this.dim), id);
      }
      if (top.length >= k || ask >= this.size) return toSearchResult(top.sorted());
      ask = Math.min(this.size, ask * 4);
    }
  }

  /** voy's own serialization (one JSON string), UTF-8 encoded. */
  serialize(): Uint8Array {
    return new TextEncoder().encode(this.live.serialize());
  }

  dispose(): void {
    this.voy?.free();
    this.voy = null;
  }
}
