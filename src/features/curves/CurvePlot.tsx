import { useEffect, useRef } from 'react';
import * as Plot from '@observablehq/plot';
import { useTranslation } from 'react-i18next';
import type { CurveAxis, CurvePoint } from './curves';

export function formatPpl(x: number): string {
  if (!Number.isFinite(x)) return '∞';
  return x >= 100 ? x.toFixed(1) : x.toFixed(2);
}

/** An x value as shown: a share of the datastore as a percentage, the rest as they are. */
export function formatValue(axis: CurveAxis, value: number): string {
  return axis === 'fraction' ? `${+(value * 100).toPrecision(3)}%` : String(value);
}

/**
 * One curve with Observable Plot: kNN-LM (or In-Context RALM) token perplexity against one setting,
 * the GPT's as a dashed line, the centre setting ringed. The SVG is an image with a label; the
 * numbers are in the table below it.
 */
export function CurvePlot({ axis, points, gpt, label }: { axis: CurveAxis; points: CurvePoint[]; gpt: number; label: string }) {
  const { t } = useTranslation();
  const box = useRef<HTMLDivElement>(null);
  const finite = points.filter((p) => Number.isFinite(p.tokenPpl));
  const icralm = axis === 'stride';
  const summary = t(icralm ? 'curves.plotLabelIcralm' : 'curves.plotLabel', {
    setting: label,
    from: formatValue(axis, points[0]?.value ?? 0),
    to: formatValue(axis, points.at(-1)?.value ?? 0),
    best: formatPpl(Math.min(...finite.map((p) => p.tokenPpl))),
    bestAt: formatValue(axis, finite.reduce((a, b) => (b.tokenPpl < a.tokenPpl ? b : a), finite[0] ?? { value: 0, tokenPpl: Infinity }).value),
    gpt: formatPpl(gpt),
  });

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const finite = points.filter((p) => Number.isFinite(p.tokenPpl));
    const current = points.find((p) => p.current);
    const svg = Plot.plot({
      width: 340,
      height: 230,
      marginLeft: 52,
      marginBottom: 40,
      style: { background: 'transparent', color: 'currentColor', fontSize: '11px' },
      x: {
        label,
        type: axis === 'lambda' ? 'linear' : 'log',
        ...(axis === 'lambda' ? {} : axis === 'fraction' ? { tickFormat: (v: number) => formatValue(axis, v), ticks: points.map((p) => p.value) } : axis === 'stride' ? { ticks: points.map((p) => p.value) } : { tickFormat: '~s' }),
      },
      y: { label: t('curves.yLabel'), grid: true, nice: true, zero: false },
      marks: [
        Plot.ruleY([gpt], { stroke: 'currentColor', strokeOpacity: 0.7, strokeDasharray: '5,4', className: 'curve-gpt' }),
        Plot.text([gpt], { x: points.at(-1)?.value, y: (d: number) => d, text: () => 'GPT', dy: -7, textAnchor: 'end', fill: 'currentColor' }),
        Plot.line(finite, { x: 'value', y: 'tokenPpl', stroke: 'var(--accent, #2563eb)', strokeWidth: 2 }),
        Plot.dot(finite, {
          x: 'value',
          y: 'tokenPpl',
          r: 3,
          fill: 'var(--accent, #2563eb)',
          className: 'curve-point',
          title: (p: CurvePoint) => `${label} ${formatValue(axis, p.value)}: ${formatPpl(p.tokenPpl)}`,
        }),
        ...(current && Number.isFinite(current.tokenPpl)
          ? [Plot.dot([current], { x: 'value', y: 'tokenPpl', r: 7, stroke: 'currentColor', strokeWidth: 2, fill: 'none', className: 'curve-current' })]
          : []),
      ],
    });
    // The SVG is one image with one label (the numbers are in the table): Plot's labels on its mark
    // groups would be ARIA on elements without a role.
    svg.querySelectorAll('[aria-label], [aria-description]').forEach((node) => {
      node.removeAttribute('aria-label');
      node.removeAttribute('aria-description');
    });
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', summary);
    el.replaceChildren(svg);
    return () => el.replaceChildren();
  }, [axis, points, gpt, label, summary, t]);

  return (
    <figure className="curve" data-testid={`curve-${axis}`}>
      <figcaption className="curve-title">{t('curves.curveTitle', { setting: label })}</figcaption>
      <div ref={box} className="curve-plot" data-testid={`curve-plot-${axis}`} />
      <details className="curve-numbers">
        <summary>{t('curves.numbers')}</summary>
        <table className="curve-table" data-testid={`curve-table-${axis}`}>
          <thead>
            <tr>
              <th scope="col">{label}</th>
              <th scope="col">{t(icralm ? 'curves.icralmPpl' : 'curves.knnPpl')}</th>
              <th scope="col">{t('curves.gptPpl')}</th>
            </tr>
          </thead>
          <tbody>
            {points.map((p) => (
              <tr key={p.value} data-testid={`curve-row-${axis}`} data-setting={p.value} data-value={p.tokenPpl} aria-current={p.current ? 'true' : undefined}>
                <th scope="row">
                  {formatValue(axis, p.value)}
                  {p.current && <span className="muted"> {t('curves.current')}</span>}
                </th>
                <td>{formatPpl(p.tokenPpl)}</td>
                <td>{formatPpl(gpt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </figure>
  );
}
