import { useTranslation } from 'react-i18next';
import { DEFAULT_LAMBDA_TABLE, formatBytes, MAX_KNN_K, useAppState, useClient, type KnnLmSettings } from '../../client';
import { NumberField } from '../../ui/NumberField';
import { ProgressBar } from '../../ui/ProgressBar';
import { Switch } from '../../ui/Switch';

/** The kNN-LM column's switch, its datastore's state, and λ, k, T (docs/knnlm.md). */
export function KnnControls({
  value,
  onChange,
  disabled,
}: {
  value: KnnLmSettings;
  onChange: (value: KnnLmSettings) => void;
  disabled: boolean;
}) {
  const client = useClient();
  const { t } = useTranslation();
  const knn = useAppState((s) => s.knn);
  const retrieval = useAppState((s) => s.retrieval);
  const enabled = useAppState((s) => client.knnEnabled(s));
  const ready = useAppState((s) => s.phase === 'ready' && s.models.length > 0);
  const source = retrieval?.knn.knnlm ?? null;
  const set = <K extends keyof KnnLmSettings>(key: K, v: KnnLmSettings[K]) => onChange({ ...value, [key]: v });

  const firstCopy = source && !source.stored ? t('knn.firstCopy', { size: formatBytes(source.bytes) }) : '';
  let status: string;
  if (knn.model) {
    status = t('knn.loaded', { name: knn.model.name, entries: knn.model.entries.toLocaleString('en'), dim: knn.model.dim });
    if (knn.model.index === 'ivf') status += t('knn.ivf', { nprobe: knn.model.nprobe, lists: knn.model.lists.toLocaleString('en') });
  }
  else if (!source) status = t('knn.none');
  else status = t('knn.uses', { name: source.name, firstCopy });

  return (
    <fieldset className="controls" disabled={disabled} data-testid="knn-controls">
      <legend>kNN-LM</legend>
      <div className="controls-body">
        <div className="controls-row">
          <Switch
            label={t('settings.knnColumn')}
            checked={enabled}
            disabled={!ready || knn.loading}
            onChange={(on) => void client.setKnnEnabled(on)}
            hint={t('settings.knnHint')}
          />
        </div>
        <p className="hint" data-testid="knn-status">
          {status}
        </p>
        {retrieval?.knnDefault?.stored && !knn.loading && (
          <p className="hint">
            {t('knn.builtinSize', { size: formatBytes(retrieval.knnDefault.bytes) })}{' '}
            <button
              type="button"
              className="link-button"
              onClick={() => {
                if (window.confirm(t('knn.confirmDelete', { name: retrieval.knnDefault!.name }))) void client.removeKnnDefault();
              }}
            >
              {t('knn.deleteIt')}
            </button>
          </p>
        )}
        {knn.loading && (knn.progress ? <ProgressBar progress={knn.progress} testId="knn-progress" /> : <p className="muted">{t('knn.loading')}</p>)}
        {knn.error && enabled && (
          <p className="error" role="alert" data-testid="knn-error">
            {knn.error}
          </p>
        )}
        <div className="controls-row">
          <NumberField
            label={t('settings.lambda')}
            value={value.lambda}
            min={0}
            max={1}
            step={0.05}
            disabled={!enabled}
            title="p = λ·p_kNN + (1 − λ)·p_LM"
            onChange={(v) => set('lambda', v)}
          />
          <NumberField label={t('settings.knnK')} value={value.k} min={1} max={MAX_KNN_K} disabled={!enabled} onChange={(v) => set('k', Math.round(v))} />
          <NumberField
            label={t('settings.knnT')}
            value={value.temperature}
            min={0.1}
            max={1000}
            step={0.5}
            disabled={!enabled}
            title={t('settings.knnTTitle')}
            onChange={(v) => set('temperature', v)}
          />
        </div>
        <div className="controls-row">
          <NumberField
            label={t('settings.knnPointers')}
            value={value.pointers ?? 0}
            min={0}
            max={MAX_KNN_K}
            disabled={!enabled}
            title={t('settings.knnPointersTitle')}
            onChange={(v) => set('pointers', Math.round(v))}
          />
        </div>
        <div className="controls-row">
          <NumberField
            label={t('settings.knnSkipAbove')}
            value={value.skipAbove ?? 0}
            min={0}
            max={1}
            step={0.05}
            disabled={!enabled}
            title={t('settings.knnSkipAboveTitle')}
            onChange={(v) => set('skipAbove', v)}
          />
          <Switch
            label={t('settings.knnLambdaByDistance')}
            checked={Boolean(value.lambdaTable)}
            disabled={!enabled}
            onChange={(on) => set('lambdaTable', on ? { edges: [...DEFAULT_LAMBDA_TABLE.edges], lambdas: [...DEFAULT_LAMBDA_TABLE.lambdas] } : undefined)}
            hint={t('settings.knnLambdaByDistanceHint')}
          />
        </div>
        <div className="controls-row">
          <Switch
            label={t('settings.knnExact')}
            checked={value.search === 'exact'}
            disabled={!enabled}
            onChange={(on) => set('search', on ? 'exact' : undefined)}
            hint={t('settings.knnExactHint')}
          />
        </div>
      </div>
    </fieldset>
  );
}
