import type { TFunction } from 'i18next';
import { useTranslation } from 'react-i18next';
import type { Progress } from '../client';
import { formatBytes } from '../client';
import { useDuration } from '../i18n/format';

/** The amount, rate and time left; the label and phase are the engine's own (English) words. */
function describe(p: Progress, t: TFunction, duration: (seconds: number) => string): string {
  // A finished copy keeps its size on the bar: what was stored is worth reading after the fact.
  if (p.finished)
    return p.unit === 'bytes'
      ? `${t('progress.bytesOf', { done: formatBytes(p.done), total: formatBytes(p.total ?? p.done) })} · ${t('progress.done')}`
      : t('progress.done');
  const unit = t(`progress.units.${p.unit}`);
  const amount =
    p.unit === 'bytes'
      ? p.total !== null
        ? t('progress.bytesOf', { done: formatBytes(p.done), total: formatBytes(p.total) })
        : formatBytes(p.done)
      : p.total !== null
        ? t('progress.amountOf', { done: p.done.toLocaleString(), total: p.total.toLocaleString(), unit })
        : t('progress.amount', { done: p.done.toLocaleString(), unit });
  const rate = p.rate !== undefined ? ` · ${t('progress.rate', { rate: Math.round(p.rate).toLocaleString(), unit })}` : '';
  const eta = p.etaSeconds !== undefined ? ` · ${t('progress.left', { time: duration(p.etaSeconds) })}` : '';
  const phase = p.phase ? `${p.phase}: ` : '';
  return `${phase}${amount}${rate}${eta}`;
}

/** A labelled progress bar; indeterminate while the total is unknown. */
export function ProgressBar({ progress, testId }: { progress: Progress; testId?: string }) {
  const { t } = useTranslation();
  const duration = useDuration();
  const fraction = progress.finished ? 1 : progress.total ? Math.min(1, progress.done / progress.total) : null;
  const detail = describe(progress, t, duration);
  return (
    <div className="progress" data-testid={testId}>
      <div className="progress-label">
        <span lang="en">{progress.label}</span>
        <span className="progress-detail">{detail}</span>
      </div>
      <progress
        max={1}
        value={fraction ?? undefined}
        aria-label={progress.label}
        aria-valuetext={detail}
      />
    </div>
  );
}
