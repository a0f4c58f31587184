import { useTranslation } from 'react-i18next';
import { useAppState } from '../../client';
import { ProgressBar } from '../../ui/ProgressBar';

const BACKEND_NAMES = { webgpu: 'WebGPU', wasm: 'WebAssembly (WASM)', cpu: 'native CPU' } as const;

/** Which backend runs and why, and the load progress of models and datastores while they load. */
export function StatusBar() {
  const { t } = useTranslation();
  const backend = useAppState((s) => s.backend);
  const phase = useAppState((s) => s.phase);
  const fatal = useAppState((s) => s.fatal);
  const progress = useAppState((s) => s.progress);
  const loading = Object.values(progress).filter((p) => !p.finished);

  return (
    <section className="status" aria-label={t('app.status')}>
      <p className="status-line" role="status" data-testid="backend-status" data-backend={backend?.backend ?? ''}>
        {backend ? (
          <>
            <span className={`badge badge-${backend.backend}`}>{BACKEND_NAMES[backend.backend]}</span>
            {/* The reason is the engine's own words (src/core/runtime), in English. */}
            <span className="status-reason" lang="en">
              {backend.reason}
            </span>
          </>
        ) : phase === 'error' ? (
          <span className="badge badge-error">{t('app.notRunning')}</span>
        ) : (
          <span className="badge badge-pending">{t('app.starting')}</span>
        )}
      </p>
      {fatal && (
        <p className="fatal" role="alert">
          {fatal}
        </p>
      )}
      {loading.length > 0 && (
        <div className="load-progress" aria-live="polite">
          {loading.map((p) => (
            <ProgressBar key={p.target} progress={p} testId={`progress-${p.target}`} />
          ))}
        </div>
      )}
    </section>
  );
}
