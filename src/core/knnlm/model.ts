/**
 * kNN-LM (Khandelwal et al. 2020) as a LanguageModel: a GPT whose next-token distribution is mixed
 * with a distribution read off the nearest datastore entries of its own `knn_key`. It implements
 * the same interface as GptModel and RetroModel, so the generation loop drives it unchanged, and
 * has GptModel's `forwardBatch`, so the perplexity eval does too.
 *
 * `logits` in its StepOutputs are log-probabilities of the mixture (softmax leaves them as they
 * are); with λ = 1, tokens no neighbour predicts get -Infinity.
 */
import type { ModelManifest } from '../../protocol/manifest';
import type { ModelInfo } from '../../protocol/model';
import { InferenceError } from '../runtime/errors';
import { Serial } from '../models/decoder';
import type { LanguageModel, StartOptions, StepOutput } from '../models/types';
import type { KnnDatastore } from './datastore';
import { knnLogProbs, logSoftmax, mixLogProbs, validateKnnSettings, type SparseLogProbs } from './interpolate';
import { followPointers, pointerNeighbours } from './retomaton';
import { effectiveLambda, skipsSearch, topProbability } from './adaptive';
import { randomKnnNeighbours, searchExcluding } from './controls';
import { seedOfIds } from '../generate/rng';
import { DEFAULT_KNN_SETTINGS, MAX_KNN_K, type ExplainOptions, type KnnLmSettings, type KnnTokenExplanation, type TokenProbability } from './types';

export interface KnnLmModelOptions {
  settings?: Partial<KnnLmSettings>;
  /** Dispose the wrapped GPT with this model (default true). */
  ownsModel?: boolean;
  /** Positions whose retrieval is kept for `explain` (default: the model's context). */
  explainMemory?: number;
  /** Skip the check that the datastore was built with these exact weights (tests of mismatches only). */
  skipModelCheck?: boolean;
}

/** What the model remembers of one position for `explain`. */
interface PositionRecord {
  /** log p_LM of the next token [V] */
  lm: Float32Array;
  ids: Int32Array;
  distances: Float32Array;
  /** the λ this row was mixed with (0 when the adaptive rule skipped its search) */
  lambda: number;
  /** the GPT's top next-token probability */
  lmTop: number;
  searched: boolean;
  skipped: boolean;
}

/** The `n` largest entries of a dense distribution given as log-probabilities. */
function topDense(logProbs: Float32Array, n: number): TokenProbability[] {
  const best: number[] = [];
  for (let i = 0; i < logProbs.length; i++) {
    const v = logProbs[i]!;
    if (best.length === n && v <= logProbs[best[n - 1]!]!) continue;
    let at = best.length;
    while (at > 0 && v > logProbs[best[at - 1]!]!) at--;
    best.splice(at, 0, i);
    if (best.length > n) best.pop();
  }
  return best.map((tokenId) => ({ tokenId, probability: Math.exp(logProbs[tokenId]!) }));
}

function topSparse(dist: SparseLogProbs, n: number): TokenProbability[] {
  return Array.from(dist.tokens, (tokenId, i) => ({ tokenId, probability: Math.exp(dist.logProbs[i]!) }))
    .sort((a, b) => b.probability - a.probability || a.tokenId - b.tokenId)
    .slice(0, n);
}

export class KnnLmModel implements LanguageModel {
  readonly info: ModelInfo;
  readonly manifest: ModelManifest;
  private current: KnnLmSettings;
  private readonly serial = new Serial();
  private readonly records = new Map<number, PositionRecord>();
  private readonly memory: number;
  private readonly ownsModel: boolean;
  private readonly V: number;
  private readonly keyDim: number;
  /** RetoMaton: the last generated row's neighbours, whose pointers the next token may follow */
  private lastNeighbours: Int32Array | null = null;
  /**
   * Since the last start: searches run, skipped by following RetoMaton's pointers, and saved by the
   * adaptive rule (the GPT was confident, adaptive.ts).
   */
  searches = { run: 0, skipped: 0, saved: 0 };
  /** Whether the last row's neighbours came from a search (false: RetoMaton's pointers, or none when skipped). */
  lastSearched = true;
  /** Whether the adaptive rule skipped the last row's search (p_LM alone). */
  lastSkipped = false;
  /** The λ the last row was mixed with. */
  lastLambda: number = DEFAULT_KNN_SETTINGS.lambda;
  /** Documents whose entries are never neighbours (the leakage control, controls.ts). */
  private excluded: ReadonlySet<number> = new Set();

  constructor(
    /** the GPT: any LanguageModel whose StepOutputs carry `knnKeys` */
    readonly lm: LanguageModel,
    readonly datastore: KnnDatastore,
    options: KnnLmModelOptions = {},
  ) {
    this.manifest = lm.manifest;
    if (!options.skipModelCheck) datastore.checkModel(lm.manifest);
    this.V = lm.info.vocabSize;
    this.keyDim = lm.manifest.hyperparameters.d_model;
    this.current = { ...DEFAULT_KNN_SETTINGS, ...options.settings };
    validateKnnSettings(this.current, MAX_KNN_K);
    this.memory = options.explainMemory ?? lm.info.context;
    this.ownsModel = options.ownsModel ?? true;
    // TODO(protocol owner): Architecture has no 'knnlm'; the id and name say what this is.
    this.info = { ...lm.info, id: `${lm.info.id}+knnlm`, name: `${lm.info.name} + kNN-LM (${datastore.name})` };
  }

  get settings(): Readonly<KnnLmSettings> {
    return this.current;
  }

  /** Changes λ, k or T for the next calls (explain can also re-mix past positions with other values). */
  setSettings(settings: Partial<KnnLmSettings>): void {
    const next = { ...this.current, ...settings };
    validateKnnSettings(next, MAX_KNN_K);
    this.current = next;
  }

  /** Documents whose entries must not be neighbours from the next call on (empty: none); entries of a datastore without document boundaries cannot be excluded. */
  setExcludedDocuments(docIds: readonly number[]): void {
    this.excluded = new Set(docIds);
  }

  get sequence(): readonly number[] {
    return this.lm.sequence;
  }

  get prefixLength(): number {
    return this.lm.prefixLength;
  }

  start(promptIds: readonly number[], options: StartOptions = {}): Promise<StepOutput> {
    return this.serial.run(async () => {
      this.records.clear();
      this.lastNeighbours = null;
      this.searches = { run: 0, skipped: 0, saved: 0 };
      const out = await this.lm.start(promptIds, options);
      return this.mix(out, this.lm.sequence.length - out.rows, true);
    });
  }

  next(tokenId: number): Promise<StepOutput> {
    return this.serial.run(async () => {
      const out = await this.lm.next(tokenId);
      const min = this.current.pointers ?? 0;
      // Random neighbours have no pointers worth following: each token draws afresh.
      const follow = min > 0 && this.lastNeighbours && !out.restarted && !this.current.randomNeighbours;
      let pointers = follow ? followPointers(this.lastNeighbours!, this.datastore.section.values, tokenId) : null;
      if (pointers && this.excluded.size > 0) pointers = pointers.filter((e) => !this.excluded.has(this.datastore.entryDocument(e)));
      return this.mix(out, this.lm.sequence.length - out.rows, true, pointers && pointers.length >= min ? pointers : null);
    });
  }

  /**
   * The eval's batch forward (GptModel.forwardBatch's contract): log p_kNN-LM for every position
   * of B equal-length sequences, [B, T, V]. Each sequence is a prefill of the GPT.
   */
  forwardBatch(sequences: readonly (readonly number[])[]): Promise<Float32Array> {
    return this.serial.run(async () => {
      const T = sequences[0]?.length ?? 0;
      if (sequences.length === 0 || T === 0 || sequences.some((s) => s.length !== T)) throw new RangeError('forwardBatch needs equal-length non-empty sequences');
      const all = new Float32Array(sequences.length * T * this.V);
      for (let b = 0; b < sequences.length; b++) {
        const out = await this.lm.start(sequences[b]!, { allLogits: true });
        if (out.rows !== T) throw new RangeError(`forwardBatch: sequences longer than the context (${this.lm.info.context}) are not supported`);
        all.set((await this.mix(out, 0, false)).logits, b * T * this.V);
      }
      this.records.clear();
      return all;
    });
  }

  /** Replaces each row's logits by the mixture's log-probabilities; rows are positions first..first+rows-1. */
  private async mix(out: StepOutput, first: number, remember: boolean, pointers: Int32Array | null = null): Promise<StepOutput> {
    const { V, keyDim } = this;
    const keys = out.knnKeys;
    if (!keys || keys.length !== out.rows * keyDim) throw new InferenceError(`${this.lm.info.id} returned no kNN-LM keys (knn_key)`);
    const { k, temperature } = this.current;
    const logits = new Float32Array(out.rows * V);
    const values = this.datastore.section.values;
    const sequence = this.lm.sequence;
    // Random draws are seeded by the text up to each position (the same text draws the same entries).
    let seed = this.current.randomNeighbours ? seedOfIds(sequence, 0, first) : 0;
    for (let r = 0; r < out.rows; r++) {
      if (this.current.randomNeighbours) seed = seedOfIds(sequence, first + r, first + r + 1, seed);
      const lm = logSoftmax(out.logits, r * V, V);
      const key = keys.subarray(r * keyDim, (r + 1) * keyDim);
      // Adaptive kNN-LM: a confident GPT is trusted alone, with no search.
      const lmTop = topProbability(lm);
      const skipped = skipsSearch(this.current, lmTop);
      // Only a single generated row follows pointers; prefills and the eval's batches search.
      const followed = !skipped && pointers && out.rows === 1;
      const { ids, distances } = skipped ? { ids: new Int32Array(0), distances: new Float32Array(0) } : followed
          ? pointerNeighbours(this.datastore, key, pointers, k)
          : this.current.randomNeighbours
            ? randomKnnNeighbours(this.datastore, key, k, seed, this.excluded)
            : searchExcluding(this.datastore, key, k, this.excluded, {
                ...(this.current.search ? { index: this.current.search } : {}),
                ...(this.current.fraction !== undefined && this.current.fraction < 1 ? { limit: this.datastore.prefixLimit(this.current.fraction) } : {}),
              });
      const lambda = effectiveLambda(this.current, distances.length > 0 ? distances[0] : undefined);
      if (remember) {
        if (skipped) this.searches.saved++;
        else if (followed) this.searches.skipped++;
        else this.searches.run++;
        this.lastSearched = !followed && !skipped;
        this.lastSkipped = skipped;
        this.lastLambda = lambda;
        this.lastNeighbours = skipped ? null : ids;
      }
      const neighbourValues = Int32Array.from(ids, (id) => values[id]!);
      mixLogProbs(lm, knnLogProbs(distances, neighbourValues, k, temperature), lambda, logits.subarray(r * V, (r + 1) * V));
      if (remember) this.remember(first + r, { lm, ids, distances, lambda, lmTop, searched: !followed && !skipped, skipped });
    }
    return { ...out, logits };
  }

  private remember(position: number, record: PositionRecord): void {
    this.records.set(position, record);
    if (this.records.size > this.memory) {
      let oldest = Infinity;
      for (const p of this.records.keys()) oldest = Math.min(oldest, p);
      this.records.delete(oldest);
    }
  }

  /** Positions `explain` can answer for (the rows computed by the latest calls, up to explainMemory). */
  get explainablePositions(): number[] {
    return [...this.records.keys()].sort((a, b) => a - b);
  }

  /**
   * Why the model predicted what it did after `position` (default: the last token read): the top
   * tokens under p_LM, p_kNN and the mixture, the actual next token's probabilities when the
   * sequence has it, and the nearest entries with their datastore text. λ, T and k (up to the k
   * retrieved) can be overridden to re-mix without running the model.
   */
  explain(position = this.lm.sequence.length - 1, options: ExplainOptions = {}): KnnTokenExplanation {
    const record = this.records.get(position);
    if (!record) {
      throw new RangeError(
        `no kNN-LM retrieval kept for position ${position}: only rows the model computed (start with allLogits for every prompt position) and the last ${this.memory} positions are kept`,
      );
    }
    const settings = { ...this.current, ...options.settings };
    validateKnnSettings(settings, MAX_KNN_K);
    const k = Math.min(settings.k, record.ids.length);
    const values = Int32Array.from(record.ids.subarray(0, k), (id) => this.datastore.value(id));
    const knn = knnLogProbs(record.distances, values, k, settings.temperature);
    // The run's own λ (by distance when adaptive) unless λ is overridden; p_LM alone when skipped.
    const lambda = record.skipped ? 0 : (options.settings?.lambda ?? record.lambda);
    const mix = mixLogProbs(record.lm, knn, lambda);
    const topTokens = options.topTokens ?? 10;
    const result: KnnTokenExplanation = {
      position,
      settings: { ...settings, k, lambda },
      lm: topDense(record.lm, topTokens),
      knn: topSparse(knn, topTokens),
      mix: topDense(mix, topTokens),
      neighbours: [],
      retrieval: {
        searched: record.searched,
        skipped: record.skipped,
        lambda: record.lambda,
        lmTop: record.lmTop,
        ...(record.distances.length > 0 ? { nearest: record.distances[0]! } : {}),
      },
    };
    const nextId = this.lm.sequence[position + 1];
    if (nextId !== undefined) {
      const at = Array.prototype.indexOf.call(knn.tokens, nextId) as number;
      result.next = {
        tokenId: nextId,
        lm: Math.exp(record.lm[nextId]!),
        knn: at >= 0 ? Math.exp(knn.logProbs[at]!) : 0,
        mix: Math.exp(mix[nextId]!),
      };
    }
    // Each neighbour's share of p_kNN: softmax of −d/T over the k retrieved.
    const top = -record.distances[0]! / settings.temperature;
    let sum = 0;
    for (let i = 0; i < k; i++) sum += Math.exp(-record.distances[i]! / settings.temperature - top);
    const shown = Math.min(k, options.topNeighbours ?? 16);
    for (let i = 0; i < shown; i++) {
      const entry = record.ids[i]!;
      const d = record.distances[i]!;
      result.neighbours.push({
        entry,
        distance: d,
        tokenId: values[i]!,
        weight: Math.exp(-d / settings.temperature - top) / sum,
        ...this.datastore.entryText(entry, options.textBefore ?? 240, options.textAfter ?? 60),
      });
    }
    return result;
  }

  async dispose(): Promise<void> {
    await this.serial.run(async () => this.records.clear());
    if (this.ownsModel) await this.lm.dispose();
  }
}
