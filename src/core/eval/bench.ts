/**
 * Decode-speed measurement shared by `npm run bench` (Node, WASM) and, later, the browser (call
 * it in the inference worker with the loaded models and post the same JSON lines).
 */
import type { GenerationSettings } from '../../protocol/model';
import type { LanguageModel } from '../models/types';
import { generate, generateStream } from '../generate/loop';
import { GREEDY } from '../generate/sampler';
import { median, quantileSorted } from './quantile';

export { median, quantileSorted };

export interface DecodeBenchResult {
  bench: 'decode';
  model: string;
  architecture: string;
  backend: string;
  backend_reason: string;
  threads?: number;
  /** what the RETRO run retrieved from ('none' for GPT) */
  neighbours: string;
  prompt_tokens: number;
  new_tokens: number;
  prefill_ms: number;
  decode_ms: number;
  tokens_per_second: number;
  ms_per_token: number;
  retrievals: number;
  runs: number;
}

export interface DecodeBenchOptions {
  newTokens?: number;
  /** measured runs after one warm-up; the fastest is reported (least disturbed by other load) */
  runs?: number;
  neighbours?: string;
}

/** Greedy decode of `newTokens` tokens after `promptIds`, no stop token. */
export async function decodeBench(model: LanguageModel, promptIds: readonly number[], options: DecodeBenchOptions = {}): Promise<DecodeBenchResult> {
  const newTokens = options.newTokens ?? 128;
  const settings = { ...GREEDY, maxNewTokens: newTokens, stopTokenId: null };
  await generate(model, promptIds, { ...settings, maxNewTokens: 8 });
  let best: Awaited<ReturnType<typeof generate>> | null = null;
  for (let r = 0; r < Math.max(1, options.runs ?? 2); r++) {
    const run = await generate(model, promptIds, settings);
    if (!best || run.decodeMs < best.decodeMs) best = run;
  }
  const b = best!;
  const info = model.info;
  return {
    bench: 'decode',
    model: info.id,
    architecture: info.architecture,
    backend: info.backend.backend,
    backend_reason: info.backend.reason,
    ...(info.backend.threads !== undefined ? { threads: info.backend.threads } : {}),
    neighbours: options.neighbours ?? 'none',
    prompt_tokens: promptIds.length,
    new_tokens: b.tokenIds.length,
    prefill_ms: round(b.prefillMs),
    decode_ms: round(b.decodeMs),
    tokens_per_second: round(b.tokensPerSecond),
    ms_per_token: round(b.decodeMs / Math.max(1, b.tokenIds.length - 1)),
    retrievals: b.retrievals.length,
    runs: Math.max(1, options.runs ?? 2),
  };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

// ---------------------------------------------------------------------------------------------
// Interleaved token-by-token decode benchmark (`npm run bench`): the compared models decode in
// one process, one token each per round, so load from other processes falls on all of them alike
// and the per-round ratios to the baseline hold where absolute times do not.

/**
 * Distribution-free ~95% confidence interval for the median of `xs`: the order statistics of
 * ranks n/2 - 0.98 sqrt(n) and 1 + n/2 + 0.98 sqrt(n) (1-based, rounded; the normal approximation
 * to the binomial, e.g. the 40th and 61st of 100). Small samples get [min, max].
 */
export function medianInterval(xs: readonly number[]): [number, number] {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return [Number.NaN, Number.NaN];
  const half = (1.96 * Math.sqrt(n)) / 2;
  const lo = Math.max(1, Math.round(n / 2 - half));
  const hi = Math.min(n, Math.round(n / 2 + 1 + half));
  return [s[lo - 1]!, s[hi - 1]!];
}

/** One configuration's figures from an interleaved run (all times in ms). */
export interface InterleavedStats {
  /** blocks of `block` rounds the statistics are over */
  blocks: number;
  /** per-token time of a block (its steps' sum / block): median, 10th and 90th percentile */
  ms_per_token: number;
  p10_ms_per_token: number;
  p90_ms_per_token: number;
  /** 1000 / the median ms per token */
  tokens_per_second: number;
  /** single steps, for reference (a RETRO step that retrieves is far above this median) */
  step_median_ms: number;
  /** median over blocks of (this block's time / the baseline's time in the same rounds) */
  vs_baseline: number;
  /** ~95% interval of that median (medianInterval) */
  vs_baseline_ci95: [number, number];
  /**
   * this configuration's total time / the baseline's, over the same whole blocks: preemption by
   * other processes stretches short and long steps in proportion on average, which the median of a
   * short step skips more often than a long one's, so under heavy load the two estimates part
   */
  vs_baseline_total: number;
}

/**
 * Statistics of an interleaved run. `steps` holds each configuration's step times, index = round,
 * all the same length; `baseline` names the one the ratios divide by. Consecutive rounds are summed
 * in blocks of `block` (RETRO retrieves once per chunk, so a block of one chunk holds one
 * retrieval whatever the phase, where a per-token median would skip it); block = 1 is per token.
 * Rounds past the last whole block are dropped.
 */
export function interleavedStats(steps: Readonly<Record<string, readonly number[]>>, baseline: string, block = 1): Record<string, InterleavedStats> {
  const base = steps[baseline];
  if (!base) throw new RangeError(`no baseline '${baseline}' among ${Object.keys(steps).join(', ')}`);
  if (!Number.isInteger(block) || block < 1) throw new RangeError('block must be a positive integer');
  const rounds = base.length;
  for (const [name, s] of Object.entries(steps)) if (s.length !== rounds) throw new RangeError(`${name}: ${s.length} steps, the baseline has ${rounds}`);
  const blocks = Math.floor(rounds / block);
  const sums = (s: readonly number[]) => Array.from({ length: blocks }, (_, b) => s.slice(b * block, (b + 1) * block).reduce((a, x) => a + x, 0));
  const baseSums = sums(base);
  const out: Record<string, InterleavedStats> = {};
  for (const [name, s] of Object.entries(steps)) {
    const own = sums(s);
    const perToken = own.map((x) => x / block).sort((a, b) => a - b);
    const ratios = own.map((x, b) => x / baseSums[b]!);
    const ms = quantileSorted(perToken, 0.5);
    out[name] = {
      blocks,
      ms_per_token: ms,
      p10_ms_per_token: quantileSorted(perToken, 0.1),
      p90_ms_per_token: quantileSorted(perToken, 0.9),
      tokens_per_second: 1000 / ms,
      step_median_ms: median(s.slice(0, blocks * block)),
      vs_baseline: median(ratios),
      vs_baseline_ci95: medianInterval(ratios),
      vs_baseline_total: own.reduce((a, x) => a + x, 0) / baseSums.reduce((a, x) => a + x, 0),
    };
  }
  return out;
}

/** A model with what its sequence should be restarted from. */
export interface InterleavedConfig {
  name: string;
  model: LanguageModel;
  promptIds: readonly number[];
  /** The decoding loop to run it with (default this tree's generateStream; a benchmark may pass an older tree's). */
  stream?: typeof generateStream;
}

export interface InterleavedOptions {
  /** timed rounds per segment: every model restarts its prompt (untimed) at each segment's start */
  segmentTokens: number;
  segments: number;
  /** untimed rounds before the first segment */
  warmupRounds?: number;
  /** called before each segment with its index (e.g. progress) */
  onSegment?: (segment: number) => void;
  /** called after every restart's untimed prefills, before the rounds: whether they are recorded (false for the warm-up) */
  onRestarted?: (recorded: boolean) => void;
  /**
   * CPU time used by this process so far, in ms (Node: process.cpuUsage()); when given, each step's
   * CPU time is recorded too. Another process taking the core stretches a step's wall time but
   * hardly its CPU time.
   */
  cpuClock?: () => number;
  /** How every config decodes (default greedy): sampling and logits processors cost time of their own. */
  decoding?: Omit<GenerationSettings, 'maxNewTokens'>;
}

/** Per-step times of an interleaved run, index = round: wall clock, and CPU time when a cpuClock was given. */
export interface InterleavedSteps {
  wall: Record<string, number[]>;
  cpu: Record<string, number[]> | null;
}

/**
 * Decodes every config's own sequence (greedy unless options.decoding says otherwise) through
 * generateStream (the loop the app runs), one token per model per round, the order rotated by one each round; returns each config's step times
 * (ms), index = round, and their CPU time with options.cpuClock. A step is one `stream.next()`: the
 * model's `next()` (RETRO retrieval included when it falls there) and the sampling of the following
 * token. Prompts restart, untimed,
 * at each segment's start, before any sequence reaches the model's context; the caller checks that
 * prompt + segmentTokens + 1 fits it. Each stream's clock runs only during its own steps, so its
 * event-loop yield (every 25 ms of its decoding) comes as often as when it generates alone.
 */
export async function interleavedDecode(configs: readonly InterleavedConfig[], options: InterleavedOptions): Promise<InterleavedSteps> {
  const { segmentTokens, segments } = options;
  const warmup = options.warmupRounds ?? 0;
  const settings = { ...(options.decoding ?? GREEDY), stopTokenId: null };
  const steps: Record<string, number[]> = Object.fromEntries(configs.map((c) => [c.name, [] as number[]]));
  const cpuClock = options.cpuClock;
  const cpu: Record<string, number[]> | null = cpuClock ? Object.fromEntries(configs.map((c) => [c.name, [] as number[]])) : null;
  const clocks = configs.map(() => ({ base: 0, since: -1 }));
  const now = (i: number) => () => {
    const c = clocks[i]!;
    return c.base + (c.since >= 0 ? performance.now() - c.since : 0);
  };
  type Stream = AsyncGenerator<unknown, unknown, void>;
  let streams: Stream[] = [];
  const restart = async (rounds: number) => {
    for (const s of streams) await s.return(undefined);
    streams = [];
    for (let i = 0; i < configs.length; i++) {
      const c = configs[i]!;
      const stream = (c.stream ?? generateStream)(c.model, c.promptIds, { ...settings, maxNewTokens: rounds + 1 }, { now: now(i) });
      await stream.next(); // prefill and the first token, untimed
      streams.push(stream);
    }
  };
  let round = 0;
  const play = async (rounds: number, record: boolean) => {
    await restart(rounds);
    options.onRestarted?.(record);
    for (let r = 0; r < rounds; r++, round++) {
      for (let j = 0; j < configs.length; j++) {
        const i = (j + round) % configs.length;
        const clock = clocks[i]!;
        const cpu0 = cpuClock?.() ?? 0;
        clock.since = performance.now();
        const step = await streams[i]!.next();
        const ms = performance.now() - clock.since;
        const cpuMs = cpuClock ? cpuClock() - cpu0 : 0;
        clock.base += ms;
        clock.since = -1;
        if (step.done) throw new Error(`${configs[i]!.name}: the stream ended early`);
        if (record) {
          steps[configs[i]!.name]!.push(ms);
          cpu?.[configs[i]!.name]!.push(cpuMs);
        }
      }
    }
  };
  if (warmup > 0) await play(warmup, false);
  for (let s = 0; s < segments; s++) {
    options.onSegment?.(s);
    await play(segmentTokens, true);
  }
  for (const s of streams) await s.return(undefined);
  return { wall: steps, cpu };
}
