import { memo, useCallback, useEffect, useMemo, useRef, useState, type KeyboardEvent, type MouseEvent } from 'react';
import type { TFunction } from 'i18next';
import { useTranslation } from 'react-i18next';
import type { ModelKey, ModelScore, TokenView } from '../../client';
import { differenceSwatch, formatProbability, lossSwatch, type Swatch } from './colour';
import { MODEL_LABELS } from './labels';

export type ColourMode = { kind: 'loss'; model: ModelKey } | { kind: 'difference'; a: ModelKey; b: ModelKey };

interface TokenMapProps {
  tokens: TokenView[];
  scores: ModelScore[];
  mode: ColourMode;
  from: number;
  to: number;
}

function swatchesFor(scores: ModelScore[], mode: ColourMode, from: number, to: number): (Swatch | null)[] {
  const out: (Swatch | null)[] = new Array<Swatch | null>(to - from);
  if (mode.kind === 'loss') {
    const lp = scores.find((s) => s.model === mode.model)?.logProbs;
    for (let i = from; i < to; i++) out[i - from] = lp ? lossSwatch(-lp[i]!) : null;
  } else {
    const a = scores.find((s) => s.model === mode.a)?.logProbs;
    const b = scores.find((s) => s.model === mode.b)?.logProbs;
    for (let i = from; i < to; i++) out[i - from] = a && b ? differenceSwatch(b[i]! - a[i]!) : null;
  }
  return out;
}

/**
 * The spans of one page. Memoised on its inputs only: hovering, focus and the tooltip never
 * re-render thousands of spans (the active token is marked by a class set on the DOM node).
 */
const TokenSpans = memo(function TokenSpans({ tokens, swatches, from }: { tokens: TokenView[]; swatches: (Swatch | null)[]; from: number }) {
  return (
    <>
      {swatches.map((swatch, j) => {
        const i = from + j;
        return (
          <span
            key={i}
            data-i={i}
            className={swatch ? 'lens-token' : 'lens-token lens-token-unscored'}
            style={swatch ? { background: swatch.background, color: swatch.color } : undefined}
          >
            {tokens[i]!.text}
          </span>
        );
      })}
    </>
  );
});

/** The comparison summary's tie band (compareLosses), so the tooltip and the counts agree. */
const SAME_WITHIN = 0.01;

function describeLoss(logProb: number, t: TFunction): string {
  if (Number.isNaN(logProb)) return t('lens.notScored');
  return t('lens.lossDetail', { p: formatProbability(Math.exp(logProb)), loss: (-logProb).toFixed(2) });
}

/** The coloured text with a tooltip for the hovered or keyboard-selected token. */
export function TokenMap({ tokens, scores, mode, from, to }: TokenMapProps) {
  const { t } = useTranslation();
  const swatches = useMemo(() => swatchesFor(scores, mode, from, to), [scores, mode, from, to]);
  const container = useRef<HTMLDivElement>(null);
  const [active, setActive] = useState<number | null>(null);
  const [anchor, setAnchor] = useState<{ top: number; left: number } | null>(null);
  const current = active !== null && active >= from && active < to ? active : null;

  // The active span gets a class directly: a React state per span would re-render the whole page.
  useEffect(() => {
    const root = container.current;
    if (!root || current === null) {
      setAnchor(null);
      return;
    }
    const span = root.querySelector<HTMLElement>(`[data-i="${current}"]`);
    if (!span) return;
    span.classList.add('lens-token-active');
    if (document.activeElement === root) span.scrollIntoView({ block: 'nearest' });
    const box = span.getBoundingClientRect();
    const wrap = root.parentElement!.getBoundingClientRect();
    setAnchor({ top: box.bottom - wrap.top, left: Math.max(0, Math.min(box.left - wrap.left, wrap.width - 320)) });
    return () => span.classList.remove('lens-token-active');
  }, [current, swatches]);

  const onPointer = useCallback((event: MouseEvent<HTMLDivElement>) => {
    const target = (event.target as HTMLElement).closest<HTMLElement>('[data-i]');
    if (target) setActive(Number(target.dataset.i));
  }, []);

  const onKey = (event: KeyboardEvent<HTMLDivElement>) => {
    const steps: Record<string, number> = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: 20, ArrowUp: -20 };
    let next: number | null = null;
    if (event.key in steps) next = (current ?? from) + (current === null ? 0 : steps[event.key]!);
    else if (event.key === 'Home') next = from;
    else if (event.key === 'End') next = to - 1;
    if (next === null) return;
    event.preventDefault();
    setActive(Math.max(from, Math.min(to - 1, next)));
  };

  const token = current !== null ? tokens[current] : undefined;
  const a = mode.kind === 'difference' ? scores.find((s) => s.model === mode.a) : undefined;
  const b = mode.kind === 'difference' ? scores.find((s) => s.model === mode.b) : undefined;
  const delta = current !== null && a && b ? b.logProbs[current]! - a.logProbs[current]! : Number.NaN;

  return (
    <div className="lens-map-wrap">
      <div
        ref={container}
        className="lens-map"
        data-testid="lens-tokens"
        tabIndex={0}
        role="group"
        aria-label={t('lens.mapLabel')}
        aria-describedby="lens-token-detail"
        onMouseOver={onPointer}
        onClick={onPointer}
        onFocus={() => setActive((i) => i ?? Math.min(from + 1, to - 1))}
        onKeyDown={onKey}
        onMouseLeave={() => {
          if (document.activeElement !== container.current) setActive(null);
        }}
        onBlur={() => setActive(null)}
      >
        <TokenSpans tokens={tokens} swatches={swatches} from={from} />
      </div>
      <div
        id="lens-token-detail"
        className="lens-tooltip"
        role="status"
        aria-live="polite"
        data-testid="lens-tooltip"
        hidden={!token}
        style={anchor ? { top: anchor.top + 4, left: anchor.left } : undefined}
      >
        {token && current !== null && (
          <>
            <div className="lens-tooltip-token">
              <code lang="en">{JSON.stringify(token.text)}</code> <span className="muted">{t('token.id', { id: current.toLocaleString() })}</span>
            </div>
            <ul>
              {scores.map((s) => (
                <li key={s.model}>
                  <strong>{MODEL_LABELS[s.model]}</strong>: {describeLoss(s.logProbs[current]!, t)}
                </li>
              ))}
            </ul>
            {a && b && !Number.isNaN(delta) && (
              <div className="lens-tooltip-delta">
                {t('lens.delta', {
                  a: MODEL_LABELS[a.model],
                  b: MODEL_LABELS[b.model],
                  delta: delta.toFixed(2),
                  verdict: Math.abs(delta) <= SAME_WITHIN ? t('lens.aboutSame') : t('lens.better', { name: MODEL_LABELS[delta > 0 ? b.model : a.model] }),
                })}
              </div>
            )}
          </>
        )}
      </div>
    </div>
  );
}
