/**
 * `npm run eval:merge -- part1.json part2.json ... [--headline lambda,k,T] [--model public/models/gpt-wt2 --write-metrics wt2_test_knnlm]`
 * `npm run eval:merge -- part1.json part2.json ... [--token-logprobs merged.f32] [--model public/models/retro-wt2 --write-metrics wt2_test]`
 *
 * Adds up the parts of one evaluation that ran as several processes (`npm run eval -- ... --windows
 * a:b`, one per core): the negative log-likelihoods and token counts are sums, so the merged
 * perplexities equal a single run's. Parts are either all kNN-LM runs (--knnlm) or all plain
 * perplexity runs of a GPT or RETRO. Refuses parts that do not fit together (other model, split,
 * neighbours, datastore or settings; overlapping or missing windows). --headline picks which of the
 * swept kNN-LM settings is reported (and written) as the result, e.g. the one tuned on valid; default:
 * the run's own. --token-logprobs joins the parts' per-token files into one, for npm run eval:paired.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { onnxRuntimeName } from './backend';
import { writeManifestMetric } from './metrics';

interface SweepEntry {
  lambda: number;
  k: number;
  temperature: number;
  nll: number;
}

/** What every part carries, kNN-LM or plain. */
interface PartBase {
  model: string;
  split: string;
  window_range: { start: number; end: number };
  total_windows: number;
  split_tokens: number;
  split_words: number;
  scored_tokens: number;
  eval_seconds: number;
  stride: number;
  token_logprobs?: string;
  /** the onnxruntime that ran the graphs ('wasm' or 'cpu'; absent before 2026-12-07: wasm) */
  backend?: string;
}

/** A plain perplexity part: a GPT, or RETRO with some neighbours. */
interface PlainPart extends PartBase {
  nll: number;
  neighbours?: string;
  k?: number;
  seed?: number;
  datastore?: unknown;
}

interface Part extends PartBase {
  gpt: { nll: number };
  sweep: SweepEntry[];
  target_in_neighbours: number;
  datastore: { name: string; entries: number; dim: number; encoding: string };
  search: { queries: number; k: number; median_ms: number; p95_ms: number; total_seconds: number; backend: string };
  forward_seconds: number;
}

/** A part of a passage method's run (FLARE): blocks on the whole run's grid, and the GPT on the same windows. */
interface PassagePart extends PartBase {
  nll: number;
  neighbours: string;
  settings: Record<string, unknown>;
  blocks: number;
  forwards: number;
  retrieved?: number;
  lookahead_accuracy?: number;
  datastore: string;
  gpt?: { nll: number };
}

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: { model: { type: 'string' }, 'write-metrics': { type: 'string' }, headline: { type: 'string' }, 'token-logprobs': { type: 'string' } },
});

/** Which onnxruntime ran the parts, for measured_by. */
function runtimeOf(parts: readonly PartBase[]): string {
  const names = new Set(parts.map((p) => onnxRuntimeName(p.backend)));
  return [...names].join(' and ');
}

function fail(message: string): never {
  console.error(`eval:merge: ${message}`);
  process.exit(2);
}

if (positionals.length === 0) fail('usage: npm run eval:merge -- part1.json part2.json ... [--model <dir> --write-metrics <name>]');
const parsed = positionals.map((file): PartBase => {
  let part: PartBase;
  try {
    // The eval prints progress on stderr and one JSON line on stdout; take the last line that parses.
    const lines = readFileSync(file, 'utf8').trim().split('\n').reverse();
    const line = lines.find((l) => l.startsWith('{'));
    if (!line) throw new Error('no JSON line');
    part = JSON.parse(line) as PartBase;
  } catch (error) {
    fail(`${file}: not the output of npm run eval -- ... --windows a:b (${error instanceof Error ? error.message : String(error)})`);
  }
  if (!part.window_range) fail(`${file}: not a part (no window_range: run npm run eval with --windows a:b)`);
  return part;
});

const first = parsed[0]!;
for (const p of parsed) {
  const same = p.model === first.model && p.split === first.split && p.stride === first.stride && p.total_windows === first.total_windows && p.split_tokens === first.split_tokens;
  if (!same) fail('parts come from different evaluations (model, split, stride or windows differ)');
}
const ranges = parsed.map((p) => p.window_range).sort((a, b) => a.start - b.start);
let next = 0;
for (const r of ranges) {
  if (r.start !== next) fail(r.start < next ? `windows overlap at ${r.start}` : `windows ${next}..${r.start - 1} are missing`);
  next = r.end;
}
if (next < first.total_windows) fail(`windows ${next}..${first.total_windows - 1} are missing`);

const scored = parsed.reduce((n, p) => n + p.scored_tokens, 0);
// With --max-windows the parts cover a prefix of the split: word counts are then estimated the way
// the eval estimates them (in proportion to tokens), and no metric may be written from it.
const partial = scored < first.split_tokens - 1;
if (partial && args['write-metrics']) fail(`the parts scored ${scored} of the split's ${first.split_tokens - 1} tokens: metrics need the whole split`);
if (args['write-metrics'] && !args.model) fail('--write-metrics needs --model <dir>');
const words = partial ? (first.split_words * scored) / (first.split_tokens - 1) : first.split_words;
const ppl = (nll: number) => ({ token_ppl: Math.exp(nll / scored), word_ppl: Math.exp(nll / words) });
const tokenLogProbs = args['token-logprobs'] ? joinTokenLogProbs(parsed, resolve(args['token-logprobs'])) : undefined;
const isKnnLm = (p: PartBase): p is Part => Array.isArray((p as Partial<Part>).sweep);
const isPassages = (p: PartBase): p is PassagePart => typeof (p as Partial<PassagePart>).blocks === 'number';
if (parsed.every(isKnnLm)) mergeKnnLm(parsed);
else if (parsed.every(isPassages)) mergePassages(parsed);
else if (!parsed.some(isKnnLm) && !parsed.some(isPassages)) mergePlain(parsed as PlainPart[]);
else fail('the parts are runs of different kinds (kNN-LM, passage methods, plain)');

/**
 * The parts' --token-logprobs files hold NaN outside their windows: each target is taken from the
 * part that scored it. The metadata eval:paired checks is the first part's, with the whole run's
 * window count and perplexity.
 */
function joinTokenLogProbs(parts: readonly PartBase[], out: string): string {
  let joined: Float32Array | undefined;
  let meta: Record<string, unknown> | undefined;
  for (const p of parts) {
    if (!p.token_logprobs) fail(`the part for windows ${p.window_range.start}:${p.window_range.end} was run without --token-logprobs`);
    const bytes = readFileSync(p.token_logprobs);
    const values = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    joined ??= new Float32Array(values.length).fill(NaN);
    if (values.length !== joined.length) fail(`${p.token_logprobs}: ${values.length} targets, other parts have ${joined.length}`);
    for (let j = 0; j < values.length; j++) if (!Number.isNaN(values[j]!)) joined[j] = values[j]!;
    meta ??= JSON.parse(readFileSync(`${p.token_logprobs}.json`, 'utf8')) as Record<string, unknown>;
  }
  let nll = 0;
  let n = 0;
  for (const v of joined!) if (!Number.isNaN(v)) { nll -= v; n++; }
  if (n !== scored) fail(`the token files hold ${n} scored targets, the parts ${scored}`);
  writeFileSync(out, new Uint8Array(joined!.buffer));
  writeFileSync(`${out}.json`, JSON.stringify({ ...meta, windows: first.total_windows, token_ppl: Math.exp(nll / n) }));
  return out;
}

function mergePlain(parts: PlainPart[]): void {
  const head = parts[0]!;
  for (const p of parts) {
    if (p.neighbours !== head.neighbours || p.k !== head.k) fail('parts were run with different neighbours or k');
  }
  const nll = parts.reduce((n, p) => n + p.nll, 0);
  const neighbours = head.neighbours ? { neighbours: head.neighbours, k: head.k } : {};
  const result = mergedResult(parts, nll, { ...neighbours, ...(head.datastore ? { datastore: head.datastore } : {}) });
  if (args['write-metrics']) {
    result.wrote_metrics = writeMergedMetric(parts, nll, neighbours, `npm run eval (${runtimeOf(parts)}, int8 graphs)`);
  }
  console.log(JSON.stringify(result));
}

/** What every merged run prints: the parts' identity, the merged counts and perplexities, then `fields` (the kind's own). */
function mergedResult(parts: readonly PartBase[], nll: number, fields: Record<string, unknown>): Record<string, unknown> {
  const head = parts[0]!;
  return {
    model: head.model,
    split: head.split,
    parts: parts.length,
    windows: head.total_windows,
    scored_tokens: scored,
    words: Math.round(words),
    ...(partial ? { word_ppl_estimated: true } : {}),
    nll,
    ...ppl(nll),
    ...fields,
    eval_seconds_per_part: parts.map((p) => p.eval_seconds),
    stride: head.stride,
    ...(tokenLogProbs ? { token_logprobs: tokenLogProbs } : {}),
  };
}

/** Writes the merged metric: perplexities and counts, `fields`, and how it was measured. */
function writeMergedMetric(parts: readonly PartBase[], nll: number, fields: Record<string, unknown>, measuredBy: string): string {
  return writeManifestMetric(resolve(args.model!), args['write-metrics']!, {
    ...ppl(nll),
    scored_tokens: scored,
    words: Math.round(words),
    windows: parts[0]!.total_windows,
    ...fields,
    measured_by: `${measuredBy}, ${parts.length} window ranges merged by npm run eval:merge`,
  });
}

function mergePassages(parts: PassagePart[]): void {
  const head = parts[0]!;
  for (const p of parts) {
    if (JSON.stringify(p.settings) !== JSON.stringify(head.settings) || p.neighbours !== head.neighbours || p.datastore !== head.datastore) {
      fail('parts were run with different settings, neighbours or datastores');
    }
  }
  const sum = (f: (p: PassagePart) => number) => parts.reduce((n, p) => n + f(p), 0);
  const nll = sum((p) => p.nll);
  const blocks = sum((p) => p.blocks);
  const forwards = sum((p) => p.forwards);
  const retrieved = head.retrieved !== undefined ? sum((p) => p.retrieved ?? 0) : undefined;
  // The GPT's parts are its windows a..b-1: together they score every target, as the method's do.
  const gptNll = parts.every((p) => p.gpt) ? sum((p) => p.gpt!.nll) : undefined;
  const extra = {
    ...head.settings,
    forwards_per_token: forwards / scored,
    ...(retrieved !== undefined ? { retrievals_per_100_tokens: (100 * retrieved) / scored } : {}),
    ...(head.lookahead_accuracy !== undefined ? { lookahead_accuracy: sum((p) => (p.lookahead_accuracy ?? 0) * p.blocks) / blocks } : {}),
  };
  const result = mergedResult(parts, nll, {
    neighbours: head.neighbours,
    blocks,
    forwards,
    ...(retrieved !== undefined ? { retrieved } : {}),
    ...extra,
    datastore: head.datastore,
    ...(gptNll !== undefined ? { gpt: { nll: gptNll, ...ppl(gptNll) } } : {}),
  });
  if (args['write-metrics']) {
    result.wrote_metrics = writeMergedMetric(
      parts,
      nll,
      { ...extra, datastore: head.datastore, ...(gptNll !== undefined ? { gpt_token_ppl: ppl(gptNll).token_ppl } : {}) },
      `npm run eval (the app’s engines in Node: ${runtimeOf(parts)}, int8 graphs dequantized at load)`,
    );
  }
  console.log(JSON.stringify(result));
}

function mergeKnnLm(parts: Part[]): void {
  const first = parts[0]!;
  const settingsKey = (p: Part) => p.sweep.map((s) => `${s.lambda}/${s.k}/${s.temperature}`).join(',');
  for (const p of parts) {
    if (p.datastore.name !== first.datastore.name || p.datastore.entries !== first.datastore.entries) fail('parts come from different evaluations (datastore differs)');
    if (settingsKey(p) !== settingsKey(first)) fail('parts were run with different lambda / k / temperature settings');
  }
  const gptNll = parts.reduce((n, p) => n + p.gpt.nll, 0);
  const sweep = first.sweep.map((s, i) => {
    const nll = parts.reduce((n, p) => n + p.sweep[i]!.nll, 0);
    return { lambda: s.lambda, k: s.k, temperature: s.temperature, nll, ...ppl(nll) };
  });
  let head = sweep[0]!;
  if (args.headline) {
    const [lambda, k, temperature] = args.headline.split(',').map(Number);
    const chosen = sweep.find((s) => s.lambda === lambda && s.k === k && s.temperature === temperature);
    if (!chosen) fail(`--headline ${args.headline}: the parts did not score lambda=${lambda}, k=${k}, T=${temperature}`);
    head = chosen;
  }
  const queries = parts.reduce((n, p) => n + p.search.queries, 0);
  const result = {
    model: first.model,
    split: first.split,
    parts: parts.length,
    windows: first.total_windows,
    scored_tokens: scored,
    words: Math.round(words),
    ...(partial ? { word_ppl_estimated: true } : {}),
    settings: { lambda: head.lambda, k: head.k, temperature: head.temperature },
    token_ppl: head.token_ppl,
    word_ppl: head.word_ppl,
    gpt: { nll: gptNll, ...ppl(gptNll) },
    sweep,
    target_in_neighbours: parts.reduce((n, p) => n + p.target_in_neighbours * p.scored_tokens, 0) / scored,
    datastore: first.datastore,
    search: {
      queries,
      k: first.search.k,
      backend: first.search.backend,
      mean_ms: (1000 * parts.reduce((n, p) => n + p.search.total_seconds, 0)) / queries,
      median_ms_per_part: parts.map((p) => p.search.median_ms),
    },
    eval_seconds_per_part: parts.map((p) => p.eval_seconds),
    stride: first.stride,
  } as Record<string, unknown>;

  if (args['write-metrics']) {
    result.wrote_metrics = writeManifestMetric(resolve(args.model!), args['write-metrics'], {
      token_ppl: head.token_ppl,
      word_ppl: head.word_ppl,
      scored_tokens: scored,
      words,
      windows: first.total_windows,
      lambda: head.lambda,
      k: head.k,
      temperature: head.temperature,
      datastore: first.datastore,
      measured_by: `npm run eval --knnlm (${runtimeOf(parts)}, int8 graph; exact kNN search), ${parts.length} window ranges merged by npm run eval:merge`,
    });
  }
  console.log(JSON.stringify(result));
}
