/**
 * Page load to first generated token, in Debian's Chromium, one JSON object per line on stdout
 * (progress on stderr):
 *
 *   nice -n 19 npm run bench:browser [-- --backends wasm,webgpu --models gpt,retro --runs 1
 *        --tokens-wasm 8 --tokens-webgpu 3 --no-warm --rebuild --dist <dir>]
 *
 * For each backend and model: a fresh browser profile (empty IndexedDB and HTTP cache: a first
 * visit), navigation to the production build, the app's start-up (models downloaded and loaded in
 * the inference worker, the built-in datastores copied into IndexedDB and opened in the retrieval
 * worker), then, the moment the app is ready, generation of that one model with the app's default
 * prompt and settings; then a reload in the same profile (a return visit: datastores already in
 * IndexedDB) and the same again. Models run one after the other when both are asked for, so each
 * model is generated alone: RETRO's first token would otherwise wait for GPT's whole run.
 *
 * Times come from inside the page (performance.now(), whose origin is the navigation start): a
 * recorder installed before the app's scripts watches `window.__retrolab` (src/client/testHook.ts)
 * for state changes and the output column's `data-generated` attribute for the first token in
 * the DOM. Generation is started through the same client the Generate button calls.
 *
 * The WebGPU run uses SwiftShader (a CPU implementation of WebGPU) when no GPU is present: its
 * times say the path works, not how fast a GPU is.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { GenerateRequest, ModelKey } from '../src/protocol/api';
import type { AppState } from '../src/client/client';
import { DEFAULT_SETTINGS } from '../src/features/compare/settings';
import { DEFAULT_REPLUG_SETTINGS } from '../src/core/replug/types';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CHROMIUM = process.env.RETROLAB_CHROMIUM ?? '/usr/bin/chromium';
const BASE_ARGS = ['--headless=new', '--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
// The app's first example prompt (src/features/compare/CompareView.tsx), what a visitor sees filled in.
const PROMPT =
  'Simon Bradstreet ( baptized March 18 , 1603 / 4 – March 27 , 1697 ) was a colonial magistrate , businessman , diplomat , and the last governor of the Massachusetts Bay Colony .';

const { values: args } = parseArgs({
  options: {
    backends: { type: 'string', default: 'wasm,webgpu' },
    models: { type: 'string', default: 'gpt,retro' },
    runs: { type: 'string', default: '1' },
    'tokens-wasm': { type: 'string', default: '8' },
    'tokens-webgpu': { type: 'string', default: '3' },
    'no-warm': { type: 'boolean', default: false },
    /** a built app to serve; default dist/ when it is newer than the sources, else a fresh build */
    dist: { type: 'string' },
    rebuild: { type: 'boolean', default: false },
    'ready-timeout-s': { type: 'string', default: '300' },
    'token-timeout-s': { type: 'string', default: '240' },
  },
});

type Json = Record<string, unknown>;
const emit = (line: Json) => process.stdout.write(JSON.stringify(line) + '\n');
const log = (message: string) => process.stderr.write(`[bench-first-token] ${message}\n`);
const errorOf = (e: unknown) => (e instanceof Error ? `${e.name}: ${e.message.split('\n')[0]}` : String(e));

// ---------------------------------------------------------------------------------------------
// The app to serve

/** Newest modification time under `path` (a file or a folder), in ms. */
function newest(path: string): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let t = 0;
  for (const name of readdirSync(path)) t = Math.max(t, newest(join(path, name)));
  return t;
}

/** dist/ when it was built after every input of the build changed; otherwise a private build. */
function appDir(): { dir: string; built: boolean; reason: string } {
  if (args.dist) return { dir: resolve(args.dist), built: false, reason: 'given with --dist' };
  const dist = join(REPO_ROOT, 'dist');
  const inputs = ['src', 'workers', 'public', 'index.html', 'vite.config.ts', 'package.json'].map((p) => join(REPO_ROOT, p));
  const sources = Math.max(...inputs.map(newest));
  const built = existsSync(join(dist, 'index.html')) ? statSync(join(dist, 'index.html')).mtimeMs : 0;
  if (!args.rebuild && built >= sources) return { dir: dist, built: false, reason: 'dist/ is newer than its sources' };
  // Not into dist/: other people's e2e runs may be serving it right now.
  const out = join(REPO_ROOT, '.cache', 'bench-first-token', 'dist');
  log(`building the app into ${out} (${args.rebuild ? '--rebuild' : 'dist/ is missing or older than its sources'})`);
  const r = spawnSync('npx', ['vite', 'build', '--outDir', out, '--emptyOutDir'], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`vite build failed (exit ${r.status})`);
  return { dir: out, built: true, reason: args.rebuild ? '--rebuild' : 'dist/ was missing or stale' };
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}

async function serve(dir: string): Promise<{ url: string; server: ChildProcess }> {
  const port = await freePort();
  const server = spawn('npx', ['vite', 'preview', '--host', '127.0.0.1', '--port', String(port), '--strictPort', '--outDir', dir], {
    cwd: REPO_ROOT,
    stdio: 'ignore',
    detached: true,
  });
  const url = `http://127.0.0.1:${port}/`;
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(url)).ok) return { url, server };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  stopServer(server);
  throw new Error(`vite preview did not answer on ${url}`);
}

function stopServer(server: ChildProcess): void {
  // npx starts vite as a child: end the whole group this script started.
  if (server.pid) {
    try {
      process.kill(-server.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}

// ---------------------------------------------------------------------------------------------
// In the page

interface BenchWindow {
  __benchMarks: Record<string, number>;
  __benchInfo: Json;
}

/**
 * Runs before the app's scripts. Marks are ms since navigation start; each is set once, when the
 * state first shows it. The hook is caught as the app assigns it, so no state change is missed.
 */
function recorder(): void {
  const w = window as unknown as BenchWindow & { __retrolab?: { client: { subscribe(l: () => void): unknown }; state(): AppState } };
  const marks: Record<string, number> = {};
  const info: Json = {};
  w.__benchMarks = marks;
  w.__benchInfo = info;
  const mark = (name: string) => {
    if (!(name in marks)) marks[name] = performance.now();
  };
  let hook: typeof w.__retrolab;
  Object.defineProperty(window, '__retrolab', {
    configurable: true,
    get: () => hook,
    set: (value: NonNullable<typeof w.__retrolab>) => {
      hook = value;
      mark('hook');
      const check = () => {
        const s = value.state();
        if (s.backend) {
          mark('modelsLoaded');
          info.backend = s.backend;
        }
        if (s.retrieval) mark('datastoresOpened');
        if (s.retrieval?.activeId) info.activeDatastore = s.retrieval.activeId;
        if (s.phase === 'error' && !('fatal' in info)) info.fatal = s.fatal;
        if (s.phase === 'ready' && s.retrieval !== null && s.busy === null) mark('ready');
        for (const key of ['gpt', 'retro'] as const) {
          const run = s.runs[key];
          if (run?.status === 'running') mark(`start-${key}`);
          if (run && run.generated.length > 0) mark(`firstToken-${key}`);
        }
      };
      value.client.subscribe(check);
      check();
    },
  });
  // The first token as the reader sees it: the column's count attribute, then the next frame.
  new MutationObserver((records) => {
    for (const r of records) {
      const el = r.target as HTMLElement;
      const key = el.dataset.testid?.replace(/^output-/, '');
      if (key && Number(el.dataset.generated) > 0 && !(`domFirstToken-${key}` in marks)) {
        mark(`domFirstToken-${key}`);
        requestAnimationFrame(() => mark(`frameFirstToken-${key}`));
      }
    }
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-generated'] });
}

async function marks(page: Page): Promise<Record<string, number>> {
  return page.evaluate(() => ({ ...(window as unknown as BenchWindow).__benchMarks }));
}

/** Waits for a mark (or the app's fatal error), polling in the page. */
async function waitForMark(page: Page, name: string, timeoutMs: number): Promise<void> {
  await page.waitForFunction(
    (n) => {
      const w = window as unknown as BenchWindow;
      return n in (w.__benchMarks ?? {}) || 'fatal' in (w.__benchInfo ?? {});
    },
    name,
    { timeout: timeoutMs, polling: 50 },
  );
  const info = await page.evaluate(() => (window as unknown as BenchWindow).__benchInfo);
  if ('fatal' in info) throw new Error(`the app failed to start: ${String(info.fatal)}`);
}

// ---------------------------------------------------------------------------------------------
// One measurement

interface Measure {
  backend: 'wasm' | 'webgpu';
  model: ModelKey;
  load: 'cold' | 'warm';
  maxTokens: number;
}

async function measure(page: Page, url: string, m: Measure, errors: string[]): Promise<Json> {
  const readyTimeout = Number(args['ready-timeout-s']) * 1000;
  const tokenTimeout = Number(args['token-timeout-s']) * 1000;
  const errorsBefore = errors.length;
  const t0 = Date.now();
  if (m.load === 'cold') await page.goto(`${url}?backend=${m.backend}`, { waitUntil: 'commit' });
  else await page.reload({ waitUntil: 'commit' });
  await waitForMark(page, 'ready', readyTimeout);
  const request: GenerateRequest = {
    prompt: PROMPT,
    models: [m.model],
    decoding: { ...DEFAULT_SETTINGS.decoding, maxTokens: m.maxTokens },
    // retrievalStep null in the settings means the model's chunk: the shipped RETRO's is 8.
    retro: { ...(({ exclusions: _, ...rest }) => rest)(DEFAULT_SETTINGS.retro), retrievalStep: 8, excludeDocIds: [] },
    knn: DEFAULT_SETTINGS.knn,
    icralm: { stride: DEFAULT_SETTINGS.icralm.stride, queryLength: DEFAULT_SETTINGS.icralm.queryLength },
    replug: { ...DEFAULT_REPLUG_SETTINGS },
  };
  const requestedAt = await page.evaluate((r) => {
    const w = window as unknown as BenchWindow & { __retrolab: { client: { generate(r: GenerateRequest): Promise<void> } } };
    w.__benchMarks.generate = performance.now();
    void w.__retrolab.client.generate(r);
    return w.__benchMarks.generate;
  }, request);
  await waitForMark(page, `frameFirstToken-${m.model}`, tokenTimeout);
  const wallToFirstTokenMs = Date.now() - t0;
  // Let the short run finish, for its tokens/s; the first token is already measured.
  await page.waitForFunction(
    (key) => {
      const s = (window as unknown as { __retrolab: { state(): AppState } }).__retrolab.state();
      return !s.generating && s.runs[key as ModelKey]?.status !== 'running';
    },
    m.model,
    { timeout: tokenTimeout, polling: 100 },
  );
  const mk = await marks(page);
  const state = await page.evaluate(() => (window as unknown as { __retrolab: { state(): AppState } }).__retrolab.state());
  const nav = await page.evaluate(() => {
    const e = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming | undefined;
    return e ? { responseEnd: e.responseEnd, domContentLoaded: e.domContentLoadedEventEnd, load: e.loadEventEnd } : null;
  });
  const run = state.runs[m.model];
  const ms = (x: number | undefined) => (x === undefined ? null : Math.round(x));
  const firstToken = mk[`firstToken-${m.model}`];
  const frame = mk[`frameFirstToken-${m.model}`];
  return {
    bench: 'first-token',
    status: 'ok',
    backend: m.backend,
    backendUsed: state.backend?.backend ?? null,
    backendReason: state.backend?.reason ?? null,
    model: m.model,
    load: m.load,
    datastore: state.retrieval?.activeId ?? null,
    navToDomContentLoadedMs: ms(nav?.domContentLoaded),
    navToModelsLoadedMs: ms(mk.modelsLoaded),
    navToDatastoresOpenedMs: ms(mk.datastoresOpened),
    navToReadyMs: ms(mk.ready),
    generateToFirstTokenMs: firstToken !== undefined ? Math.round(firstToken - requestedAt) : null,
    navToFirstTokenMs: ms(firstToken),
    navToFirstTokenPaintedMs: ms(frame),
    wallToFirstTokenMs,
    tokens: run?.generated.length ?? 0,
    maxTokens: m.maxTokens,
    tokensPerSecond: run?.tokensPerSecond !== null && run?.tokensPerSecond !== undefined ? Math.round(run.tokensPerSecond * 10) / 10 : null,
    runStatus: run?.status ?? null,
    pageErrors: errors.slice(errorsBefore, errorsBefore + 3),
  };
}

function chromiumVersion(): string | null {
  const r = spawnSync(CHROMIUM, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

async function main(): Promise<void> {
  const backends = args.backends!.split(',').filter(Boolean) as Measure['backend'][];
  const models = args.models!.split(',').filter(Boolean) as ModelKey[];
  for (const b of backends) if (b !== 'wasm' && b !== 'webgpu') throw new Error(`--backends: unknown backend ${b}`);
  for (const m of models) if (m !== 'gpt' && m !== 'retro') throw new Error(`--models: unknown model ${m}`);
  const app = appDir();
  emit({
    bench: 'machine',
    nproc: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    ramGB: Math.round(totalmem() / 107374182.4) / 10,
    node: process.version,
    chromium: chromiumVersion(),
    loadavg1m: Math.round(loadavg()[0]! * 100) / 100,
    app: { dir: app.dir, built: app.built, reason: app.reason },
    prompt: PROMPT,
    command: `npm run bench:browser -- ${process.argv.slice(2).join(' ')}`.trim(),
    date: new Date().toISOString(),
  });
  const { url, server } = await serve(app.dir);
  log(`serving ${app.dir} at ${url}`);
  try {
    for (let run = 0; run < Number(args.runs); run++) {
      for (const backend of backends) {
        for (const model of models) {
          const maxTokens = Number(backend === 'webgpu' ? args['tokens-webgpu'] : args['tokens-wasm']);
          const profile = mkdtempSync(join(tmpdir(), 'retrolab-bench-'));
          const extra = backend === 'webgpu' ? ['--enable-unsafe-webgpu'] : [];
          let context: BrowserContext | null = null;
          try {
            context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: [...BASE_ARGS, ...extra], viewport: { width: 1440, height: 1000 } });
            // tsx compiles named inner functions to __name(fn, 'name') calls (esbuild keepNames): the page needs the helper.
            await context.addInitScript({ content: `(() => { const __name = (f) => f; (${recorder.toString()})(); })();` });
            const page = context.pages()[0] ?? (await context.newPage());
            const errors: string[] = [];
            page.on('pageerror', (e) => errors.push(e.message));
            page.on('console', (msg) => {
              if (msg.type() === 'error') errors.push(msg.text());
            });
            for (const load of args['no-warm'] ? (['cold'] as const) : (['cold', 'warm'] as const)) {
              log(`${backend} ${model} ${load} (run ${run + 1})`);
              try {
                emit({ ...(await measure(page, url, { backend, model, load, maxTokens }, errors)), run: run + 1 });
              } catch (e) {
                const mk = await marks(page).catch(() => ({}));
                emit({ bench: 'first-token', backend, model, load, run: run + 1, status: 'failed', error: errorOf(e), marks: mk, pageErrors: errors.slice(0, 3) });
                break;
              }
            }
          } catch (e) {
            emit({ bench: 'first-token', backend, model, run: run + 1, status: 'failed', error: errorOf(e) });
          } finally {
            await context?.close().catch(() => undefined);
            rmSync(profile, { recursive: true, force: true });
          }
        }
      }
    }
  } finally {
    stopServer(server);
  }
}

main().catch((e: unknown) => {
  emit({ bench: 'error', status: 'crashed', error: errorOf(e) });
  process.exitCode = 1;
});
