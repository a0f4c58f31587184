import { launchApp } from './browser';
import { expect, test } from './fixtures';
import { AppPage } from './pages/AppPage';

/**
 * Words that stay as they are in the Chinese UI: names of models, methods, keys, formats, languages,
 * datastores and the lesson's invented places. Text marked lang="en" (what the models and the
 * datastores wrote, the prompt, the example articles) is English by nature and left out.
 */
const NAMES = /GPT-WT2-7M|RETRO-WT2-9M|In-Context RALM|RETRO\+\+|RETRO|kNN-LM|GPT|RALM|Markdown|JSON|Enter|Shift|Esc|Brannock Point \(lesson\)|Brannock Point|Brannock|Marrow|<unk>|p_LM|p_kNN|WebGPU|WASM|English|brannock-[a-z]+\.txt|[A-Za-z0-9_./-]+\.(md|json|txt)|top-p|s = \d|\bP\b/g;

/**
 * More names of the settings drawer and the perplexity lens: the built-in datastores, the corpus, an
 * index library, file types, a command, an author (Ram et al.), the Top-k/Top-p fields and byte units.
 */
const MORE_NAMES = /REPLUG|RetoMaton|FLARE|BM25|IVF|RAG-Sequence|RAG-Token|\bRAG\b|\bLewis\b|\bJiang\b|Drozdov|\bShi\b|WikiText-2 train \(kNN-LM keys\)|WikiText-2 train|SQuAD 2\.0 paragraphs|WikiText-2|WikiText|npm run eval|\.(rlds|jsonl|tokens|txt|md)\b|Voy|Ram|Top-[kp]|kNN(?!-LM)|\d [KMG]?B\b/g;

/** Text a user sees under the selected elements, without what is marked as English text. */
async function uiText(app: AppPage, selector: string): Promise<string> {
  return app.page.locator(selector).evaluateAll((roots) =>
    roots
      .map((root) => {
        const copy = root.cloneNode(true) as HTMLElement;
        // Data, not UI: datastore names and the lens's scored text.
        copy.querySelectorAll('[lang="en"], .visually-hidden, [hidden], [data-testid="datastore-name"], [data-testid="lens-tokens"]').forEach((n) => n.remove());
        document.body.append(copy);
        const text = copy.innerText;
        copy.remove();
        return text;
      })
      .join('\n'),
  );
}

test('with a Chinese browser the lesson views, the settings drawer and the lens are in Chinese, with no English left; the language can be switched', async ({ baseURL }, testInfo) => {
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

    // The settings drawer: the RETRO, kNN-LM and In-Context RALM boxes, the datastore list, the build form and the storage meter.
    await app.openSettings();
    await expect(app.datastoreItems.first()).toBeVisible();
    const drawer = await uiText(app, '[data-testid="settings-drawer"]');
    expect(drawer).toMatch(/数据库/);
    const drawerEnglish = drawer.replace(MORE_NAMES, ' ').replace(NAMES, ' ').match(/[A-Za-z]{2,}/g) ?? [];
    expect(drawerEnglish, `English left in the Chinese settings drawer:\n${drawer}`).toEqual([]);
    await app.closeSettings();

    // The perplexity lens with a result: GPT and RETRO (without retrieval, so no datastore is read) on a short text, in difference mode, with a token's tooltip.
    await app.openLens();
    await app.page.getByTestId('lens-retrieval').uncheck();
    await app.scoreInLens('The ship was launched in 1911 and served in the Atlantic until the end of the war .', ['gpt', 'retro']);
    await app.page.getByTestId('lens-mode-difference').check();
    await expect(app.page.getByTestId('lens-comparison')).toBeVisible();
    await app.lensTokens().nth(5).hover();
    await expect(app.page.getByTestId('lens-tooltip')).toBeVisible();
    const lens = await uiText(app, '[data-testid="lens"]');
    expect(lens).toMatch(/困惑度/);
    const lensEnglish = lens.replace(MORE_NAMES, ' ').replace(NAMES, ' ').match(/[A-Za-z]{2,}/g) ?? [];
    expect(lensEnglish, `English left in the Chinese lens:\n${lens}`).toEqual([]);
    await app.page.getByTestId('tab-compare').click();

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
