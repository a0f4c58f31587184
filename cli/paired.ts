/**
 * `npm run eval:paired -- <a.f32> <b.f32> [--resamples 10000] [--confidence 0.95] [--seed 0]`
 *
 * Compares two runs of `npm run eval -- ... --token-logprobs <file>` on the same split and windows:
 * token-level perplexity of each, B's change against A in percent, and a bootstrap interval over
 * articles (src/core/eval/paired.ts). For instance A = RETRO with random neighbours, B = RETRO with
 * real ones: is the difference larger than what the choice of test articles could produce?
 * Prints one JSON object.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pairedComparison } from '../src/core/eval/paired';

interface RunInfo {
  model: string;
  split: string;
  neighbours?: string;
  k?: number;
  context: number;
  stride: number;
  windows: number;
  token_ppl: number;
  article_lengths: number[];
}

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    resamples: { type: 'string', default: '10000' },
    confidence: { type: 'string', default: '0.95' },
    seed: { type: 'string', default: '0' },
  },
});

function fail(message: string): never {
  console.error(`eval:paired: ${message}`);
  process.exit(2);
}

function readRun(file: string): { info: RunInfo; logprobs: Float32Array } {
  if (!existsSync(file)) fail(`${file} does not exist`);
  if (!existsSync(`${file}.json`)) fail(`${file}.json (written beside it by npm run eval --token-logprobs) does not exist`);
  const bytes = readFileSync(file);
  if (bytes.length % 4 !== 0) fail(`${file} is not a float32 file (${bytes.length} bytes)`);
  const logprobs = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  return { info: JSON.parse(readFileSync(`${file}.json`, 'utf8')) as RunInfo, logprobs };
}

function label(info: RunInfo): string {
  return info.neighbours ? `${info.model} (${info.neighbours} neighbours, k ${info.k})` : info.model;
}

function main(): void {
  if (positionals.length !== 2) fail('usage: npm run eval:paired -- <a.f32> <b.f32> [--resamples N] [--confidence 0.95]');
  const [a, b] = positionals.map(readRun) as [ReturnType<typeof readRun>, ReturnType<typeof readRun>];
  for (const field of ['split', 'context', 'stride', 'windows'] as const) {
    if (a.info[field] !== b.info[field]) fail(`the runs differ in ${field} (${a.info[field]} and ${b.info[field]})`);
  }
  if (a.info.article_lengths.join() !== b.info.article_lengths.join()) fail('the runs tokenized the split differently (another tokenizer?)');
  const resamples = Number(args.resamples);
  const confidence = Number(args.confidence);
  if (!Number.isInteger(resamples) || resamples < 100) fail(`--resamples must be an integer ≥ 100, got ${args.resamples}`);
  if (!(confidence > 0 && confidence < 1)) fail(`--confidence must be between 0 and 1, got ${args.confidence}`);
  try {
    const result = pairedComparison(a.logprobs, b.logprobs, a.info.article_lengths, { resamples, confidence, seed: Number(args.seed) });
    console.log(JSON.stringify({ a: label(a.info), b: label(b.info), split: a.info.split, ...result }));
  } catch (error) {
    fail((error as Error).message);
  }
}

main();
