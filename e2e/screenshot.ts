/**
 * Takes docs/screenshot.png for the README: the production build served by `vite preview`,
 * a WikiText-2 prompt, both columns written, and the neighbours of one RETRO chunk open.
 * Run: `npm run docs:screenshot` (after `npm run setup`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchApp, startPreview } from './browser';
import { AppPage } from './pages/AppPage';

const PORT = 4199;
const PROMPT =
  'Simon Bradstreet ( baptized March 18 , 1603 / 4 – March 27 , 1697 ) was a colonial magistrate , businessman , diplomat , and the last governor of the Massachusetts Bay Colony .';

const preview = await startPreview(PORT);
const profile = mkdtempSync(join(tmpdir(), 'retrolab-shot-'));
try {
  const context = await launchApp({ profileDir: profile });
  const page = context.pages()[0] ?? (await context.newPage());
  await page.setViewportSize({ width: 1440, height: 1000 });
  const app = new AppPage(page);
  await page.goto(`http://127.0.0.1:${PORT}/?backend=wasm`);
  await app.waitUntilReady();
  await app.generate(PROMPT, { maxTokens: 40 });
  const chunks = app.retrievedChunks();
  await chunks.nth(Math.min(1, (await chunks.count()) - 1)).click();
  await page.mouse.move(0, 0);
  await page.screenshot({ path: 'docs/screenshot.png', fullPage: true });
  await context.close();
  console.log('wrote docs/screenshot.png');
} finally {
  preview.stop();
  rmSync(profile, { recursive: true, force: true });
}
