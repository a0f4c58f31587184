import { launchApp } from './browser';
import { expect, test } from './fixtures';
import { AppPage } from './pages/AppPage';

/**
 * Words that stay as they are in the Chinese UI: names of models, methods, keys, formats, languages,
 * datastores and the lesson's invented places. Text marked lang="en" (what the models and the
 * datastores wrote, the prompt, the example articles) is English by nature and left out.
 */
const NAMES = /GPT-WT2-7M|RETRO-WT2-9M|In-Context RALM|RETRO\+\+|RETRO|kNN-LM|GPT|RALM|Markdown|JSON|Enter|Shift|Esc|Brannock Point \(lesson\)|Brannock Point|Brannock|Marrow|<unk>|p_LM|p_kNN|WebGPU|WASM|English|brannock-[a-z]+\.txt|[A-Za-z0-9_./-]+\.(md|json|txt)|top-p|s = \d|\bP\b/g;

/** Text a user sees under the selected elements, without what is marked as English text. */
async function uiText(app: AppPage, selector: string): Promise<string> {
  return app.page.locator(selector).evaluateAll((roots) =>
    roots
      .map((root) => {
        const copy = root.cloneNode(true) as HTMLElement;
        copy.querySelectorAll('[lang="en"], .visually-hidden, [hidden]').forEach((n) => n.remove());
        document.body.append(copy);
        const text = copy.innerText;
        copy.remove();
        return text;
      })
      .join('\n'),
  );
}

test('with a Chinese browser the lesson views are in Chinese, with no English left; the language can be switched', async ({ baseURL }, testInfo) => {
  test.setTimeout(300_000); // a lesson's datastore build and a four-column run
  const context = await launchApp({ profileDir: testInfo.outputPath('zh-profile'), locale: 'zh-CN' });
  try {
    const app = new AppPage(context.pages()[0] ?? (await context.newPage()));
    app.collectConsoleErrors();
    await app.page.setViewportSize({ width: 1280, height: 720 });
    await app.page.goto(`${baseURL}/?backend=wasm`);
    await app.waitUntilReady();
    await expect(app.page.locator('html')).toHaveAttribute('lang', 'zh-Hans');
    await expect(app.generateButton).toHaveText('生成');

    await app.openLesson('how');
    await expect(app.lesson).toContainText('第 2 课，共 6 课');
    await expect(app.page.getByTestId('lesson-read')).toContainText('交叉注意力');
    await app.generateNow();
    await expect(app.page.getByTestId('lesson-notice')).toContainText('¶');
    await app.output('icralm').getByTestId('icralm-passage').first().click();
    await expect(app.page.getByTestId('icralm-passage-panel')).toBeVisible();

    // The lesson, the prompt form, the columns' headers and footers, the open panel and the toolbar.
    const text = await uiText(app, '.app-header .toolbar, [data-testid="lesson"], .prompt-form, .column-header, .column-footer, [data-testid="side-panel"]');
    expect(text).toMatch(/[\u4e00-\u9fff]/);
    const english = text.replace(NAMES, ' ').match(/[A-Za-z]{2,}/g) ?? [];
    expect(english, `English left in the Chinese UI:\n${text}`).toEqual([]);

    // Switching back to English keeps the lesson where it was.
    await app.page.getByTestId('language').selectOption('en');
    await expect(app.generateButton).toHaveText('Generate');
    await expect(app.lesson).toContainText('Lesson 2 of 6');
    await expect(app.page.locator('html')).toHaveAttribute('lang', 'en');
    expect(app.consoleErrors).toEqual([]);
  } finally {
    await context.close();
  }
});
