/**
 * `npm test`: every check the project has, in order, with one closing line the CI reads:
 *   N passed, N failed, N skipped
 * Typecheck, lint and the import-cycle check count as one check each; vitest, the Python parity tests and the Playwright
 * specs count their tests. A step that cannot report counts (crashed, missing tool) is one failure.
 * Options: --skip <step> (repeatable): typecheck, lint, cycles, unit, python, e2e.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const results = join(root, 'test-results');
// Under .cache, not test-results/: Playwright empties test-results at every run.
const preparedCorpus = join(root, '.cache', 'prepared-corpus');

interface Outcome {
  step: string;
  passed: number;
  failed: number;
  skipped: number;
  note?: string;
}

const skip = new Set<string>();
for (let i = 2; i < process.argv.length; i++) {
  if (process.argv[i] === '--skip' && process.argv[i + 1]) skip.add(process.argv[++i]!);
}

/** Runs a command with its output on the terminal as it comes; `capture` also returns it (for summaries). */
function run(command: string, args: string[], capture = false): { status: number; output: string } {
  console.log(`\n$ ${[command, ...args].join(' ')}`);
  const result = spawnSync(command, args, {
    cwd: root,
    stdio: capture ? ['ignore', 'pipe', 'pipe'] : 'inherit',
    maxBuffer: 256 * 1024 * 1024,
  });
  const output = capture ? `${result.stdout?.toString() ?? ''}${result.stderr?.toString() ?? ''}` : '';
  if (capture) process.stdout.write(output);
  if (result.error) console.log(`could not run ${command}: ${result.error.message}`);
  return { status: result.status ?? 1, output };
}

function check(step: string, command: string, args: string[]): Outcome {
  const { status } = run(command, args);
  return { step, passed: status === 0 ? 1 : 0, failed: status === 0 ? 0 : 1, skipped: 0 };
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return null;
  }
}

function unit(): Outcome {
  const report = join(results, 'vitest.json');
  rmSync(report, { force: true });
  const { status } = run('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`]);
  const json = readJson(report) as { numPassedTests?: number; numFailedTests?: number; numPendingTests?: number; numTodoTests?: number } | null;
  if (!json || json.numPassedTests === undefined) return { step: 'unit', passed: 0, failed: 1, skipped: 0, note: `vitest exited ${status} without a report` };
  const failed = (json.numFailedTests ?? 0) + (status !== 0 && !json.numFailedTests ? 1 : 0);
  return { step: 'unit', passed: json.numPassedTests, failed, skipped: (json.numPendingTests ?? 0) + (json.numTodoTests ?? 0) };
}

function python(): Outcome {
  const script = join(root, 'models', 'tests', 'run.sh');
  if (!existsSync(script)) return { step: 'python', passed: 0, failed: 0, skipped: 0, note: 'models/tests/run.sh not present' };
  const { status, output } = run('bash', [script], true);
  // pytest / unittest style summaries, when the script prints one.
  const pytest = /(\d+) passed(?:, (\d+) failed)?/.exec(output) ?? null;
  const failedOnly = /(\d+) failed/.exec(output);
  const unittest = /Ran (\d+) tests?[\s\S]*?(OK|FAILED \((?:failures|errors)=(\d+))/.exec(output);
  if (pytest) {
    const failed = Number(pytest[2] ?? failedOnly?.[1] ?? 0);
    return { step: 'python', passed: Number(pytest[1]), failed: failed || (status !== 0 ? 1 : 0), skipped: 0 };
  }
  if (unittest) {
    const total = Number(unittest[1]);
    const failed = unittest[2] === 'OK' ? 0 : Number(unittest[3] ?? 1);
    return { step: 'python', passed: total - failed, failed: failed || (status !== 0 ? 1 : 0), skipped: 0 };
  }
  return { step: 'python', passed: status === 0 ? 1 : 0, failed: status === 0 ? 0 : 1, skipped: 0 };
}

/** Whether public/datastores/index.json lists a kNN-LM datastore whose file is there. */
function knnDefaultListed(): boolean {
  const dir = join(root, 'public', 'datastores');
  const index = readJson(join(dir, 'index.json')) as { datastores?: { knnlm?: unknown; file: string }[] } | null;
  return (index?.datastores ?? []).some((d) => d.knnlm && existsSync(join(dir, d.file)));
}

/**
 * What the unit tests compare against and a fresh clone lacks, made before they run so that none of
 * them is skipped: the default chunk datastores, and the token ids the Python pipeline trains on
 * (cli/prepare-corpus.ts with the shipped tokenizer), which the datastore test checks row by row.
 */
function prepareFixtures(): void {
  if (!existsSync(join(root, 'public', 'datastores', 'index.json'))) {
    const setup = run('npm', ['run', 'setup:datastores']);
    if (setup.status !== 0) console.log('Default datastores could not be built; the tests that need them will fail.');
  }
  const pipelineCorpus = join(root, 'models', '.work', 'data');
  const hasPipelineCorpus = existsSync(join(pipelineCorpus, 'train.ids.u16'));
  if (!hasPipelineCorpus && !existsSync(join(preparedCorpus, 'train.ids.u16'))) {
    const data = process.env.RETROLAB_DATA ?? join(root, '..', 'shared', 'data');
    const tokenizer = join(root, 'public', 'models', 'gpt-wt2', 'tokenizer.json');
    const prepared = run('npx', ['tsx', 'cli/prepare-corpus.ts', tokenizer, join(data, 'wikitext-2'), preparedCorpus]);
    if (prepared.status !== 0) console.log('The WikiText-2 token ids could not be prepared; the default datastore test will fail.');
  }
  // The datastore test reads the pipeline's own ids when they exist, these otherwise.
  process.env.RETROLAB_PREPARED_CORPUS ??= hasPipelineCorpus ? pipelineCorpus : preparedCorpus;
}

function e2e(): Outcome {
  if (!knnDefaultListed()) {
    // A fixture, so the specs of the built-in kNN-LM datastore run here too (CI has no time for the
    // whole of WikiText-2 train): its first 40,000 tokens. A later `npm run setup:knn` sees a partial
    // build and replaces it.
    const knn = run('npm', ['run', 'setup:knn', '--', '--max-tokens', '40000']);
    if (knn.status !== 0) console.log('The kNN-LM fixture could not be built; the specs that need it will fail.');
  }
  const build = run('npx', ['vite', 'build']);
  if (build.status !== 0) return { step: 'e2e', passed: 0, failed: 1, skipped: 0, note: 'vite build failed' };
  const report = join(results, 'e2e.json');
  rmSync(report, { force: true });
  const { status } = run('npx', ['playwright', 'test']);
  const json = readJson(report) as { stats?: { expected: number; unexpected: number; flaky: number; skipped: number } } | null;
  if (!json?.stats) return { step: 'e2e', passed: 0, failed: 1, skipped: 0, note: `playwright exited ${status} without a report` };
  const { expected, unexpected, flaky, skipped } = json.stats;
  return { step: 'e2e', passed: expected + flaky, failed: unexpected + (status !== 0 && unexpected === 0 ? 1 : 0), skipped };
}

mkdirSync(results, { recursive: true });
const steps: [string, () => Outcome][] = [
  // The app's tsconfig, then core and protocol without the DOM's types (tsconfig.core.json).
  ['typecheck', () => check('typecheck', 'npm', ['run', 'typecheck'])],
  ['lint', () => check('lint', 'npx', ['eslint', '.'])],
  // No import cycle in the TypeScript (dependency-cruiser); the Python's is models/tests/test_imports.py.
  ['cycles', () => check('cycles', 'npm', ['run', 'check:cycles'])],
  ['unit', () => (prepareFixtures(), unit())],
  ['python', python],
  ['e2e', e2e],
];

const outcomes: Outcome[] = [];
for (const [name, step] of steps) {
  if (skip.has(name)) {
    outcomes.push({ step: name, passed: 0, failed: 0, skipped: 0, note: 'skipped (--skip)' });
    continue;
  }
  console.log(`\n=== ${name} ===`);
  outcomes.push(step());
}

console.log('\n=== summary ===');
for (const o of outcomes) {
  const skipped = o.skipped ? `, ${o.skipped} skipped` : '';
  console.log(`${o.step.padEnd(10)} ${o.passed} passed, ${o.failed} failed${skipped}${o.note ? ` (${o.note})` : ''}`);
}
const passed = outcomes.reduce((n, o) => n + o.passed, 0);
const failed = outcomes.reduce((n, o) => n + o.failed, 0);
const skippedTests = outcomes.reduce((n, o) => n + o.skipped, 0);
// Skips are counted on the closing line so a spec that never runs in CI cannot hide.
console.log(`${passed} passed, ${failed} failed, ${skippedTests} skipped`);
process.exit(failed > 0 ? 1 : 0);
