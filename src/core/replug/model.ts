/**
 * REPLUG as a LanguageModel, for generation (the method in types.ts): k forks of the GPT, one per
 * passage, each re-prefilled at the first position of every block and stepped with its own KV
 * cache for the rest of it; their next-token distributions mixed with the passages' weights.
 */
import type { ModelManifest } from '../../protocol/manifest';
import type { ModelInfo } from '../../protocol/model';
import { blockInput, blockQuery } from '../icralm/plan';
import type { RetrievedPassage } from '../icralm/types';
import { Serial } from '../models/decoder';
import type { GptModel } from '../models/gpt';
import type { LanguageModel, StartOptions, StepOutput } from '../models/types';
import { InferenceError } from '../runtime/errors';
import { logSoftmax } from '../knnlm/interpolate';
import { DEFAULT_REPLUG_SETTINGS, mixLogProbRows, passageWeights, validateReplugSettings, type PassagesRetriever, type ReplugRetrieval, type ReplugSettings, type ReplugTokenShare } from './types';

export class ReplugModel implements LanguageModel {
  readonly info: ModelInfo;
  readonly manifest: ModelManifest;
  private readonly serial = new Serial();
  private readonly context: number;
  private current: ReplugSettings;
  private running: ReplugSettings;
  private separator: readonly number[];
  /** one GPT sequence per passage slot, forked from the shared GPT as needed */
  private readonly forks: GptModel[] = [];
  private tokens: number[] = [];
  private log: ReplugRetrieval[] = [];
  private predictedInBlock = 0;
  /** the block's active forks (one per retrieved passage; the plain GPT when nothing was retrieved) */
  private active: GptModel[] = [];
  private weights: number[] = [];
  /** each active fork's log-softmax row of the last step, for `shares` */
  private lastRows: Float32Array[] = [];

  constructor(
    /** the loaded GPT: its weights are shared, its own sequence is left alone */
    readonly lm: GptModel,
    private retriever: PassagesRetriever,
    options: { settings?: Partial<ReplugSettings>; separator?: readonly number[] } = {},
  ) {
    this.manifest = lm.manifest;
    this.context = lm.info.context;
    this.current = { ...DEFAULT_REPLUG_SETTINGS, ...options.settings };
    validateReplugSettings(this.current, this.context);
    this.running = this.current;
    this.separator = [...(options.separator ?? [])];
    this.info = { ...lm.info, id: `${lm.info.id}+replug`, name: `${lm.info.name} + REPLUG` };
  }

  get settings(): Readonly<ReplugSettings> {
    return this.current;
  }

  setSettings(settings: Partial<ReplugSettings>, separator?: readonly number[]): void {
    const next = { ...this.current, ...settings };
    validateReplugSettings(next, this.context);
    this.current = next;
    if (separator) this.separator = [...separator];
  }

  setRetriever(retriever: PassagesRetriever): void {
    this.retriever = retriever;
  }

  get sequence(): readonly number[] {
    return this.tokens;
  }

  get prefixLength(): number {
    return 0;
  }

  get retrievals(): readonly ReplugRetrieval[] {
    return this.log;
  }

  /** For the token just sampled from the last step: each passage's weight and the probability its run gave the token. */
  shares(tokenId: number): ReplugTokenShare[] {
    return this.lastRows.map((row, j) => ({ weight: this.weights[j]!, probability: Math.exp(row[tokenId]!) }));
  }

  start(promptIds: readonly number[], options: StartOptions = {}): Promise<StepOutput> {
    return this.serial.run(async () => {
      if (options.allLogits) throw new RangeError('REPLUG predicts one block at a time: it gives no logits for the prompt');
      if (promptIds.length === 0) throw new RangeError('start() needs at least one token');
      this.running = this.current;
      this.tokens = [...promptIds];
      this.log = [];
      return this.beginBlock();
    });
  }

  next(tokenId: number): Promise<StepOutput> {
    return this.serial.run(async () => {
      if (this.predictedInBlock === 0) throw new InferenceError('next() before start()');
      this.tokens.push(tokenId);
      if (this.predictedInBlock >= this.running.stride) return this.beginBlock();
      const rows: Float32Array[] = [];
      for (const fork of this.active) {
        const out = await fork.next(tokenId);
        if (out.restarted) throw new InferenceError('REPLUG block overflowed the GPT context');
        rows.push(out.logits.subarray((out.rows - 1) * this.info.vocabSize));
      }
      this.predictedInBlock++;
      return this.mixed(rows);
    });
  }

  private async beginBlock(): Promise<StepOutput> {
    const position = this.tokens.length;
    const { start, query } = blockQuery(this.tokens, position, this.running.queryLength);
    const t0 = performance.now();
    const passages = (await this.retriever(query, this.running.k)).slice(0, this.running.k);
    const latencyMs = performance.now() - t0;
    const inputs: (RetrievedPassage | null)[] = passages.length > 0 ? passages : [null];
    this.weights = passages.length > 0 ? passageWeights(passages, this.running.temperature) : [1];
    while (this.forks.length < inputs.length) this.forks.push(this.lm.fork());
    this.active = this.forks.slice(0, inputs.length);
    const rows: Float32Array[] = [];
    for (const [j, passage] of inputs.entries()) {
      const { input } = blockInput(this.tokens, position, passage, this.separator, this.running.stride, this.context);
      const out = await this.active[j]!.start(input);
      rows.push(out.logits.subarray((out.rows - 1) * this.info.vocabSize));
    }
    this.predictedInBlock = 1;
    this.log.push({ position, queryStart: start, passages, weights: passages.length > 0 ? this.weights : [], latencyMs });
    return this.mixed(rows);
  }

  private mixed(rows: Float32Array[]): StepOutput {
    // Each run's log-softmax once: the mixture and `shares` both read it.
    this.lastRows = rows.map((row) => logSoftmax(row, 0, row.length));
    const logits = mixLogProbRows(this.lastRows, this.weights);
    return { logits, rows: 1, retrievals: [], restarted: false };
  }

  async dispose(): Promise<void> {
    await this.serial.run(async () => {
      this.tokens = [];
      this.log = [];
      this.predictedInBlock = 0;
      this.active = [];
      this.lastRows = [];
      for (const fork of this.forks.splice(0)) await fork.dispose();
    });
  }
}
