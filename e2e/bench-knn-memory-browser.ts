/**
 * Memory of the built-in kNN-LM datastore in a Chromium tab (Debian's Chromium, a production
 * build): the renderer's resident memory (VmRSS from /proc, summed over the browser's renderer
 * processes: the page and its dedicated workers live in one) before and after turning kNN-LM on,
 * and its peak while the datastore opens (sampled every 100 ms, and the renderer's VmHWM). One JSON
 * object per scenario on stdout, a table on stderr:
 *
 *   npm run bench:knn-memory-browser [-- --dist dist --port 4401 --settle 10]
 *
 * Scenarios, each in a fresh browser: `first` turns kNN-LM on in a new profile (the datastore is
 * fetched and copied into IndexedDB, then opened); `stored` reopens that profile (kNN-LM stays on,
 * the datastore is read from IndexedDB): the every-day case. "after" is read `settle` seconds after
 * the model is ready. To compare two builds, pass `--dist` of each.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium, type BrowserContext } from 'playwright-core';
import type { RetroLabTestHook } from '../src/client/testHook';

const { values: args } = parseArgs({
  options: {
    dist: { type: 'string', default: 'dist' },
    port: { type: 'string', default: '4401' },
    settle: { type: 'string', default: '10' },
  },
});
const port = Number(args.port);
const MB = 1e6;

interface Proc {
  pid: number;
  ppid: number;
  cmdline: string;
}

function processes(): Proc[] {
  const out: Proc[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      out.push({ pid: Number(name), ppid, cmdline: readFileSync(`/proc/${name}/cmdline`, 'utf8').replaceAll('\0', ' ') });
    } catch {
      // gone
    }
  }
  return out;
}

/** The processes of the browser started with this profile: renderers only, or all of them. */
function browserProcesses(profile: string, which: 'renderers' | 'all'): number[] {
  const all = processes();
  const root = all.find((p) => p.cmdline.includes(`--user-data-dir=${profile}`) && !p.cmdline.includes('--type='));
  if (!root) return [];
  const tree = new Set([root.pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of all) {
      if (tree.has(p.ppid) && !tree.has(p.pid)) {
        tree.add(p.pid);
        grew = true;
      }
    }
  }
  return all.filter((p) => tree.has(p.pid) && (which === 'all' || p.cmdline.includes('--type=renderer'))).map((p) => p.pid);
}

function status(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

const rss = (profile: string, which: 'renderers' | 'all' = 'renderers') => browserProcesses(profile, which).reduce((s, pid) => s + status(pid, 'VmRSS'), 0);
const hwm = (profile: string) => browserProcesses(profile, 'renderers').reduce((s, pid) => s + status(pid, 'VmHWM'), 0);

async function launch(profile: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profile, {
    executablePath: process.env.RETROLAB_CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless=new', '--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update'],
    viewport: { width: 1280, height: 900 },
  });
}

interface Row {
  scenario: string;
  dist: string;
  fileBytes: number;
  before: number;
  peakSampled: number;
  peakHwm: number;
  after: number;
  /** The whole browser (its own process, GPU, network and storage services, renderers): where a Blob goes when it leaves the tab. */
  allBefore: number;
  allPeak: number;
  allAfter: number;
  allAddedPeakRatio: number;
  addedAfterRatio: number;
  addedPeakRatio: number;
  openMs: number | null;
  index: string | null;
}

async function scenario(name: 'first' | 'stored', profile: string, fileBytes: number): Promise<Row> {
  const context = await launch(profile);
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto(`http://127.0.0.1:${port}/?backend=wasm`);
    await page.waitForFunction(() => {
      const s = window.__retrolab?.state();
      return !!s && s.phase === 'ready' && s.retrieval !== null && s.busy === null;
    }, undefined, { timeout: 300_000 });
    const knnOn = await page.evaluate(() => (window.__retrolab as RetroLabTestHook).state().knn.loading || (window.__retrolab as RetroLabTestHook).state().knn.model !== null);
    let peak = 0;
    let allPeak = 0;
    let before = 0;
    let allBefore = 0;
    if (!knnOn) {
      await new Promise((r) => setTimeout(r, 2000));
      before = rss(profile);
      allBefore = rss(profile, 'all');
    }
    const sampler = setInterval(() => {
      peak = Math.max(peak, rss(profile));
      allPeak = Math.max(allPeak, rss(profile, 'all'));
    }, 100);
    try {
      if (!knnOn) {
        await page.getByTestId('settings-toggle').click();
        await page.getByRole('switch', { name: 'kNN-LM column' }).check();
      }
      await page.waitForFunction(() => {
        const knn = (window.__retrolab as RetroLabTestHook).state().knn;
        return !knn.loading && (knn.model !== null || knn.error !== null);
      }, undefined, { timeout: 600_000, polling: 200 });
      await new Promise((r) => setTimeout(r, Number(args.settle) * 1000));
    } finally {
      clearInterval(sampler);
    }
    const knn = await page.evaluate(() => (window.__retrolab as RetroLabTestHook).state().knn);
    if (knn.error) throw new Error(`kNN-LM failed: ${JSON.stringify(knn.error)}`);
    const after = rss(profile);
    const allAfter = rss(profile, 'all');
    const model = knn.model as { openMs?: number; index?: string } | null;
    const base = before || Number.NaN;
    return {
      scenario: name,
      dist: args.dist!,
      fileBytes,
      before,
      peakSampled: peak,
      peakHwm: hwm(profile),
      after,
      allBefore,
      allPeak,
      allAfter,
      allAddedPeakRatio: (allPeak - (allBefore || Number.NaN)) / fileBytes,
      addedAfterRatio: (after - base) / fileBytes,
      addedPeakRatio: (peak - base) / fileBytes,
      openMs: model?.openMs ?? null,
      index: model?.index ?? null,
    };
  } finally {
    await context.close();
  }
}

const index = JSON.parse(readFileSync(join(resolve(args.dist!), 'datastores', 'index.json'), 'utf8')) as { datastores: { file: string; knnlm?: unknown }[] };
const entry = index.datastores.find((d) => d.knnlm);
if (!entry) throw new Error('no built-in kNN-LM datastore in this build (npm run setup:knn, then build)');
const fileBytes = statSync(join(resolve(args.dist!), 'datastores', entry.file)).size;

// Its own process group, so the whole server (npx and vite) stops with it.
const server = spawn('npx', ['vite', 'preview', '--host', '127.0.0.1', '--port', String(port), '--strictPort', '--outDir', args.dist!], { stdio: ['ignore', 'ignore', 'inherit'], detached: true });
const profile = mkdtempSync(join(tmpdir(), 'retrolab-knn-memory-'));
try {
  for (let i = 0; i < 60; i++) {
    if (await fetch(`http://127.0.0.1:${port}/`).then((r) => r.ok).catch(() => false)) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const rows: Row[] = [];
  const first = await scenario('first', profile, fileBytes);
  rows.push(first);
  console.log(JSON.stringify(first));
  // The stored scenario has no "before" of its own (kNN-LM is on from the start): the first's is the app without it.
  const stored = await scenario('stored', profile, fileBytes);
  stored.before = first.before;
  stored.addedAfterRatio = (stored.after - stored.before) / fileBytes;
  stored.addedPeakRatio = (stored.peakSampled - stored.before) / fileBytes;
  stored.allBefore = first.allBefore;
  stored.allAddedPeakRatio = (stored.allPeak - stored.allBefore) / fileBytes;
  rows.push(stored);
  console.log(JSON.stringify(stored));
  const fmt = (b: number) => `${(b / MB).toFixed(0)} MB`;
  process.stderr.write(`${args.dist}: kNN-LM datastore ${fmt(fileBytes)}; renderer RSS (sum of renderer processes)\n`);
  process.stderr.write('scenario | before | peak (sampled) | VmHWM | after | (after - before) / file | (peak - before) / file | whole browser: before | peak | after | (peak - before) / file\n');
  for (const r of rows) {
    process.stderr.write(`${r.scenario} | ${fmt(r.before)} | ${fmt(r.peakSampled)} | ${fmt(r.peakHwm)} | ${fmt(r.after)} | ${r.addedAfterRatio.toFixed(2)} | ${r.addedPeakRatio.toFixed(2)} | ${fmt(r.allBefore)} | ${fmt(r.allPeak)} | ${fmt(r.allAfter)} | ${r.allAddedPeakRatio.toFixed(2)}\n`);
  }
} finally {
  process.kill(-server.pid!, 'SIGTERM');
  rmSync(profile, { recursive: true, force: true });
}
