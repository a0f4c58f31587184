/**
 * kNN-LM key building in the browser: tokens keyed per second when a user builds a datastore with
 * "Also build kNN-LM keys", in Debian's Chromium on a production build (the app's WASM backend, the
 * inference worker's key builder). One JSON object per line on stdout, progress on stderr:
 *
 *   npm run bench:browser-keys [-- --dist dist --chars 60000 --runs 2 --port 4390]
 *
 * Each run: a fresh browser profile, the app's start-up, then `client.build(name, [file], false,
 * true)` with the first `chars` characters of WikiText-2 train as the file, through the same client
 * the drop zone calls. The rate is the builder's own (the key phase's keyed tokens over its time),
 * read from the last progress report of the key phase. To compare two builds (before/after), pass
 * `--dist` of each and alternate the runs.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import type { RetroLabTestHook } from '../src/client/testHook';

const { values: args } = parseArgs({
  options: {
    dist: { type: 'string', default: 'dist' },
    chars: { type: 'string', default: '60000' },
    runs: { type: 'string', default: '1' },
    port: { type: 'string', default: '4390' },
    data: { type: 'string', default: process.env.RETROLAB_DATA ?? resolve('..', 'shared', 'data') },
  },
});
const port = Number(args.port);
const text = readFileSync(join(args.data!, 'wikitext-2', 'wiki.train.tokens'), 'utf8').slice(0, Number(args.chars));

// Its own process group, so the whole server (npx and vite) stops with it.
const server = spawn('npx', ['vite', 'preview', '--host', '127.0.0.1', '--port', String(port), '--strictPort', '--outDir', args.dist!], { stdio: ['ignore', 'ignore', 'inherit'], detached: true });
let serverExit: string | null = null;
server.on('exit', (code) => (serverExit = `vite preview exited (${code}): is port ${port} taken?`));
try {
  for (let i = 0; i < 60; i++) {
    if (serverExit) throw new Error(serverExit);
    if (await fetch(`http://127.0.0.1:${port}/`).then((r) => r.ok).catch(() => false)) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  if (serverExit) throw new Error(serverExit);
  for (let run = 0; run < Number(args.runs); run++) {
    const profile = mkdtempSync(join(tmpdir(), 'retrolab-keys-'));
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: process.env.RETROLAB_CHROMIUM ?? '/usr/bin/chromium',
      args: ['--headless=new', '--no-sandbox', '--no-first-run'],
      viewport: { width: 1280, height: 720 },
    });
    try {
      const page = await context.newPage();
      await page.goto(`http://127.0.0.1:${port}/?backend=wasm`);
      await page.waitForFunction(() => window.__retrolab?.state().phase === 'ready' && window.__retrolab.state().models.length > 0, undefined, { timeout: 300_000 });
      process.stderr.write(`run ${run + 1}: app ready, building keys over ${text.length} characters\n`);
      const result = await page.evaluate(async (body) => {
        const hook = window.__retrolab as RetroLabTestHook;
        let rate = 0;
        let keyed = 0;
        const unsubscribe = hook.client.subscribe(() => {
          const p = hook.state().build.progress;
          if (p?.label === 'Building kNN-LM keys' && p.rate) {
            rate = p.rate;
            keyed = p.done;
          }
        });
        const t0 = performance.now();
        const built = await hook.client.build('bench keys', [new File([body], 'bench.txt', { type: 'text/plain' })], false, true);
        unsubscribe();
        return { rate, keyed, entries: built?.knnlm?.entries ?? 0, seconds: (performance.now() - t0) / 1000, backend: hook.state().backend?.backend ?? null };
      }, text);
      console.log(JSON.stringify({ dist: args.dist, run: run + 1, chars: text.length, tokens_per_second: Math.round(result.rate), keyed_at_last_report: result.keyed, entries: result.entries, build_seconds: Number(result.seconds.toFixed(1)), backend: result.backend }));
    } finally {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    }
  }
} finally {
  process.kill(-server.pid!, 'SIGTERM');
}
