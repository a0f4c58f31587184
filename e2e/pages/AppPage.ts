import { expect, type Locator, type Page } from '@playwright/test';
import type { AppState } from '../../src/client/client';
import type { RetroLabTestHook } from '../../src/client/testHook';
import type { ModelKey } from '../../src/protocol/api';

/** The RetroLab page as a test sees it: locators by role and test id, plus the typed window hook. */
export class AppPage {
  readonly prompt: Locator;
  readonly generateButton: Locator;
  readonly stopButton: Locator;
  readonly backendStatus: Locator;
  readonly datastoreItems: Locator;
  readonly neighbourPanel: Locator;
  readonly buildError: Locator;
  readonly consoleErrors: string[] = [];

  constructor(readonly page: Page) {
    this.prompt = page.getByTestId('prompt');
    this.generateButton = page.getByTestId('generate');
    this.stopButton = page.getByTestId('stop');
    this.backendStatus = page.getByTestId('backend-status');
    this.datastoreItems = page.getByTestId('datastore-item');
    this.neighbourPanel = page.getByTestId('neighbour-panel');
    this.buildError = page.getByTestId('build-error');
  }

  collectConsoleErrors(): void {
    this.page.on('console', (msg) => {
      if (msg.type() === 'error') this.consoleErrors.push(msg.text());
    });
    this.page.on('pageerror', (error) => this.consoleErrors.push(error.message));
  }

  /**
   * Opens the app. `settings` (default true) also opens the settings drawer, where most specs set
   * things up; `query` adds link state (`lesson=…&step=…`, `prompt=…`).
   */
  async goto(options: { backend?: 'wasm' | 'webgpu' | 'auto'; settings?: boolean; query?: string } = {}): Promise<void> {
    const params = new URLSearchParams(options.query ?? '');
    if (options.backend && options.backend !== 'auto') params.set('backend', options.backend);
    const query = params.toString();
    await this.page.goto(`/${query ? `?${query}` : ''}`);
    if (options.settings ?? true) await this.openSettings();
  }

  /** Reloads the page; the settings drawer (closed on a fresh page) is opened again if it was open. */
  async reload(): Promise<void> {
    const wasOpen = (await this.settingsToggle.getAttribute('aria-expanded')) === 'true';
    await this.page.reload();
    if (wasOpen) await this.openSettings();
  }

  get settingsToggle(): Locator {
    return this.page.getByTestId('settings-toggle');
  }

  async openSettings(): Promise<void> {
    if ((await this.settingsToggle.getAttribute('aria-expanded')) !== 'true') await this.settingsToggle.click();
    await expect(this.page.getByTestId('settings-drawer')).toBeVisible();
  }

  async closeSettings(): Promise<void> {
    if ((await this.settingsToggle.getAttribute('aria-expanded')) === 'true') await this.settingsToggle.click();
    await expect(this.page.getByTestId('settings-drawer')).toBeHidden();
  }

  // --- lessons --------------------------------------------------------------------------------

  get lesson(): Locator {
    return this.page.getByTestId('lesson');
  }

  /** Picks a lesson from the list (step 1 loads) and waits until its datastore and columns are ready. */
  async openLesson(id: string): Promise<void> {
    await this.page.getByTestId('lesson-picker').selectOption(id);
    await this.waitForLesson();
  }

  async nextStep(): Promise<void> {
    await this.page.getByTestId('lesson-next').click();
    await this.waitForLesson();
  }

  /** The lesson bar is shown and nothing is being prepared (its datastore built, its kNN-LM keys loaded). */
  async waitForLesson(timeout = 150_000): Promise<void> {
    await expect(this.lesson).toBeVisible();
    await expect(this.page.getByTestId('lesson-preparing')).toHaveCount(0, { timeout });
    await this.page.waitForFunction(
      () => {
        const s = (window as unknown as { __retrolab: RetroLabTestHook }).__retrolab.state();
        return s.busy === null && !s.build.running && !s.knn.loading;
      },
      undefined,
      { timeout },
    );
    await expect(this.generateButton).toBeEnabled();
  }

  /** Generates with the prompt and settings as they are (a lesson's) and waits for every column. */
  async generateNow(timeout = 150_000): Promise<void> {
    await this.generateButton.click();
    await this.waitForRuns(timeout);
  }

  /** RETRO's chunk buttons (the number at the start of each chunk that has neighbours). */
  chunkButtons(): Locator {
    return this.output('retro').getByTestId('chunk-button');
  }

  /** A snapshot of the client state through `window.__retrolab`. */
  async state(): Promise<AppState> {
    return this.page.evaluate(() => (window as unknown as { __retrolab: RetroLabTestHook }).__retrolab.state());
  }

  /** Models loaded and the datastores opened (first launch copies the defaults into IndexedDB). */
  async waitUntilReady(timeout = 150_000): Promise<void> {
    await this.page.waitForFunction(
      () => {
        const s = (window as unknown as { __retrolab?: RetroLabTestHook }).__retrolab?.state();
        return !!s && (s.phase === 'error' || (s.phase === 'ready' && s.retrieval !== null && s.busy === null));
      },
      undefined,
      { timeout },
    );
    const state = await this.state();
    expect(state.fatal, 'the app reported a fatal error').toBeNull();
    await expect(this.generateButton).toBeEnabled();
  }

  output(model: ModelKey): Locator {
    return this.page.getByTestId(`output-${model}`);
  }

  tokensPerSecond(model: ModelKey): Locator {
    return this.page.getByTestId(`tps-${model}`);
  }

  /** Numeric field inside the decoding or RETRO fieldset, found by its label. */
  field(label: string): Locator {
    return this.page.getByLabel(label, { exact: true });
  }

  /** Sets Max tokens in the settings drawer, leaving the drawer as it was. */
  async setMaxTokens(n: number): Promise<void> {
    const wasOpen = (await this.settingsToggle.getAttribute('aria-expanded')) === 'true';
    await this.openSettings();
    await this.field('Max tokens').fill(String(n));
    if (!wasOpen) await this.closeSettings();
  }

  /** Types a prompt, presses Enter and waits until both columns finished. */
  async generate(prompt: string, options: { maxTokens?: number; timeout?: number } = {}): Promise<void> {
    if (options.maxTokens !== undefined) await this.setMaxTokens(options.maxTokens);
    await this.prompt.fill(prompt);
    await this.prompt.press('Enter');
    await this.waitForRuns(options.timeout);
  }

  async waitForRuns(timeout = 120_000): Promise<void> {
    await this.page.waitForFunction(
      () => {
        const s = (window as unknown as { __retrolab: RetroLabTestHook }).__retrolab.state();
        const runs = Object.values(s.runs);
        return !s.generating && runs.length > 0 && runs.every((r) => r && r.status !== 'running' && r.status !== 'waiting');
      },
      undefined,
      { timeout },
    );
  }

  retroChunk(index: number): Locator {
    return this.output('retro').locator(`[data-chunk="${index}"]`);
  }

  retrievedChunks(): Locator {
    return this.output('retro').locator('.chunk-retrieved');
  }

  neighbours(): Locator {
    return this.neighbourPanel.getByTestId('neighbour');
  }

  async datastoreNames(): Promise<string[]> {
    return this.page.getByTestId('datastore-name').allTextContents();
  }

  async activeDatastoreName(): Promise<string | null> {
    const active = this.page.locator('[data-testid="datastore-item"].datastore-active [data-testid="datastore-name"]');
    return (await active.count()) ? active.textContent() : null;
  }

  /** Picks files in the "Add your own text" panel and builds a datastore from them. */
  async buildDatastore(files: { name: string; mimeType: string; buffer: Buffer }[], name?: string): Promise<void> {
    await this.page.getByTestId('custom-files').setInputFiles(files);
    if (name !== undefined) await this.page.getByTestId('custom-name').fill(name);
    await this.page.getByTestId('build').click();
  }

  // --- kNN-LM ---------------------------------------------------------------------------------

  get knnSwitch(): Locator {
    return this.page.getByRole('switch', { name: 'kNN-LM column' });
  }

  get tokenDistribution(): Locator {
    return this.page.getByTestId('token-distribution');
  }

  /** Like buildDatastore, with "Also build kNN-LM keys" ticked. */
  async buildKnnDatastore(files: { name: string; mimeType: string; buffer: Buffer }[], name?: string): Promise<void> {
    await this.page.getByTestId('custom-files').setInputFiles(files);
    if (name !== undefined) await this.page.getByTestId('custom-name').fill(name);
    await this.page.getByTestId('custom-knn').check();
    await this.page.getByTestId('build').click();
  }

  /** Waits until the inference worker holds a kNN-LM datastore (or the load failed); returns its name. */
  async waitForKnnModel(timeout = 120_000): Promise<string | null> {
    await this.page.waitForFunction(
      () => {
        const knn = (window as unknown as { __retrolab: RetroLabTestHook }).__retrolab.state().knn;
        return !knn.loading && (knn.model !== null || knn.error !== null);
      },
      undefined,
      { timeout },
    );
    const state = await this.state();
    expect(state.knn.error, 'kNN-LM datastore load error').toBeNull();
    return state.knn.model?.name ?? null;
  }

  /** The kNN-LM column's generated tokens (buttons that open the token distribution). */
  knnTokens(): Locator {
    return this.output('knnlm').getByTestId('generated-token');
  }

  async waitForBuildToFinish(timeout = 120_000): Promise<void> {
    await this.page.waitForFunction(
      () => !(window as unknown as { __retrolab: RetroLabTestHook }).__retrolab.state().build.running,
      undefined,
      { timeout },
    );
  }

  // --- perplexity lens ------------------------------------------------------------------------

  get lens(): Locator {
    return this.page.getByTestId('lens');
  }

  /** Switches to the lens tab with the keyboard (the tab list's arrow keys), as a keyboard user would. */
  async openLens(): Promise<void> {
    await this.page.getByTestId('tab-compare').focus();
    await this.page.keyboard.press('ArrowRight');
    await expect(this.page.getByTestId('tab-lens')).toHaveAttribute('aria-selected', 'true');
    await expect(this.lens).toBeVisible();
  }

  /** Pastes `text` into the lens, picks the models and scores it; waits for the result. */
  async scoreInLens(text: string, models: ModelKey[] = ['gpt', 'retro'], timeout = 150_000): Promise<void> {
    await this.page.getByTestId('lens-source-text').check();
    await this.page.getByTestId('lens-text').fill(text);
    for (const key of ['gpt', 'retro', 'knnlm', 'icralm', 'ragseq'] as const) {
      const box = this.page.getByTestId(`lens-model-${key}`);
      if (await box.isEnabled()) await box.setChecked(models.includes(key));
    }
    await this.page.getByTestId('lens-run').click();
    await this.waitForLens(timeout);
  }

  async waitForLens(timeout = 150_000): Promise<void> {
    await this.page.waitForFunction(
      () => {
        const lens = (window as unknown as { __retrolab: RetroLabTestHook }).__retrolab.state().lens;
        return !lens.running && (lens.result !== null || lens.error !== null);
      },
      undefined,
      { timeout },
    );
    const state = await this.state();
    expect(state.lens.error, 'perplexity lens error').toBeNull();
  }

  /** The token- and word-level perplexity the lens shows for a model (from the cells' data-value). */
  async lensPerplexity(model: ModelKey): Promise<{ token: number; word: number }> {
    const token = Number(await this.page.getByTestId(`lens-token-ppl-${model}`).getAttribute('data-value'));
    const word = Number(await this.page.getByTestId(`lens-word-ppl-${model}`).getAttribute('data-value'));
    return { token, word };
  }

  lensTokens(): Locator {
    return this.page.getByTestId('lens-tokens').locator('[data-i]');
  }

  /** Distinct background colours of the lens's token spans. */
  async lensTokenColours(): Promise<string[]> {
    const colours = await this.lensTokens().evaluateAll((spans) => spans.map((s) => (s as HTMLElement).style.background).filter((c) => c !== ''));
    return [...new Set(colours)];
  }
}
