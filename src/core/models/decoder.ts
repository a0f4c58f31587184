import type { ModelManifest } from '../../protocol/manifest';
import type { RtTensor, Runtime } from '../runtime';

/** Past keys and values of every layer, [n_layer, batch, n_head, length, head_dim] each. */
export interface KvCache {
  key: RtTensor;
  value: RtTensor;
  length: number;
}

export function emptyCache(runtime: Runtime, manifest: ModelManifest, batch = 1): KvCache {
  const hp = manifest.hyperparameters;
  const dims = [hp.n_layer, batch, hp.n_head, 0, hp.head_dim];
  return { key: runtime.zeros(dims), value: runtime.zeros(dims), length: 0 };
}

export function disposeCache(cache: KvCache | null): void {
  cache?.key.dispose();
  cache?.value.dispose();
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
