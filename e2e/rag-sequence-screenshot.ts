/**
 * Takes docs/rag-sequence-lens.png and docs/rag-sequence-thorough.png for docs/rag-sequence.md: a
 * sentence of a WikiText-2 train article scored by RAG-Sequence in the lens (its passages come from
 * the built-in WikiText-2 train datastore), and thorough decoding of the same prompt.
 * Run: `npx tsx e2e/rag-sequence-screenshot.ts` (after `npx vite build`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchApp, startPreview } from './browser';
import { AppPage } from './pages/AppPage';

const PORT = Number(process.env.RETROLAB_E2E_PORT ?? 4198);
const TEXT =
  'Simon Bradstreet ( baptized March 18 , 1603 / 4 – March 27 , 1697 ) was a colonial magistrate , businessman , diplomat , and the last governor of the Massachusetts Bay Colony .';

const preview = await startPreview(PORT);
const profile = mkdtempSync(join(tmpdir(), 'retrolab-shot-'));
try {
  const context = await launchApp({ profileDir: profile });
  const page = context.pages()[0] ?? (await context.newPage());
  await page.setViewportSize({ width: 1280, height: 900 });
  const app = new AppPage(page);
  await page.goto(`http://127.0.0.1:${PORT}/?backend=wasm`);
  await app.waitUntilReady();

  await app.prompt.fill(TEXT);
  const thorough = page.getByTestId('ragseq-thorough');
  await thorough.locator('summary').click();
  await thorough.getByTestId('ragseq-decode').click();
  await thorough.getByTestId('ragseq-result').waitFor({ timeout: 300_000 });
  await thorough.screenshot({ path: 'docs/rag-sequence-thorough.png' });

  await app.openLens();
  await page.getByTestId('lens-source-text').check();
  await page.getByTestId('lens-text').fill(TEXT);
  await page.getByTestId('lens-model-retro').setChecked(false);
  await page.getByTestId('lens-model-ragseq').check();
  await app.lens.getByLabel('RAG-Sequence span', { exact: true }).fill('16');
  await page.getByTestId('lens-run').click();
  await app.waitForLens(300_000);
  const view = page.getByTestId('ragseq-posterior');
  await view.getByLabel('Sequence', { exact: true }).fill('2');
  await page.mouse.move(0, 0);
  await view.screenshot({ path: 'docs/rag-sequence-lens.png' });
  await context.close();
  console.log('wrote docs/rag-sequence-lens.png, docs/rag-sequence-thorough.png');
} finally {
  preview.stop();
  rmSync(profile, { recursive: true, force: true });
}
