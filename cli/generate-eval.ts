/**
 * What the columns *write*, measured on the shipped int8 files through the app's engines in Node
 * (cli/engines-node.ts): each column is the compare view's (GPT, token-aligned RETRO, kNN-LM
 * over the GPT, In-Context RALM over the GPT) run by `InferenceEngine.generate`, with the datastore
 * and kNN-LM keys the engines choose, decoding greedily with the app's default logits processors
 * (`--plain`: bare greedy).
 *
 *   npm run eval:generate -- --task copy    [--n 300] [--plain --write-metrics]
 *       passages none of the models trained on (squad-v2/test.passages.jsonl) as the datastore;
 *       prompt = a passage up to a seeded cut; hit = the next 4 stored tokens written first.
 *   npm run eval:generate -- --task cloze   [--n 300] [--plain --write-metrics]
 *       squad-v2/dev.qa_public.jsonl: the answer's sentence cut before the answer, closed-book;
 *       datastore = the built-in SQuAD paragraphs (public/datastores, npm run setup);
 *       hit = the normalised answer in the first 12 generated tokens.
 *   npm run eval:generate -- --task quality [--n 100]
 *       100 WikiText-2 valid prompts (32 tokens), 48 tokens per column, datastore = WikiText-2 train,
 *       decoded as the app does by default (sampling, seed 0; --plain: bare greedy);
 *       repetition, distinct-n, Self-BLEU, Zipf and <unk> rate per column and for the human text.
 *   options: --columns gpt,retro,knnlm,icralm  --threads 1  --backend cpu|wasm  --seed 0  --examples 5  --plain
 *            --temperature T --top-p P   (sampling; default greedy, except --task quality)
 *            --repetition-penalty R  --no-repeat-ngram N  --allow-unk   (override the defaults)
 *
 * Prints one JSON object on stdout; progress goes to stderr.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { DecodingSettings } from '../src/protocol/api';
import { qualityMetrics, type QualityMetrics } from '../src/core/eval/quality';
import { clozePrompt, containsAnswer, copiedExactly, copyPrompts, wilsonInterval, type ClozeQuestion } from '../src/core/eval/reading';
import { concatenateArticles, tokenizeWikiTextArticles } from '../src/core/eval/stream';
import { DEFAULT_PROCESSORS, DEFAULT_SAMPLING } from '../src/core/generate/defaults';
import { DEFAULT_ICRALM_SETTINGS } from '../src/core/icralm/types';
import { DEFAULT_KNN_SETTINGS } from '../src/core/knnlm/types';
import { DEFAULT_REPLUG_SETTINGS } from '../src/core/replug/types';
import { detokenizeWikiText, type RetroTokenizer } from '../src/core/tokenizer';
import { buildDatastoreFile, dataDir, readTokenizer, REPO_ROOT } from './datastore-node';
import { parseBackend } from './backend';
import { startEngines, type NodeEngines } from './engines-node';
import { writeManifestMetric } from './metrics';

const COLUMNS = ['gpt', 'retro', 'knnlm', 'icralm'] as const;
type Column = (typeof COLUMNS)[number];

const { values: args } = parseArgs({
  options: {
    task: { type: 'string' },
    n: { type: 'string' },
    columns: { type: 'string', default: COLUMNS.join(',') },
    threads: { type: 'string', default: '1' },
    backend: { type: 'string', default: 'cpu' },
    seed: { type: 'string', default: '0' },
    examples: { type: 'string', default: '5' },
    plain: { type: 'boolean', default: false },
    'allow-unk': { type: 'boolean', default: false },
    'repetition-penalty': { type: 'string' },
    'no-repeat-ngram': { type: 'string' },
    temperature: { type: 'string' },
    'top-p': { type: 'string' },
    'write-metrics': { type: 'boolean', default: false },
    gpt: { type: 'string', default: join(REPO_ROOT, 'public', 'models', 'gpt-wt2') },
    retro: { type: 'string', default: join(REPO_ROOT, 'public', 'models', 'retro-wt2') },
  },
});

const SEED = Number(args.seed) || 0;
const THREADS = Number(args.threads) || 1;
const EXAMPLES = Number(args.examples);
const CACHE_DIR = join(REPO_ROOT, '.cache', 'eval');
const progress = (line: string) => process.stderr.write(`${line}\n`);

function fail(message: string): never {
  console.error(`eval:generate: ${message}`);
  process.exit(2);
}

function settings(maxNewTokens: number): DecodingSettings & { processors: string } {
  const penalty = args['repetition-penalty'] !== undefined ? Number(args['repetition-penalty']) : args.plain ? 1 : DEFAULT_PROCESSORS.repetitionPenalty;
  const ngram = args['no-repeat-ngram'] !== undefined ? Number(args['no-repeat-ngram']) : args.plain ? 0 : DEFAULT_PROCESSORS.noRepeatNgramSize;
  const suppressUnk = !args.plain && !args['allow-unk'] && DEFAULT_PROCESSORS.suppressUnk;
  // The quality task measures what the app writes (its default sampling); the reading tests decode greedily.
  const sampled = args.task === 'quality' && !args.plain;
  const temperature = args.temperature !== undefined ? Number(args.temperature) : sampled ? DEFAULT_SAMPLING.temperature : 0;
  const topP = args['top-p'] !== undefined ? Number(args['top-p']) : sampled ? DEFAULT_SAMPLING.topP : 1;
  return {
    strategy: temperature > 0 ? 'sample' : 'greedy',
    temperature,
    topK: 0,
    topP,
    seed: SEED,
    maxTokens: maxNewTokens,
    // Every column writes its full length: a reading test scores what comes out, not where it would stop.
    stopAtEndOfText: false,
    repetitionPenalty: penalty,
    noRepeatNgramSize: ngram,
    suppressUnk,
    processors: `${temperature > 0 ? `sampled (temperature ${temperature}, top-p ${topP}, seed ${SEED})` : 'greedy'}, repetition_penalty ${penalty}, no_repeat_ngram_size ${ngram}, <unk> ${suppressUnk ? 'suppressed' : 'allowed'}`,
  };
}

interface Setup {
  engines: NodeEngines;
  tokenizer: RetroTokenizer;
  columns: Column[];
  /** What `column` writes after `promptIds`, as the compare view's column would, through the engines. */
  write: (column: Column, promptIds: number[], decoding: DecodingSettings) => Promise<number[]>;
  dispose: () => Promise<void>;
}

/**
 * The app's engines with `datastore` active (a built-in id, or a shard file imported as the app
 * imports one), the kNN-LM keys the engines choose for it loaded, and the wanted columns.
 */
async function setUp(datastore: { id: string } | { file: string }, wanted: readonly Column[]): Promise<Setup> {
  const engines = await startEngines({ threads: THREADS, backend: parseBackend(args.backend) });
  const { retrieval, inference } = engines;
  try {
    const id = 'id' in datastore ? datastore.id : (await retrieval.importFile(new File([readFileSync(datastore.file)], basename(datastore.file)))).imported.id;
    await retrieval.setActive(id);
    if (wanted.includes('retro') && !(await inference.loadKnnFor('retro', () => undefined))) fail(`the datastore ${id} has no kNN-LM keys for RETRO: npm run setup builds them`);
    if (wanted.includes('knnlm') && !(await inference.loadKnnFor('knnlm', () => undefined))) fail('kNN-LM needs kNN-LM keys: npm run setup builds them');
  } catch (error) {
    await engines.dispose();
    throw error;
  }
  const retro = engines.ready.models.find((m) => m.key === 'retro')!;
  const gptDir = join(REPO_ROOT, 'public', 'models', engines.ready.models.find((m) => m.key === 'gpt')!.id);
  const tokenizer = readTokenizer(join(gptDir, 'tokenizer.json'));
  return {
    engines,
    tokenizer,
    columns: [...wanted],
    async write(column, promptIds, decoding) {
      const ids: number[] = [];
      await inference.generate(
        {
          prompt: '',
          promptIds,
          models: [column],
          decoding,
          // The compare view's defaults: the model's K neighbours per chunk, one retrieval per chunk, prompt left-padded to whole chunks.
          retro: { retrieval: true, k: retro.neighbours ?? 2, retrievalStep: retro.chunk ?? 8, leftPad: true, retroPlusPlus: false, excludeDocIds: [] },
          knn: { ...DEFAULT_KNN_SETTINGS },
          icralm: { ...DEFAULT_ICRALM_SETTINGS },
          replug: { ...DEFAULT_REPLUG_SETTINGS },
        },
        (event) => {
          if (event.type === 'tokens') ids.push(...event.tokens.map((t) => t.id));
        },
      );
      return ids;
    },
    dispose: () => engines.dispose(),
  };
}

/** A datastore file of passages with chunks and kNN-LM keys, built once into .cache/eval/ as the app builds one ("Also build kNN-LM keys"). */
async function passageDatastore(input: string, name: string): Promise<string> {
  const file = join(CACHE_DIR, `${name}.knn.rlds`);
  if (existsSync(file)) return file;
  mkdirSync(CACHE_DIR, { recursive: true });
  progress(`building the ${name} datastore with kNN-LM keys (once; cached in ${CACHE_DIR}) ...`);
  await buildDatastoreFile({ inputs: [input], format: 'jsonl', name, description: `${name} (npm run eval:generate)`, index: 'flat', knnKeys: true, out: file, log: progress });
  return file;
}

function rate(hits: number, n: number) {
  const [lo, hi] = wilsonInterval(hits, n);
  return { rate: n === 0 ? 0 : hits / n, n, hits, ci95: [lo, hi] };
}


/**
 * Runs every column over the items: the hit rate per column, and which items each column got right
 * (indices in the sample), so demos can be picked from a run.
 */
async function runColumns<T>(
  setup: Setup,
  items: readonly T[],
  run: (item: T, column: Column, index: number) => Promise<boolean>,
): Promise<{ results: Record<string, ReturnType<typeof rate>>; hit_items: Record<string, number[]> }> {
  const results: Record<string, ReturnType<typeof rate>> = {};
  const hitItems: Record<string, number[]> = {};
  for (const column of setup.columns) {
    const t0 = performance.now();
    let hits = 0;
    hitItems[column] = [];
    for (let i = 0; i < items.length; i++) {
      if (await run(items[i]!, column, i)) {
        hits++;
        hitItems[column]!.push(i);
      }
      if ((i + 1) % 25 === 0 || i + 1 === items.length) progress(`  ${column}: ${i + 1}/${items.length}, ${hits} hits (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    }
    results[column] = rate(hits, items.length);
  }
  return { results, hit_items: hitItems };
}

/** A seeded sample of `n` items (all when n is larger), kept in their original order. */
function sampleOf<T>(items: readonly T[], n: number, seed: number): T[] {
  if (n >= items.length) return [...items];
  let state = (seed >>> 0) + 0x9e3779b9;
  const keyed = items.map((item, i) => {
    state = Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) >>> 0;
    return { item, i, key: state ^ Math.imul(i + 1, 0x297a2d39) };
  });
  return keyed.sort((a, b) => a.key - b.key || a.i - b.i).slice(0, n).sort((a, b) => a.i - b.i).map((k) => k.item);
}

async function copyTask(wanted: readonly Column[]) {
  const input = join(dataDir(), 'squad-v2', 'test.passages.jsonl');
  const setup = await setUp({ file: await passageDatastore(input, 'squad-test-passages') }, wanted);
  const passages = readFileSync(input, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { text: string }).text);
  const ids = passages.map((p) => setup.tokenizer.encode(p));
  const prompts = sampleOf(copyPrompts(ids, { copyTokens: 4, minPrompt: 16, maxPrompt: 200, seed: SEED + 1 }), Number(args.n ?? 300), SEED);
  const s = settings(16);
  const examples: unknown[] = [];
  const { results, hit_items } = await runColumns(setup, prompts, async (p, column, index) => {
    const wrote = await setup.write(column, p.promptIds, s);
    const hit = copiedExactly(wrote, p.expected);
    if (index < EXAMPLES) {
      examples.push({ column, prompt_end: setup.tokenizer.decode(p.promptIds.slice(-12)), expected: setup.tokenizer.decode(p.expected), wrote: setup.tokenizer.decode(wrote), hit });
    }
    return hit;
  });
  await setup.dispose();
  return { task: 'copy', datastore: 'squad-v2/test.passages.jsonl (570 passages, not in any training text)', copy_tokens: 4, max_new_tokens: 16, decoding: s.processors, results, hit_items, examples };
}

async function clozeTask(wanted: readonly Column[]) {
  const setup = await setUp({ id: 'squad-v2-paragraphs' }, wanted);
  const dir = join(dataDir(), 'squad-v2');
  const paragraphs = new Map<string, string>();
  for (const f of ['dev.passages.jsonl', 'test.passages.jsonl']) {
    for (const line of readFileSync(join(dir, f), 'utf8').trim().split('\n')) {
      const p = JSON.parse(line) as { pid: string; text: string };
      paragraphs.set(p.pid, p.text);
    }
  }
  const questions = readFileSync(join(dir, 'dev.qa_public.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as ClozeQuestion);
  const all = questions.map((q) => clozePrompt(q, paragraphs.get(q.pid) ?? '')).filter((p) => p !== null);
  const prompts = sampleOf(all, Number(args.n ?? 300), SEED);
  const s = settings(12);
  const examples: unknown[] = [];
  const written = new Map<number, Record<string, string>>();
  const { results, hit_items } = await runColumns(setup, prompts, async (p, column, index) => {
    const text = detokenizeWikiText(setup.tokenizer.decode(await setup.write(column, setup.tokenizer.encode(p.prompt), s)));
    const hit = containsAnswer(text, p.answers);
    written.set(index, { ...written.get(index), [column]: text });
    if (index < EXAMPLES) {
      examples.push({ id: p.id, column, prompt: p.prompt, answers: p.answers, wrote: text, hit });
    }
    return hit;
  });
  await setup.dispose();
  // Every prompt some column answered, with what each column wrote: where demos are picked from.
  const answered = [...new Set(Object.values(hit_items).flat())].sort((a, b) => a - b);
  const answered_items = answered.map((i) => ({ i, id: prompts[i]!.id, prompt: prompts[i]!.prompt, answers: prompts[i]!.answers, wrote: written.get(i) }));
  return { task: 'cloze', questions: questions.length, prompts_available: all.length, max_new_tokens: 12, decoding: s.processors, results, hit_items, examples, answered_items };
}

async function qualityTask(wanted: readonly Column[]) {
  // The built-in WikiText-2 train datastore; RETRO and kNN-LM read the built-in keys of the same articles.
  const setup = await setUp({ id: 'wikitext-2-train' }, wanted);
  const text = readFileSync(join(dataDir(), 'wikitext-2', 'wiki.valid.tokens'), 'utf8');
  const articles = tokenizeWikiTextArticles(setup.tokenizer, text);
  const n = Number(args.n ?? 100);
  const PROMPT = 32;
  const LENGTH = 48;
  // Prompts spread evenly over valid, each inside one article with 48 human tokens after it.
  const spans: { prompt: number[]; human: number[] }[] = [];
  const stream = concatenateArticles(articles, setup.tokenizer.vocabSize);
  const starts: number[] = [];
  let offset = 0;
  for (const a of articles) {
    starts.push(offset);
    offset += a.length;
  }
  for (let i = 0; i < n; i++) {
    let p = Math.floor(((i + 0.5) * stream.length) / n);
    const article = starts.findLastIndex((s) => s <= p);
    const begin = starts[article]!;
    const end = begin + articles[article]!.length;
    p = Math.min(Math.max(p, begin + PROMPT), end - LENGTH);
    if (p - PROMPT < begin) continue;
    spans.push({ prompt: Array.from(stream.subarray(p - PROMPT, p)), human: Array.from(stream.subarray(p, p + LENGTH)) });
  }
  const s = settings(LENGTH);
  const outputs = new Map<string, number[][]>();
  const examples: Record<string, string[]> = { prompt: [], human: [] };
  for (const column of setup.columns) {
    const t0 = performance.now();
    const runs: number[][] = [];
    for (const span of spans) runs.push(await setup.write(column, span.prompt, s));
    progress(`  ${column}: ${runs.length} continuations (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    outputs.set(column, runs);
    examples[column] = runs.slice(0, EXAMPLES).map((r) => detokenizeWikiText(setup.tokenizer.decode(r)));
  }
  examples.prompt = spans.slice(0, EXAMPLES).map((sp) => detokenizeWikiText(setup.tokenizer.decode(sp.prompt)));
  examples.human = spans.slice(0, EXAMPLES).map((sp) => detokenizeWikiText(setup.tokenizer.decode(sp.human)));
  const metrics: Record<string, QualityMetrics> = { human: qualityMetrics(spans.map((sp) => sp.human), 0) };
  for (const [column, runs] of outputs) metrics[column] = qualityMetrics(runs, 0);
  await setup.dispose();
  return { task: 'quality', prompts: spans.length, prompt_tokens: PROMPT, max_new_tokens: LENGTH, decoding: s.processors, metrics, examples };
}

const METRIC_NAMES: Record<Column, string> = { gpt: '', retro: '', knnlm: '_knnlm', icralm: '_icralm' };

async function main(): Promise<void> {
  const wanted = args.columns!.split(',').map((c) => c.trim()) as Column[];
  const unknown = wanted.filter((c) => !(COLUMNS as readonly string[]).includes(c));
  if (unknown.length) fail(`unknown column(s) ${unknown.join(', ')}; choose from ${COLUMNS.join(', ')}`);
  const started = performance.now();
  const task = args.task;
  const result =
    task === 'copy' ? await copyTask(wanted) : task === 'cloze' ? await clozeTask(wanted) : task === 'quality' ? await qualityTask(wanted) : fail('--task must be copy, cloze or quality');
  const out: Record<string, unknown> = { ...result, seconds: (performance.now() - started) / 1000 };
  if (args['write-metrics'] && (task === 'copy' || task === 'cloze') && 'results' in result) {
    // The reading tests are defined on bare greedy decoding (docs/manifest.md), whatever the app's defaults.
    if (!args.plain || args['repetition-penalty'] || args['no-repeat-ngram'] || args['allow-unk'] || args.temperature) fail('--write-metrics records bare greedy runs only: add --plain');
    const key = task === 'copy' ? 'copy_test' : 'squad_cloze';
    const written: string[] = [];
    for (const [column, r] of Object.entries(result.results)) {
      const value = { rate: r.rate, n: r.n, hits: r.hits, ci95: r.ci95, decoding: result.decoding, measured_by: `npm run eval:generate -- --task ${task}` };
      const dir = column === 'retro' ? resolve(args.retro!) : resolve(args.gpt!);
      written.push(writeManifestMetric(dir, `${key}${METRIC_NAMES[column as Column]}`, value));
    }
    out.wrote_metrics = written;
  }
  console.log(JSON.stringify(out, null, 1));
}

await main();
