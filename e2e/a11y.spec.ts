import AxeBuilder from '@axe-core/playwright';
import { expect, test } from './fixtures';
import type { AppPage } from './pages/AppPage';

/** axe-core over the whole page; serious and critical violations fail, listed with their elements. */
async function expectNoSeriousViolations(app: AppPage, view: string): Promise<void> {
  const result = await new AxeBuilder({ page: app.page }).analyze();
  const serious = result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help}\n  ${v.nodes.map((n) => n.target.join(' ')).slice(0, 5).join('\n  ')}`);
  expect(serious, `axe on ${view}`).toEqual([]);
}

test('axe: no serious or critical violation on the main view, settings, a lesson with a panel open, presenter mode, the lens and the Chinese UI', async ({ app, page }) => {
  test.setTimeout(420_000); // seven views, a lesson's datastore build and a four-column run
  await page.setViewportSize({ width: 1280, height: 720 });
  await app.goto({ backend: 'wasm', settings: false });
  await app.waitUntilReady();
  await expectNoSeriousViolations(app, 'the main view');

  await app.openSettings();
  await expectNoSeriousViolations(app, 'the settings drawer');
  await app.closeSettings();

  await app.openLesson('how');
  await app.generateNow();
  await expectNoSeriousViolations(app, 'a lesson after Generate');
  await app.chunkButtons().first().click();
  await expect(app.neighbourPanel).toBeVisible();
  await expectNoSeriousViolations(app, 'the neighbour panel');
  await app.knnTokens().first().click();
  await expect(app.tokenDistribution.getByTestId('dist-mix')).toBeVisible();
  await expectNoSeriousViolations(app, 'the token distribution');
  // Every column's tokens open the token panel (RETRO's with the neighbours its prediction read).
  await app.output('retro').getByTestId('generated-token').nth(2).click();
  await expect(page.getByTestId('token-panel')).toBeVisible();
  await expectNoSeriousViolations(app, 'the token panel');

  await page.locator('body').press('p');
  await expect(page.locator('.app')).toHaveClass(/presenter/);
  await expectNoSeriousViolations(app, 'presenter mode');
  await page.getByTestId('presenter-toggle').click();

  await page.getByTestId('language').selectOption('zh');
  await expect(app.generateButton).toHaveText('生成');
  await expectNoSeriousViolations(app, 'the Chinese UI');
  await page.getByTestId('language').selectOption('en');

  await app.openLens();
  await expectNoSeriousViolations(app, 'the perplexity lens');
});
