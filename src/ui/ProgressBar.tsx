import type { Progress } from '../client';
import { formatBytes, formatDuration } from '../client';

function describe(p: Progress): string {
  if (p.finished) return 'done';
  const amount =
    p.unit === 'bytes'
      ? `${formatBytes(p.done)}${p.total !== null ? ` of ${formatBytes(p.total)}` : ''}`
      : `${p.done.toLocaleString()}${p.total !== null ? ` of ${p.total.toLocaleString()}` : ''} ${p.unit}`;
  const rate = p.rate !== undefined ? ` · ${Math.round(p.rate).toLocaleString()} ${p.unit}/s` : '';
  const eta = p.etaSeconds !== undefined ? ` · ${formatDuration(p.etaSeconds)} left` : '';
  const phase = p.phase ? `${p.phase}: ` : '';
  return `${phase}${amount}${rate}${eta}`;
}

/** A labelled progress bar; indeterminate while the total is unknown. */
export function ProgressBar({ progress, testId }: { progress: Progress; testId?: string }) {
  const fraction = progress.finished ? 1 : progress.total ? Math.min(1, progress.done / progress.total) : null;
  return (
    <div className="progress" data-testid={testId}>
      <div className="progress-label">
        <span>{progress.label}</span>
        <span className="progress-detail">{describe(progress)}</span>
      </div>
      <progress
        max={1}
        value={fraction ?? undefined}
        aria-label={progress.label}
        aria-valuetext={describe(progress)}
      />
    </div>
  );
}
