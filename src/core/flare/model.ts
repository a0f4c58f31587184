/**
 * FLARE as a LanguageModel, for generation (the method in types.ts): at the first position of every
 * block the GPT looks ahead `lookahead` tokens greedily without a passage; if it was confident the
 * block is written from that look-ahead's own rows, otherwise the top passage for the masked query
 * is placed before the context and the block is written again from there. Every decision is kept
 * in `decisions` for display.
 */
import type { ModelManifest } from '../../protocol/manifest';
import type { ModelInfo } from '../../protocol/model';
import { InferenceError } from '../runtime/errors';
import { Serial } from '../models/decoder';
import type { LanguageModel, StartOptions, StepOutput } from '../models/types';
import { blockInput } from '../icralm/plan';
import type { PassageRetriever } from '../icralm/types';
import { greedyChoice, maskedQuery, triggerTokens } from './plan';
import { DEFAULT_FLARE_SETTINGS, validateFlareSettings, type FlareDecision, type FlareLookaheadToken, type FlareSettings } from './types';

export interface FlareModelOptions {
  settings?: Partial<FlareSettings>;
  /** Token ids between the passage and the text (In-Context RALM's: the WikiText line break in the app). */
  separator?: readonly number[];
  /** Dispose the wrapped GPT with this model (default true). */
  ownsModel?: boolean;
}

export class FlareModel implements LanguageModel {
  readonly info: ModelInfo;
  readonly manifest: ModelManifest;
  private readonly serial = new Serial();
  private readonly ownsModel: boolean;
  private readonly context: number;
  private readonly vocab: number;
  private current: FlareSettings;
  private separator: readonly number[];
  private running: FlareSettings;
  private tokens: number[] = [];
  private log: FlareDecision[] = [];
  /** Predictions made in the current block (0: no block yet). */
  private predictedInBlock = 0;
  /** The confident block's look-ahead and its rows, while the written text still follows it. */
  private cached: { tokens: FlareLookaheadToken[]; rows: Float32Array[] } | null = null;
  /** Where the current block began and how much of the text its GPT input held. */
  private block = { position: 0, history: 0 };
  /** GPT calls since `start`: prefills and one-token steps (the cost the column reports). */
  readonly calls = { prefills: 0, steps: 0 };

  constructor(
    /** the GPT (any LanguageModel with plain prefill + KV-cache steps) */
    readonly lm: LanguageModel,
    private retriever: PassageRetriever,
    options: FlareModelOptions = {},
  ) {
    this.manifest = lm.manifest;
    this.context = lm.info.context;
    this.vocab = lm.info.vocabSize;
    this.current = { ...DEFAULT_FLARE_SETTINGS, ...options.settings };
    validateFlareSettings(this.current, this.context);
    this.running = this.current;
    this.separator = [...(options.separator ?? [])];
    this.ownsModel = options.ownsModel ?? true;
    this.info = { ...lm.info, id: `${lm.info.id}+flare`, name: `${lm.info.name} + FLARE` };
  }

  get settings(): Readonly<FlareSettings> {
    return this.current;
  }

  /** Look-ahead, θ, β, l (and the separator) for the next `start`; a running sequence keeps its own. */
  setSettings(settings: Partial<FlareSettings>, separator?: readonly number[]): void {
    const next = { ...this.current, ...settings };
    validateFlareSettings(next, this.context);
    this.current = next;
    if (separator) this.separator = [...separator];
  }

  setRetriever(retriever: PassageRetriever): void {
    this.retriever = retriever;
  }

  get sequence(): readonly number[] {
    return this.tokens;
  }

  get prefixLength(): number {
    return 0;
  }

  /** Every decision of the current sequence, in order. */
  get decisions(): readonly FlareDecision[] {
    return this.log;
  }

  /** Only the prompt's last position is predicted (a look-ahead starts there); score a text with evaluateFlare. */
  start(promptIds: readonly number[], options: StartOptions = {}): Promise<StepOutput> {
    return this.serial.run(async () => {
      if (options.allLogits) throw new RangeError('FLARE decides block by block: use evaluateFlare for every position of a text');
      if (promptIds.length === 0) throw new RangeError('start() needs at least one token');
      this.running = this.current;
      this.tokens = [...promptIds];
      this.log = [];
      this.calls.prefills = 0;
      this.calls.steps = 0;
      return this.beginBlock();
    });
  }

  next(tokenId: number): Promise<StepOutput> {
    return this.serial.run(async () => {
      if (this.predictedInBlock === 0) throw new InferenceError('next() before start()');
      this.tokens.push(tokenId);
      if (this.predictedInBlock >= this.running.lookahead) return this.beginBlock();
      const i = this.predictedInBlock;
      this.predictedInBlock++;
      if (this.cached) {
        // The text still follows the look-ahead: its next row is already computed.
        if (this.cached.tokens[i - 1]!.id === tokenId) return this.row(this.cached.rows[i]!);
        // Sampling left the look-ahead: read the block's text so far afresh (no passage), then go on step by step.
        this.cached = null;
        const { position, history } = this.block;
        this.calls.prefills++;
        const out = await this.lm.start(this.tokens.slice(position - history));
        return this.row(out.logits.subarray((out.rows - 1) * this.vocab));
      }
      this.calls.steps++;
      const out = await this.lm.next(tokenId);
      if (out.restarted) throw new InferenceError('FLARE block overflowed the GPT context');
      return this.row(out.logits.subarray((out.rows - 1) * this.vocab));
    });
  }

  private row(logits: Float32Array): StepOutput {
    return { logits, rows: 1, retrievals: [], restarted: false };
  }

  private async beginBlock(): Promise<StepOutput> {
    const position = this.tokens.length;
    const { lookahead: L, threshold } = this.running;
    const plain = blockInput(this.tokens, position, null, [], L, this.context);
    // Look ahead: L greedy tokens from the recent text, no passage.
    const rows: Float32Array[] = [];
    const ahead: FlareLookaheadToken[] = [];
    this.calls.prefills++;
    let out = await this.lm.start(plain.input);
    for (let i = 0; i < L; i++) {
      const row = out.logits.slice((out.rows - 1) * this.vocab, out.rows * this.vocab);
      rows.push(row);
      ahead.push(greedyChoice(row, 0, this.vocab));
      if (i < L - 1) {
        this.calls.steps++;
        out = await this.lm.next(ahead[i]!.id);
      }
    }
    const triggers = triggerTokens(ahead, threshold);
    this.predictedInBlock = 1;
    if (triggers.length === 0) {
      this.cached = { tokens: ahead, rows };
      this.block = { position, history: plain.history };
      this.log.push({ position, lookahead: ahead, triggers, query: [], passage: null, retrieved: false, latencyMs: 0 });
      return this.row(rows[0]!);
    }
    this.cached = null;
    const query = maskedQuery(this.tokens, position, ahead, this.running);
    const t0 = performance.now();
    const [passage = null] = await this.retriever([query]);
    const latencyMs = performance.now() - t0;
    const { input, history } = blockInput(this.tokens, position, passage, this.separator, L, this.context);
    this.block = { position, history };
    this.calls.prefills++;
    out = await this.lm.start(input);
    this.log.push({ position, lookahead: ahead, triggers, query, passage, retrieved: true, latencyMs });
    return this.row(out.logits.slice((out.rows - 1) * this.vocab, out.rows * this.vocab));
  }

  async dispose(): Promise<void> {
    await this.serial.run(async () => {
      this.tokens = [];
      this.log = [];
      this.cached = null;
      this.predictedInBlock = 0;
    });
    if (this.ownsModel) await this.lm.dispose();
  }
}
