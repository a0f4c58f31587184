/**
 * kNN-LM perplexity by the eval protocol of docs/manifest.md (src/core/eval/perplexity.ts's windows),
 * scoring the GPT and the kNN-LM from the same forward pass. Only scored positions are searched
 * (half of each window with the default stride), and the search runs once per position with the
 * largest k asked for, so a sweep over λ, T and k costs one search per token, not one per setting.
 * Adaptive settings (adaptive.ts: `skipAbove`, `lambdaTable`) are scored from the same pass: a
 * setting whose skip rule fires uses p_LM alone for that target, and the search itself is skipped
 * only when every setting skips it (so `searches_saved` is what an adaptive-only run saves).
 *
 * `evaluatePerplexity(new KnnLmModel(...))` gives the same kNN-LM numbers (a test checks it) but
 * searches every position of every window.
 */
import { selectWindows, streamWindows } from '../eval/perplexity';
import type { KnnDatastore } from './datastore';
import { knnLogProbOf, mixLogProb, validateKnnSettings } from './interpolate';
import type { KeyModel } from './build';
import { followPointers, pointerNeighbours } from './retomaton';
import { effectiveLambda, skipsSearch } from './adaptive';
import { MAX_KNN_K, type KnnLmSettings } from './types';
import { randomKnnNeighbours } from './controls';
import { seedOfIds } from '../generate/rng';
import { yieldToEventLoop } from '../event-loop';

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
  /**
   * The random-neighbour control (controls.ts): each target's kMax neighbours are drawn at random,
   * seeded by the window's tokens up to it, with their exact distances; no search, no pointers.
   */
  random?: boolean;
  onProgress?: (done: number, total: number) => void;
  /** Filled with the headline setting's log p(ids[j+1]) at index j for every scored target. */
  tokenLogProbs?: Float32Array;
  /** Checked before each window, after yielding to the event loop; an aborted run rejects with an AbortError. */
  signal?: AbortSignal;
  /**
   * Called for every scored target (stream index `position`, its target ids[position + 1]): log p_LM,
   * the GPT's top probability, the nearest distance (undefined when no search ran), log p_kNN of the
   * target per setting (−Infinity when skipped or absent) and log p of the target per setting.
   */
  onTarget?: (position: number, target: TargetScores) => void;
}

export interface TargetScores {
  lm: number;
  lmTop: number;
  nearest: number | undefined;
  knn: Float64Array;
  mixed: Float64Array;
}

export interface KnnEvalScore {
  settings: KnnLmSettings;
  nll: number;
  token_ppl: number;
  /** adaptive kNN-LM: targets this setting scored with p_LM alone because the GPT was confident (θ) */
  skipped: number;
}

export interface KnnEvalTotals {
  windows: number;
  /** windows of the whole protocol (more than `windows` when a windowRange was given) */
  total_windows: number;
  scored_tokens: number;
  /** the GPT alone, from the same forward */
  lm: { nll: number; token_ppl: number };
  knnlm: KnnEvalScore[];
  /** share of scored tokens whose target is among the values of their k neighbours (the headline's datastore, largest k) */
  target_in_neighbours: number;
  search: { queries: number; k: number; median_ms: number; p95_ms: number; mean_candidates: number; total_seconds: number };
  forward_seconds: number;
  /** RetoMaton: scored targets whose neighbours came from pointers, not a search */
  searches_skipped: number;
  /** adaptive kNN-LM: targets where every setting's skip rule fired, so no search ran */
  searches_saved: number;
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
  const nS = options.settings.length;
  const nll = new Float64Array(nS);
  const skippedBy = new Int32Array(nS);
  let saved = 0;
  const knnAt = new Float64Array(nS);
  const mixedAt = new Float64Array(nS);
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
  // Settings that search the same datastore prefix share one search per target (with their largest
  // k): a data-size sweep costs one GPT forward and one search per fraction. The headline's group is first.
  const groups: { limit: number; k: number; members: number[] }[] = [];
  options.settings.forEach((s, i) => {
    const limit = s.fraction === undefined || s.fraction === 1 ? datastore.size : datastore.prefixLimit(s.fraction);
    const group = groups.find((g) => g.limit === limit);
    if (group) {
      group.k = Math.max(group.k, s.k);
      group.members.push(i);
    } else groups.push({ limit, k: s.k, members: [i] });
  });
  if (groups.some((g) => g.limit < datastore.size) && (minPointers > 0 || options.random)) throw new RangeError('RetoMaton’s pointers and random neighbours search the whole datastore: give no datastore fraction with them.');
  let searches = 0;
  // One search serves every setting: the headline's index choice is the run's.
  const searchOptions = options.settings[0]!.search ? { index: options.settings[0]!.search } : {};
  for (const w of windows) {
    if (options.signal) {
      // A macrotask turn, so a worker sees the stop message that aborts it (the forward and the
      // searches of a window never return to the event loop).
      await yieldToEventLoop();
      if (options.signal.aborted) throw Object.assign(new Error('The kNN-LM evaluation was stopped.'), { name: 'AbortError' });
    }
    const inputs = Array.from({ length: w.length - 1 }, (_, t) => ids[w.start + t]!);
    const f0 = performance.now();
    const out = await model.start(inputs, { allLogits: true });
    forwardMs += performance.now() - f0;
    const keys = out.knnKeys;
    if (!keys) throw new Error(`${model.manifest.id} returned no knn_key: not a GPT with kNN-LM keys`);
    let previous: Int32Array | null = null;
    let seed = options.random ? seedOfIds(inputs, 0, w.firstScored) : 0;
    for (let t = w.firstScored; t < inputs.length; t++) {
      if (options.random) seed = seedOfIds(inputs, t, t + 1, seed);
      const target = ids[w.start + t + 1]!;
      // log p_LM of the target and the GPT's top probability from one log-sum-exp
      const row = t * V;
      let max = -Infinity;
      for (let j = 0; j < V; j++) if (out.logits[row + j]! > max) max = out.logits[row + j]!;
      let sum = 0;
      for (let j = 0; j < V; j++) sum += Math.exp(out.logits[row + j]! - max);
      const lp = out.logits[row + target]! - max - Math.log(sum);
      const lmTop = 1 / sum;
      lmNll -= lp;
      const skips = options.settings.map((s) => skipsSearch(s, lmTop));
      if (skips.every(Boolean)) saved++;
      const key = keys.subarray(t * keyDim, (t + 1) * keyDim);
      let first: number | undefined;
      groups.forEach((group, g) => {
        let nearest: Int32Array;
        let distances: Float32Array;
        // The token read at position t is the previous target: pointers that went on with it.
        const pointers = minPointers > 0 && previous && !options.random ? followPointers(previous, values, inputs[t]!) : null;
        if (group.members.every((i) => skips[i])) {
          // Every setting of the group trusts the GPT here: no neighbours at all.
          nearest = new Int32Array(0);
          distances = new Float32Array(0);
        } else if (options.random) {
          ({ ids: nearest, distances } = randomKnnNeighbours(datastore, key, group.k, seed));
          searches++;
        } else if (pointers && pointers.length >= minPointers) {
          ({ ids: nearest, distances } = pointerNeighbours(datastore, key, pointers, group.k));
          skipped++;
        } else {
          const s0 = performance.now();
          ({ ids: nearest, distances } = datastore.search(key, group.k, group.limit < datastore.size ? { ...searchOptions, limit: group.limit } : searchOptions));
          const ms = performance.now() - s0;
          searchMs += ms;
          times.push(ms);
          searches++;
          candidates += datastore.lastCandidates;
        }
        const nv = Int32Array.from(nearest, (id) => values[id]!);
        const nearestDistance = distances.length > 0 ? distances[0]! : undefined;
        if (g === 0) {
          previous = nearest.length > 0 ? nearest : null;
          if (nv.includes(target)) hits++;
          first = nearestDistance;
        }
        for (const i of group.members) {
          const s = options.settings[i]!;
          if (skips[i]) {
            skippedBy[i]!++;
            knnAt[i] = -Infinity;
            mixedAt[i] = lp;
          } else {
            knnAt[i] = knnLogProbOf(distances, nv, s.k, s.temperature, target);
            mixedAt[i] = mixLogProb(lp, knnAt[i]!, effectiveLambda(s, nearestDistance));
          }
          nll[i]! -= mixedAt[i]!;
        }
      });
      if (options.tokenLogProbs) options.tokenLogProbs[w.start + t] = mixedAt[0]!;
      options.onTarget?.(w.start + t, { lm: lp, lmTop, nearest: first, knn: knnAt, mixed: mixedAt });
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
    knnlm: options.settings.map((settings, i) => ({ settings: { ...settings }, nll: nll[i]!, token_ppl: Math.exp(nll[i]! / Math.max(1, scored)), skipped: skippedBy[i]! })),
    target_in_neighbours: hits / Math.max(1, scored),
    searches_skipped: skipped,
    searches_saved: saved,
    search: { queries: searches, k: kMax, median_ms: q(0.5), p95_ms: q(0.95), mean_candidates: candidates / Math.max(1, searches), total_seconds: searchMs / 1000 },
    forward_seconds: forwardMs / 1000,
  };
}
