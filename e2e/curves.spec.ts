import AxeBuilder from '@axe-core/playwright';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startEngines } from '../cli/engines-node';
import { REPO_ROOT } from '../cli/datastore-node';
import { DEFAULT_ICRALM_SETTINGS } from '../src/core/icralm/types';
import { DEFAULT_KNN_SETTINGS } from '../src/core/knnlm/types';
import { DEFAULT_REPLUG_SETTINGS } from '../src/core/replug/types';
import type { EvalRequest } from '../src/protocol/api';
import { FRACTION_VALUES, STRIDE_VALUES, curveSweep, curveValues, fractionSweep } from '../src/features/curves/curves';
import { expect, test } from './fixtures';

const KNN_DATASTORE = join(REPO_ROOT, 'public', 'datastores', 'wikitext-2-train.knn-pca64.rlds');

/** WikiText-style sentences from no article: ~90 tokens, one window. */
const TEXT =
  'The Avon Valley Railway is a heritage railway in Gloucestershire , England . It runs for three miles along the former ' +
  'Midland Railway line between Bitton and Oldland Common , and its volunteers restored the station buildings in the 1980s . ' +
  'The line was closed to passengers in 1966 and to freight in 1971 , but a preservation society reopened part of it in 1974 .';

/**
 * What `npm run eval --knnlm --sweep-*` computes for the same text and settings: the app's engines in
 * Node (cli/engines-node.ts) with the built-in kNN-LM keys.
 */
async function nodeSweep(request: EvalRequest): Promise<Map<string, number>> {
  const engines = await startEngines();
  try {
    expect(await engines.inference.loadKnnFor('knnlm', () => undefined), 'Node: the built-in kNN-LM keys').not.toBeNull();
    const result = await engines.inference.evaluate(request, () => undefined);
    const out = new Map<string, number>([['gpt', result.knnlm!.gpt.tokenPpl]]);
    for (const s of result.knnlm!.sweep) out.set(`${s.settings.lambda}/${s.settings.k}/${s.settings.temperature}/${s.settings.fraction ?? 1}`, s.tokenPpl);
    return out;
  } finally {
    await engines.dispose();
  }
}

test.describe('kNN-LM curves', () => {
  test.skip(!existsSync(KNN_DATASTORE), 'needs the kNN-LM datastore (npm run setup:knn, or the fixture npm test builds)');

  test('computes λ, T and k curves from one pass, λ = 0 is the GPT, the numbers match the Node eval, and Stop stops; then the data-size and stride curves', async ({ app, page }) => {
    // A model load and a kNN-LM key load on each side (the browser copies ~210 MB into IndexedDB the first time).
    test.setTimeout(900_000);
    const centre = { ...DEFAULT_KNN_SETTINGS };
    // The λ/T/k sweep and the data-size sweep in one Node pass (the app computes them as two).
    const sweep = [...curveSweep(centre), ...fractionSweep(centre).slice(1)];
    const request: EvalRequest = {
      text: TEXT,
      model: 'knnlm',
      retro: { retrieval: false, k: 2 },
      knn: { ...sweep[0]!, sweep: sweep.slice(1) },
      icralm: DEFAULT_ICRALM_SETTINGS,
      replug: DEFAULT_REPLUG_SETTINGS,
      maxWindows: 4,
    };
    const expected = await nodeSweep(request);

    await app.goto({ backend: 'wasm', settings: false });
    await app.waitUntilReady(300_000);
    // Keyboard: the curves tab is two to the right of Compare.
    await page.getByTestId('tab-compare').focus();
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    await expect(page.getByTestId('tab-curves')).toHaveAttribute('aria-selected', 'true');
    const view = page.getByTestId('curves');
    await expect(view).toBeVisible();

    // Without the keys the view says so and offers the switch; nothing can run.
    if ((await app.state()).knn.model === null) {
      await expect(view.getByTestId('curves-knn-off')).toContainText('The kNN-LM keys are not loaded');
      await expect(view.getByTestId('curves-run')).toBeDisabled();
      const toggle = view.getByRole('switch', { name: 'Turn kNN-LM on' });
      if (!(await toggle.isChecked())) await toggle.check();
      await app.waitForKnnModel(600_000);
    }
    await expect(view.getByTestId('curves-knn-off')).toHaveCount(0);

    // WikiText-2 test, 8 windows: the progress bar shows, and Stop stops it.
    await view.getByTestId('curves-source-wikitext').check();
    await expect(view.getByTestId('curves-input-problem')).toHaveCount(0, { timeout: 60_000 });
    await view.getByRole('spinbutton', { name: 'Windows' }).fill('8');
    await view.getByTestId('curves-run').click();
    // The first window's count comes once its forward and searches are done (the bar is indeterminate until then).
    await expect(view.getByTestId('curves-progress')).toContainText(/of [\d,]+ windows/, { timeout: 180_000 });
    await view.getByTestId('curves-stop').click();
    await page.waitForFunction(() => !window.__retrolab!.state().curves.running);
    const stopped = (await app.state()).curves;
    expect(stopped.stopped).toBe(true);
    expect(stopped.error).toBeNull();
    expect(stopped.result).toBeNull();
    await expect(view.getByTestId('curves-stopped')).toBeVisible();

    // The short text, 4 windows (it has one).
    await view.getByTestId('curves-source-text').check();
    await view.getByTestId('curves-text').fill(TEXT);
    await view.getByRole('spinbutton', { name: 'Windows' }).fill('4');
    await view.getByTestId('curves-run').click();
    await page.waitForFunction(() => !window.__retrolab!.state().curves.running, undefined, { timeout: 180_000 });
    expect((await app.state()).curves.error).toBeNull();
    const results = view.getByTestId('curves-results');
    await expect(results).toBeVisible();
    const gpt = Number(await results.getByTestId('curves-summary').getAttribute('data-gpt'));
    expect(Math.abs(gpt / expected.get('gpt')! - 1), `GPT ${gpt} vs Node ${expected.get('gpt')}`).toBeLessThan(1e-3);

    for (const axis of ['lambda', 'temperature', 'k'] as const) {
      const values = curveValues(centre, axis);
      const plot = view.getByTestId(`curve-plot-${axis}`);
      const svg = plot.locator('svg[role="img"]');
      await expect(svg).toHaveCount(1);
      expect(await svg.getAttribute('aria-label')).toMatch(/kNN-LM token perplexity against .+ GPT alone/);
      // One point per value, one ringed (the chosen setting), the GPT's reference line.
      await expect(plot.locator('.curve-point circle')).toHaveCount(values.length);
      await expect(plot.locator('.curve-current circle')).toHaveCount(1);
      await expect(plot.locator('.curve-gpt line')).toHaveCount(1);
      // The same numbers in the table, and the Node eval's.
      const rows = view.getByTestId(`curve-row-${axis}`);
      await expect(rows).toHaveCount(values.length);
      for (let i = 0; i < values.length; i++) {
        const row = rows.nth(i);
        expect(Number(await row.getAttribute('data-setting'))).toBe(values[i]);
        const shown = Number(await row.getAttribute('data-value'));
        const s = { ...centre, [axis]: values[i] };
        const node = expected.get(`${s.lambda}/${s.k}/${s.temperature}/1`)!;
        expect(Math.abs(shown / node - 1), `${axis} = ${values[i]}: app ${shown} vs Node ${node}`).toBeLessThan(1e-3);
      }
    }

    // λ = 0 is the GPT; retrieval helps somewhere on the curve.
    const lambdaRows = view.getByTestId('curve-row-lambda');
    const atZero = Number(await lambdaRows.first().getAttribute('data-value'));
    expect(Number(await lambdaRows.first().getAttribute('data-setting'))).toBe(0);
    expect(Math.abs(atZero / gpt - 1), `λ = 0: ${atZero} vs GPT ${gpt}`).toBeLessThan(1e-6);
    const lambdas = await lambdaRows.evaluateAll((rs) => rs.map((r) => Number(r.getAttribute('data-value'))));
    console.log(`λ curve: ${lambdas.map((v) => v.toFixed(2)).join(', ')} (GPT ${gpt.toFixed(2)})`);
    expect(new Set(lambdas).size, 'λ changes the perplexity').toBeGreaterThan(1);

    // The table is reachable: the details open from the keyboard.
    const details = view.getByTestId('curve-lambda').locator('summary');
    await details.focus();
    await page.keyboard.press('Enter');
    await expect(view.getByTestId('curve-table-lambda')).toBeVisible();

    // The data-size curve on the same slice: one point per share of the datastore (the CI fixture's
    // 40,000 entries or the built-in 2.6M), the whole ringed and equal to the centre of the λ curve.
    await view.getByTestId('curves-family-fraction').check();
    await expect(view.getByTestId('curves-knn-off')).toHaveCount(0);
    await view.getByTestId('curves-run').click();
    await page.waitForFunction(() => !window.__retrolab!.state().curves.running, undefined, { timeout: 180_000 });
    expect((await app.state()).curves.error).toBeNull();
    const fractionResults = view.getByTestId('curves-results-fraction');
    await expect(fractionResults).toBeVisible();
    // The λ/T/k curves stay beside it.
    await expect(results).toBeVisible();
    const fractionPlot = view.getByTestId('curve-plot-fraction');
    await expect(fractionPlot.locator('svg[role="img"]')).toHaveAttribute('aria-label', /kNN-LM token perplexity against Share of the datastore from 1% to 100%/);
    await expect(fractionPlot.locator('.curve-point circle')).toHaveCount(FRACTION_VALUES.length);
    await expect(fractionPlot.locator('.curve-current circle')).toHaveCount(1);
    await expect(fractionPlot.locator('.curve-gpt line')).toHaveCount(1);
    expect(Number(await fractionResults.getByTestId('curves-summary-fraction').getAttribute('data-gpt'))).toBe(gpt);
    const fractionRows = view.getByTestId('curve-row-fraction');
    await expect(fractionRows).toHaveCount(FRACTION_VALUES.length);
    const fractionPoints = await fractionRows.evaluateAll((rs) => rs.map((r) => ({ share: Number(r.getAttribute('data-setting')), ppl: Number(r.getAttribute('data-value')), text: r.querySelector('th')!.textContent })));
    console.log(`data-size curve: ${fractionPoints.map((p) => `${p.text} ${p.ppl.toFixed(2)}`).join(', ')} (GPT ${gpt.toFixed(2)})`);
    expect(fractionPoints.map((p) => p.share)).toEqual([...FRACTION_VALUES]);
    expect(fractionPoints[0]!.text).toBe('1%');
    for (const p of fractionPoints) {
      const node = expected.get(`${centre.lambda}/${centre.k}/${centre.temperature}/${p.share}`)!;
      expect(Math.abs(p.ppl / node - 1), `${p.share}: app ${p.ppl} vs Node ${node}`).toBeLessThan(1e-3);
    }
    const centrePoint = Number(await lambdaRows.nth(curveValues(centre, 'lambda').indexOf(centre.lambda)).getAttribute('data-value'));
    expect(fractionPoints.at(-1)!.ppl).toBe(centrePoint);
    expect(new Set(fractionPoints.map((p) => p.ppl)).size, 'the share of the datastore changes the perplexity').toBeGreaterThan(1);

    // In-Context RALM's stride curve: the λ, k, T fields go, RETRO's fixed step is said, and the GPT
    // line is the same GPT on the same targets.
    await view.getByTestId('curves-family-stride').check();
    await expect(view.getByTestId('curves-retro-note')).toContainText('RETRO has no stride curve');
    await expect(view.getByRole('spinbutton', { name: 'T (temperature)' })).toHaveCount(0);
    await view.getByTestId('curves-run').click();
    await page.waitForFunction(() => !window.__retrolab!.state().curves.running, undefined, { timeout: 300_000 });
    expect((await app.state()).curves.error).toBeNull();
    const strideResults = view.getByTestId('curves-results-stride');
    await expect(strideResults).toBeVisible();
    const strideGpt = Number(await strideResults.getByTestId('curves-summary-stride').getAttribute('data-gpt'));
    expect(Math.abs(strideGpt / gpt - 1), `GPT ${strideGpt} (stride sweep, batched windows) vs ${gpt} (kNN-LM sweep)`).toBeLessThan(1e-5);
    const stridePlot = view.getByTestId('curve-plot-stride');
    await expect(stridePlot.locator('.curve-point circle')).toHaveCount(STRIDE_VALUES.length);
    await expect(stridePlot.locator('svg[role="img"]')).toHaveAttribute('aria-label', /^In-Context RALM token perplexity against s \(retrieval stride\) from 4 to 64/);
    const strides = await view.getByTestId('curve-row-stride').evaluateAll((rs) => rs.map((r) => [Number(r.getAttribute('data-setting')), Number(r.getAttribute('data-value'))]));
    console.log(`stride curve: ${strides.map(([s, v]) => `s=${s} ${v!.toFixed(2)}`).join(', ')}`);
    expect(strides.map(([s]) => s)).toEqual([...STRIDE_VALUES]);
    for (const [, v] of strides) expect(Number.isFinite(v)).toBe(true);

    // axe over the view with a table open: no serious or critical violation.
    const axe = await new AxeBuilder({ page }).include('[data-testid="curves"]').analyze();
    const serious = axe.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}: ${v.help} ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
    expect(serious, 'axe on the curves view').toEqual([]);

    // In Chinese the tab, the axes and the plots' labels follow.
    await page.getByTestId('language').selectOption('zh');
    await expect(page.getByTestId('tab-curves')).toHaveText('曲线');
    await expect(view.getByTestId('curves-run')).toHaveText('计算曲线');
    await expect(view.getByTestId('curve-plot-lambda').locator('svg[role="img"]')).toHaveAttribute('aria-label', /^kNN-LM 词元困惑度随 λ（kNN 权重）/);
    await expect(view.getByTestId('curve-plot-k')).toContainText('词元困惑度');

    expect(app.consoleErrors).toEqual([]);
  });
});
