/**
 * kNN-LM perplexity by the eval protocol of docs/manifest.md (src/core/eval/perplexity.ts's windows),
 * scoring the GPT and the kNN-LM from the same forward pass. Only scored positions are searched
 * (half of each window with the default stride), and the search runs once per position with the
 * largest k asked for, so a sweep over λ, T and k costs one search per token, not one per setting.
 *
 * `evaluatePerplexity(new KnnLmModel(...))` gives the same kNN-LM numbers (a test checks it) but
 * searches every position of every window.
 */
import { selectWindows, streamWindows } from '../eval/perplexity';
import type { KnnDatastore } from './datastore';
import { logSoftmaxAt } from '../generate/sampler';
import { knnLogProbOf, mixLogProb, validateKnnSettings } from './interpolate';
import type { KeyModel } from './build';
import { followPointers, pointerNeighbours } from './retomaton';
import { MAX_KNN_K, type KnnLmSettings } from './types';

export interface KnnEvalOptions {
  context: number;
  stride: number;
  maxWindows?: number;
  /**
   * Score only windows [start, end) of the protocol's windows, so one evaluation can run as several
   * processes (one per core) whose totals add up (cli/merge-eval.ts).
   */
  windowRange?: { start: number; end: number };
  /** Settings to score; the first is the headline. */
  settings: readonly KnnLmSettings[];
  /**
   * RetoMaton (retomaton.ts): follow the pointers of the previous target's neighbours when at least
   * this many survive, instead of searching; pointers restart at each window's first scored target.
   */
  pointers?: number;
  onProgress?: (done: number, total: number) => void;
  /** Filled with the headline setting's log p(ids[j+1]) at index j for every scored target. */
  tokenLogProbs?: Float32Array;
  /** Checked before each window; an aborted run rejects with an AbortError. */
  signal?: AbortSignal;
}

export interface KnnEvalScore {
  settings: KnnLmSettings;
  nll: number;
  token_ppl: number;
}

export interface KnnEvalTotals {
  windows: number;
  /** windows of the whole protocol (more than `windows` when a windowRange was given) */
  total_windows: number;
  scored_tokens: number;
  /** the GPT alone, from the same forward */
  lm: { nll: number; token_ppl: number };
  knnlm: KnnEvalScore[];
  /** share of scored tokens whose target is among the values of their k neighbours (largest k) */
  target_in_neighbours: number;
  search: { queries: number; k: number; median_ms: number; p95_ms: number; mean_candidates: number; total_seconds: number };
  forward_seconds: number;
  /** RetoMaton: scored targets whose neighbours came from pointers, not a search */
  searches_skipped: number;
}

export async function evaluateKnnLm(model: KeyModel, datastore: KnnDatastore, ids: ArrayLike<number>, options: KnnEvalOptions): Promise<KnnEvalTotals> {
  if (options.settings.length === 0) throw new RangeError('evaluateKnnLm needs at least one setting');
  for (const s of options.settings) validateKnnSettings(s, MAX_KNN_K);
  const V = model.manifest.hyperparameters.vocab_size;
  const keyDim = model.manifest.hyperparameters.d_model;
  const kMax = Math.max(...options.settings.map((s) => s.k));
  const allWindows = streamWindows(ids.length, options.context, options.stride, options.maxWindows);
  const windows = selectWindows(allWindows, options.windowRange);
  const values = datastore.section.values;
  const nll = new Float64Array(options.settings.length);
  let lmNll = 0;
  let scored = 0;
  let hits = 0;
  let candidates = 0;
  let forwardMs = 0;
  let searchMs = 0;
  const times: number[] = [];
  let done = 0;
  let skipped = 0;
  const minPointers = options.pointers ?? 0;
  for (const w of windows) {
    options.signal?.throwIfAborted();
    const inputs = Array.from({ length: w.length - 1 }, (_, t) => ids[w.start + t]!);
    const f0 = performance.now();
    const out = await model.start(inputs, { allLogits: true });
    forwardMs += performance.now() - f0;
    const keys = out.knnKeys;
    if (!keys) throw new Error(`${model.manifest.id} returned no knn_key: not a GPT with kNN-LM keys`);
    let previous: Int32Array | null = null;
    for (let t = w.firstScored; t < inputs.length; t++) {
      const target = ids[w.start + t + 1]!;
      const lp = logSoftmaxAt(out.logits, target, t * V, V);
      lmNll -= lp;
      const key = keys.subarray(t * keyDim, (t + 1) * keyDim);
      // The token read at position t is the previous target: pointers that went on with it.
      const pointers = minPointers > 0 && previous ? followPointers(previous, values, inputs[t]!) : null;
      let nearest: Int32Array;
      let distances: Float32Array;
      if (pointers && pointers.length >= minPointers) {
        ({ ids: nearest, distances } = pointerNeighbours(datastore, key, pointers, kMax));
        skipped++;
      } else {
        const s0 = performance.now();
        ({ ids: nearest, distances } = datastore.search(key, kMax));
        const ms = performance.now() - s0;
        searchMs += ms;
        times.push(ms);
        candidates += datastore.lastCandidates;
      }
      previous = nearest;
      const nv = Int32Array.from(nearest, (id) => values[id]!);
      if (nv.includes(target)) hits++;
      options.settings.forEach((s, i) => {
        const mixed = mixLogProb(lp, knnLogProbOf(distances, nv, s.k, s.temperature, target), s.lambda);
        nll[i]! -= mixed;
        if (i === 0 && options.tokenLogProbs) options.tokenLogProbs[w.start + t] = mixed;
      });
      scored++;
    }
    done++;
    options.onProgress?.(done, windows.length);
  }
  times.sort((a, b) => a - b);
  const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))] ?? 0;
  return {
    windows: windows.length,
    total_windows: allWindows.length,
    scored_tokens: scored,
    lm: { nll: lmNll, token_ppl: Math.exp(lmNll / Math.max(1, scored)) },
    knnlm: options.settings.map((settings, i) => ({ settings: { ...settings }, nll: nll[i]!, token_ppl: Math.exp(nll[i]! / Math.max(1, scored)) })),
    target_in_neighbours: hits / Math.max(1, scored),
    searches_skipped: skipped,
    search: { queries: scored - skipped, k: kMax, median_ms: q(0.5), p95_ms: q(0.95), mean_candidates: candidates / Math.max(1, scored - skipped), total_seconds: searchMs / 1000 },
    forward_seconds: forwardMs / 1000,
  };
}
