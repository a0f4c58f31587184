/**
 * In-Context RALM as a LanguageModel, for generation: the GPT re-prefilled with [passage] +
 * [separator] + the recent text at the first position of every block of `stride` predictions, and
 * fed one token at a time with that prefill's KV cache for the rest of the block (protocol in
 * types.ts, inputs from plan.ts). Every retrieval is kept in `retrievals` for display.
 */
import type { ModelManifest } from '../../protocol/manifest';
import type { ModelInfo } from '../../protocol/model';
import { InferenceError } from '../runtime/errors';
import { Serial } from '../models/decoder';
import type { LanguageModel, StartOptions, StepOutput } from '../models/types';
import { blockInput, blockQuery } from './plan';
import { DEFAULT_ICRALM_SETTINGS, validateIcRalmSettings, type IcRalmRetrieval, type IcRalmSettings, type PassageRetriever } from './types';

export interface IcRalmModelOptions {
  settings?: Partial<IcRalmSettings>;
  /** Token ids between the passage and the text (types.ts: the WikiText line break by default in the app). */
  separator?: readonly number[];
  /** Dispose the wrapped GPT with this model (default true). */
  ownsModel?: boolean;
}

export class IcRalmModel implements LanguageModel {
  readonly info: ModelInfo;
  readonly manifest: ModelManifest;
  private readonly serial = new Serial();
  private readonly ownsModel: boolean;
  private readonly context: number;
  private current: IcRalmSettings;
  private separator: readonly number[];
  /** The settings the running sequence started with. */
  private running: IcRalmSettings;
  private tokens: number[] = [];
  private log: IcRalmRetrieval[] = [];
  private predictedInBlock = 0;

  constructor(
    /** the GPT (any LanguageModel with plain prefill + KV-cache steps) */
    readonly lm: LanguageModel,
    private retriever: PassageRetriever,
    options: IcRalmModelOptions = {},
  ) {
    this.manifest = lm.manifest;
    this.context = lm.info.context;
    this.current = { ...DEFAULT_ICRALM_SETTINGS, ...options.settings };
    validateIcRalmSettings(this.current, this.context);
    this.running = this.current;
    this.separator = [...(options.separator ?? [])];
    this.ownsModel = options.ownsModel ?? true;
    this.info = { ...lm.info, id: `${lm.info.id}+icralm`, name: `${lm.info.name} + In-Context RALM` };
  }

  get settings(): Readonly<IcRalmSettings> {
    return this.current;
  }

  /** s, l (and the separator) for the next `start`; a running sequence keeps its own. */
  setSettings(settings: Partial<IcRalmSettings>, separator?: readonly number[]): void {
    const next = { ...this.current, ...settings };
    validateIcRalmSettings(next, this.context);
    this.current = next;
    if (separator) this.separator = [...separator];
  }

  setRetriever(retriever: PassageRetriever): void {
    this.retriever = retriever;
  }

  get sequence(): readonly number[] {
    return this.tokens;
  }

  /** The passage sits in the GPT's input, not in the user's sequence: nothing to skip. */
  get prefixLength(): number {
    return 0;
  }

  /** Every retrieval of the current sequence, in order. */
  get retrievals(): readonly IcRalmRetrieval[] {
    return this.log;
  }

  /**
   * Prefill. Only the prompt's last position is predicted: earlier prompt positions would be
   * scored with a passage retrieved from tokens after them, so `allLogits` is refused (score a
   * text with evaluateIcRalm instead).
   */
  start(promptIds: readonly number[], options: StartOptions = {}): Promise<StepOutput> {
    return this.serial.run(async () => {
      if (options.allLogits) throw new RangeError('In-Context RALM scores one block at a time: use evaluateIcRalm for every position of a text');
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
      const out = await this.lm.next(tokenId);
      if (out.restarted) throw new InferenceError('In-Context RALM block overflowed the GPT context');
      this.predictedInBlock++;
      return { logits: out.logits.subarray((out.rows - 1) * this.info.vocabSize), rows: 1, retrievals: [], restarted: false };
    });
  }

  private async beginBlock(): Promise<StepOutput> {
    const position = this.tokens.length;
    const { start, query } = blockQuery(this.tokens, position, this.running.queryLength);
    const t0 = performance.now();
    const [passage = null] = await this.retriever([query]);
    const latencyMs = performance.now() - t0;
    const { input, history } = blockInput(this.tokens, position, passage, this.separator, this.running.stride, this.context);
    const out = await this.lm.start(input);
    this.predictedInBlock = 1;
    this.log.push({ position, queryStart: start, passage, history, latencyMs });
    return { logits: out.logits.subarray((out.rows - 1) * this.info.vocabSize), rows: 1, retrievals: [], restarted: false };
  }

  async dispose(): Promise<void> {
    await this.serial.run(async () => {
      this.tokens = [];
      this.log = [];
      this.predictedInBlock = 0;
    });
    if (this.ownsModel) await this.lm.dispose();
  }
}
