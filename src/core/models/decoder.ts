import type { ModelManifest } from '../../protocol/manifest';
import type { RtTensor, Runtime } from '../runtime';

/**
 * How a decoder graph (GPT or RETRO) takes its KV cache (docs/manifest.md). Shipped since
 * 2026-12-07: one tensor per layer in the Hugging Face names, past_key_values.{i}.key/value
 * [batch, n_head, past, head_dim] -> present.{i}.key/value, which the graph reads and writes as they
 * are (transformers.js feeds the same names). Before: one stacked tensor per kind, past_key/
 * past_value [n_layer, batch, ...] -> present_key/present_value, which the graph split into layers
 * and stacked again every step; such a graph still loads (the benchmark runs both).
 */
export interface CacheLayout {
  readonly perLayer: boolean;
  /** Cache inputs, in the order of the matching `present` outputs. */
  readonly past: readonly string[];
  readonly present: readonly string[];
}

/** The layout of the manifest's decoder, read off its inputs. */
export function cacheLayout(manifest: ModelManifest): CacheLayout {
  const names = manifest.onnx.decoder.inputs.map((t) => t.name);
  if (names.includes('past_key')) return { perLayer: false, past: ['past_key', 'past_value'], present: ['present_key', 'present_value'] };
  const past: string[] = [];
  const present: string[] = [];
  for (let i = 0; i < manifest.hyperparameters.n_layer; i++) {
    for (const kind of ['key', 'value']) {
      past.push(`past_key_values.${i}.${kind}`);
      present.push(`present.${i}.${kind}`);
    }
  }
  return { perLayer: true, past, present };
}

/** A decoder's KV cache: the tensors to feed as `layout.past`, in that order. */
export interface KvCache {
  tensors: RtTensor[];
  length: number;
}

export function emptyCache(runtime: Runtime, manifest: ModelManifest, layout: CacheLayout, batch = 1): KvCache {
  const hp = manifest.hyperparameters;
  const dims = layout.perLayer ? [batch, hp.n_head, 0, hp.head_dim] : [hp.n_layer, batch, hp.n_head, 0, hp.head_dim];
  return { tensors: layout.past.map(() => runtime.zeros(dims)), length: 0 };
}

export function cacheFeeds(layout: CacheLayout, cache: KvCache): Record<string, RtTensor> {
  const feeds: Record<string, RtTensor> = {};
  layout.past.forEach((name, i) => (feeds[name] = cache.tensors[i]!));
  return feeds;
}

/** The cache a run returned: its `layout.present` outputs, now `length` positions long. */
export function presentCache(layout: CacheLayout, out: Record<string, RtTensor>, length: number): KvCache {
  return { tensors: layout.present.map((name) => out[name]!), length };
}

export function disposeCache(cache: KvCache | null): void {
  for (const t of cache?.tensors ?? []) t.dispose();
}

/** Chains async calls so a model's sequence state is never touched by two calls at once. */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/** Tokens to drop when the context is full: a quarter of it, rounded down to `multiple`. */
export function defaultOverflowDrop(context: number, multiple = 1): number {
  return Math.max(multiple, Math.floor(context / 4 / multiple) * multiple);
}

/** B equal-length, non-empty sequences of valid ids, flattened row by row for a [B, T] input. */
export function flattenBatch(sequences: readonly (readonly number[])[], vocabSize: number, method: string): { B: number; T: number; flat: number[] } {
  const B = sequences.length;
  const T = sequences[0]?.length ?? 0;
  if (B === 0 || T === 0 || sequences.some((s) => s.length !== T)) throw new RangeError(`${method} needs equal-length non-empty sequences`);
  const flat = sequences.flat();
  checkTokenIds(flat, vocabSize);
  return { B, T, flat };
}

export function checkTokenIds(ids: readonly number[], vocabSize: number): void {
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new RangeError(`token id ${id} outside the vocabulary (0..${vocabSize - 1})`);
  }
}
