import { expect, test } from './fixtures';
import type { AppPage } from './pages/AppPage';

/** Every column's first line is on screen and the page is not scrolled. */
async function expectColumnsOnFirstScreen(app: AppPage, keys: string[]): Promise<void> {
  expect(await app.page.evaluate(() => window.scrollY)).toBe(0);
  await expect(app.generateButton).toBeInViewport();
  for (const key of keys) {
    const firstLine = app.output(key as 'gpt').locator('.seg, .chunk').first();
    await expect(firstLine, `${key}'s first line`).toBeInViewport();
    await expect(app.page.getByTestId(`column-${key}`).getByRole('heading')).toBeInViewport();
  }
}

test.describe('the classroom layout', () => {
  test('output first: after Generate every column’s first line is on the first screen at 1280×720 and 1920×1080', async ({ app, page }) => {
    await page.setViewportSize({ width: 1280, height: 720 });
    await app.goto({ backend: 'wasm', settings: false });
    await app.waitUntilReady();
    // Settings are not on the first screen; they open on demand, and Esc gives focus back.
    await expect(page.getByTestId('settings-drawer')).toBeHidden();
    await app.settingsToggle.click();
    await expect(page.getByTestId('settings-drawer')).toBeFocused();
    await expect(page.getByRole('group', { name: 'Decoding (same for every model)' })).toBeVisible();
    await page.keyboard.press('Escape');
    await expect(page.getByTestId('settings-drawer')).toBeHidden();
    await expect(app.settingsToggle).toBeFocused();

    // The fullest screen: a lesson's notes above four columns.
    await app.openLesson('how');
    await app.generateNow();
    const all = ['gpt', 'retro', 'knnlm', 'icralm'];
    await expectColumnsOnFirstScreen(app, all);
    // The announcement for screen readers, once per finished column.
    await expect(page.getByTestId('announcer')).toContainText('GPT finished');
    await expect(page.getByTestId('announcer')).toContainText('In-Context RALM finished');

    await page.setViewportSize({ width: 1920, height: 1080 });
    await expectColumnsOnFirstScreen(app, all);
  });

  test('presenter mode: large type, only the output; panels open beside it, take focus, and Esc returns it', async ({ app, page }) => {
    await page.setViewportSize({ width: 1280, height: 720 });
    await app.goto({ backend: 'wasm', settings: false });
    await app.waitUntilReady();
    await app.openLesson('what');
    await app.generateNow();

    await page.locator('body').press('p');
    await expect(page.locator('.app')).toHaveClass(/presenter/);
    await expect(app.lesson).toHaveCount(0);
    await expect(app.settingsToggle).toHaveCount(0);
    await expect(app.backendStatus).toHaveCount(0);
    const style = await app.output('gpt').evaluate((el) => {
      const s = getComputedStyle(el);
      return { size: parseFloat(s.fontSize), colour: s.color, background: getComputedStyle(el.closest('.column')!).backgroundColor };
    });
    expect(style.size).toBeGreaterThanOrEqual(28);
    expect(style.colour).toBe('rgb(255, 255, 255)');
    expect(style.background).toBe('rgb(0, 0, 0)');
    await expectColumnsOnFirstScreen(app, ['gpt', 'retro', 'knnlm']);

    // A chunk's neighbours open beside the columns, on screen, with focus inside.
    const chunk = app.chunkButtons().nth(1);
    await chunk.focus();
    await page.keyboard.press('Enter');
    await expect(app.neighbourPanel).toBeInViewport();
    const panelBox = (await page.getByTestId('side-panel').boundingBox())!;
    const columnsBox = (await page.getByTestId('columns').boundingBox())!;
    expect(panelBox.x).toBeGreaterThanOrEqual(columnsBox.x + columnsBox.width);
    await expect(page.getByTestId('side-panel')).toBeFocused();
    await page.keyboard.press('Escape');
    await expect(app.neighbourPanel).toHaveCount(0);
    await expect(chunk).toBeFocused();

    // The same for a kNN-LM token's distribution.
    const token = app.knnTokens().nth(1);
    await token.focus();
    await page.keyboard.press('Enter');
    await expect(app.tokenDistribution).toBeInViewport();
    await page.keyboard.press('Escape');
    await expect(app.tokenDistribution).toHaveCount(0);
    await expect(token).toBeFocused();

    await page.getByTestId('presenter-toggle').click();
    await expect(page.locator('.app')).not.toHaveClass(/presenter/);
    await expect(app.lesson).toBeVisible();
  });
});
