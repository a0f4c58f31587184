/**
 * `npm run eval:merge -- part1.json part2.json ... [--headline lambda,k,T] [--model public/models/gpt-wt2 --write-metrics wt2_test_knnlm]`
 *
 * Adds up the parts of one kNN-LM evaluation that ran as several processes (`npm run eval -- --knnlm
 * --windows a:b`, one per core): the negative log-likelihoods and token counts are sums, so the merged
 * perplexities equal a single run's. Refuses parts that do not fit together (other model, split,
 * datastore or settings; overlapping or missing windows). --headline picks which of the swept
 * settings is reported (and written) as the result, e.g. the one tuned on valid; default: the run's own.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writeManifestMetric } from './metrics';

interface SweepEntry {
  lambda: number;
  k: number;
  temperature: number;
  nll: number;
}

interface Part {
  model: string;
  split: string;
  window_range: { start: number; end: number };
  total_windows: number;
  split_tokens: number;
  split_words: number;
  scored_tokens: number;
  gpt: { nll: number };
  sweep: SweepEntry[];
  target_in_neighbours: number;
  datastore: { name: string; entries: number; dim: number; encoding: string };
  search: { queries: number; k: number; median_ms: number; p95_ms: number; total_seconds: number; backend: string };
  forward_seconds: number;
  eval_seconds: number;
  stride: number;
}

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: { model: { type: 'string' }, 'write-metrics': { type: 'string' }, headline: { type: 'string' } },
});

function fail(message: string): never {
  console.error(`eval:merge: ${message}`);
  process.exit(2);
}

if (positionals.length === 0) fail('usage: npm run eval:merge -- part1.json part2.json ... [--model <dir> --write-metrics <name>]');
const parts = positionals.map((file): Part => {
  let part: Part;
  try {
    // The eval prints progress on stderr and one JSON line on stdout; take the last line that parses.
    const lines = readFileSync(file, 'utf8').trim().split('\n').reverse();
    const line = lines.find((l) => l.startsWith('{'));
    if (!line) throw new Error('no JSON line');
    part = JSON.parse(line) as Part;
  } catch (error) {
    fail(`${file}: not the output of npm run eval -- --knnlm --windows a:b (${error instanceof Error ? error.message : String(error)})`);
  }
  if (!part.window_range || !Array.isArray(part.sweep)) fail(`${file}: not a kNN-LM part (no window_range or sweep)`);
  return part;
});

const first = parts[0]!;
const settingsKey = (p: Part) => p.sweep.map((s) => `${s.lambda}/${s.k}/${s.temperature}`).join(',');
for (const p of parts) {
  const same = p.model === first.model && p.split === first.split && p.stride === first.stride && p.total_windows === first.total_windows && p.datastore.name === first.datastore.name && p.datastore.entries === first.datastore.entries;
  if (!same) fail('parts come from different evaluations (model, split, stride or datastore differ)');
  if (settingsKey(p) !== settingsKey(first)) fail('parts were run with different lambda / k / temperature settings');
}
const ranges = parts.map((p) => p.window_range).sort((a, b) => a.start - b.start);
let next = 0;
for (const r of ranges) {
  if (r.start !== next) fail(r.start < next ? `windows overlap at ${r.start}` : `windows ${next}..${r.start - 1} are missing`);
  next = r.end;
}
if (next < first.total_windows) fail(`windows ${next}..${first.total_windows - 1} are missing`);

const scored = parts.reduce((n, p) => n + p.scored_tokens, 0);
// With --max-windows the parts cover a prefix of the split: word counts are then estimated the way
// the eval estimates them (in proportion to tokens), and no metric may be written from it.
const partial = scored < first.split_tokens - 1;
if (partial && args['write-metrics']) fail(`the parts scored ${scored} of the split's ${first.split_tokens - 1} tokens: metrics need the whole split`);
const words = partial ? (first.split_words * scored) / (first.split_tokens - 1) : first.split_words;
const ppl = (nll: number) => ({ token_ppl: Math.exp(nll / scored), word_ppl: Math.exp(nll / words) });
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
  if (!args.model) fail('--write-metrics needs --model <dir>');
  result.wrote_metrics = writeManifestMetric(resolve(args.model), args['write-metrics'], {
    token_ppl: head.token_ppl,
    word_ppl: head.word_ppl,
    scored_tokens: scored,
    words,
    windows: first.total_windows,
    lambda: head.lambda,
    k: head.k,
    temperature: head.temperature,
    datastore: first.datastore,
    measured_by: `npm run eval --knnlm (onnxruntime-web WASM, int8 graph; exact kNN search), ${parts.length} window ranges merged by npm run eval:merge`,
  });
}
console.log(JSON.stringify(result));
