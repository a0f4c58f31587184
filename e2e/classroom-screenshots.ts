/**
 * Takes the classroom screenshots in docs/ at a projector's 1280×720: the main view after Generate,
 * presenter mode with a RETRO chunk's neighbours open, a lesson, the Chinese UI, and the panel of a
 * token RETRO copied from its neighbour. Run after `npm run setup` and
 * `vite build`: `npx tsx e2e/classroom-screenshots.ts`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { launchApp, startPreview } from './browser';
import { AppPage } from './pages/AppPage';

const PORT = 4198;
const only = process.argv[2];

// (Outside the test runner `expect` waits 5 s: a link's lesson keeps Generate disabled while its
// datastore is prepared, so the shots wait for the lesson bar instead of waitUntilReady.)

/** The first visit's "works offline" toast would cover a corner of the shot. */
async function dismissToast(page: Page): Promise<void> {
  const toast = page.getByTestId('offline-ready');
  if (await toast.isVisible()) await toast.getByRole('button').click();
}

const preview = await startPreview(PORT);
const profile = mkdtempSync(join(tmpdir(), 'retrolab-classroom-'));
try {
  const context = await launchApp({ profileDir: profile });
  const page = context.pages()[0] ?? (await context.newPage());
  await page.setViewportSize({ width: 1280, height: 720 });
  const app = new AppPage(page);
  const base = `http://127.0.0.1:${PORT}/?backend=wasm`;

  if (!only || only === 'main') {
    await page.goto(base);
    await app.waitUntilReady();
    await app.generate('The ship was launched in', { maxTokens: 40 });
    await dismissToast(page);
    await page.mouse.move(0, 0);
    await page.screenshot({ path: 'docs/classroom-main.png' });
  }
  if (!only || only === 'lesson') {
    await page.goto(`http://127.0.0.1:${PORT}/?backend=wasm&lesson=how&step=1`);
    await page.waitForSelector('[data-testid="lesson"]', { timeout: 150_000 });
    await app.waitForLesson();
    await app.generateNow();
    await dismissToast(page);
    await page.mouse.move(0, 0);
    await page.screenshot({ path: 'docs/classroom-lesson.png' });
  }
  if (!only || only === 'presenter') {
    await page.goto(`http://127.0.0.1:${PORT}/?backend=wasm&lesson=what&step=1`);
    await page.waitForSelector('[data-testid="lesson"]', { timeout: 150_000 });
    await app.waitForLesson();
    await app.generateNow();
    await app.page.keyboard.press('p');
    await app.chunkButtons().nth(2).click();
    await dismissToast(page);
    await page.mouse.move(0, 0);
    await page.screenshot({ path: 'docs/classroom-presenter.png' });
  }
  if (!only || only === 'token') {
    // The SQuAD Try example, greedy: RETRO writes the price it read; its token panel shows where.
    await page.goto(base);
    await app.waitUntilReady();
    await page.getByRole('button', { name: 'Oil embargo (SQuAD)' }).click();
    for (let i = 0; i < 300 && !/SQuAD/.test((await app.activeDatastoreName()) ?? ''); i++) await page.waitForTimeout(200);
    await app.openSettings();
    await page.getByLabel('Strategy').selectOption('greedy');
    await app.closeSettings();
    await app.generateNow();
    const tokens = page.getByTestId('output-retro').getByTestId('generated-token');
    const texts = await tokens.allTextContents();
    const at = texts.findIndex((t) => /12/.test(t));
    await tokens.nth(Math.max(0, at)).click();
    await dismissToast(page);
    await page.mouse.move(0, 0);
    await page.screenshot({ path: 'docs/classroom-token.png' });
  }
  if (!only || only === 'replug') {
    // The REPLUG column beside GPT and RETRO, one token's split among its passages open.
    await page.goto(base);
    await app.waitUntilReady();
    await app.openSettings();
    await page.getByRole('switch', { name: 'REPLUG column' }).check();
    await page.getByLabel('Strategy').selectOption('greedy');
    await app.closeSettings();
    await app.generate('The ship was launched in', { maxTokens: 24 });
    await page.getByTestId('output-replug').getByTestId('generated-token').nth(2).click();
    await dismissToast(page);
    await page.mouse.move(0, 0);
    await page.screenshot({ path: 'docs/replug.png' });
  }
  await context.close();
  if (!only || only === 'zh') {
    const zh = await launchApp({ profileDir: `${profile}-zh`, locale: 'zh-CN' });
    const zhPage = zh.pages()[0] ?? (await zh.newPage());
    await zhPage.setViewportSize({ width: 1280, height: 720 });
    const zhApp = new AppPage(zhPage);
    await zhPage.goto(`http://127.0.0.1:${PORT}/?backend=wasm&lesson=what&step=1`);
    await zhPage.waitForSelector('[data-testid="lesson"]', { timeout: 150_000 });
    await zhApp.waitForLesson();
    await zhApp.generateNow();
    await zhApp.chunkButtons().nth(2).click();
    await dismissToast(zhPage);
    await zhPage.mouse.move(0, 0);
    await zhPage.screenshot({ path: 'docs/classroom-zh.png' });
    await zh.close();
    rmSync(`${profile}-zh`, { recursive: true, force: true });
  }
  console.log('wrote the classroom screenshots in docs/');
} finally {
  preview.stop();
  rmSync(profile, { recursive: true, force: true });
}
