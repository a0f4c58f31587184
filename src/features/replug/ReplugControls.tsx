import { useTranslation } from 'react-i18next';
import { DEFAULT_REPLUG_SETTINGS, MAX_REPLUG_K, type ReplugSettings } from '../../client';
import { NumberField } from '../../ui/NumberField';
import { RetrieverSelect } from '../../ui/RetrieverSelect';
import { Switch } from '../../ui/Switch';
import { MAX_ICRALM_QUERY, MAX_ICRALM_STRIDE } from '../icralm/IcRalmControls';

export type ReplugColumnSettings = ReplugSettings & { enabled: boolean };

export const DEFAULT_REPLUG_COLUMN: ReplugColumnSettings = { enabled: false, ...DEFAULT_REPLUG_SETTINGS };

/** The REPLUG column's switch, k, τ, s, l and retriever (src/core/replug/types.ts). */
export function ReplugControls({
  value,
  onChange,
  activeDatastoreName,
  disabled,
}: {
  value: ReplugColumnSettings;
  onChange: (value: ReplugColumnSettings) => void;
  /** null: no datastore is active, so there is nothing to retrieve from */
  activeDatastoreName: string | null;
  disabled: boolean;
}) {
  const { t } = useTranslation();
  const set = <K extends keyof ReplugColumnSettings>(key: K, v: ReplugColumnSettings[K]) => onChange({ ...value, [key]: v });
  return (
    <fieldset className="controls" disabled={disabled} data-testid="replug-controls">
      <legend>REPLUG</legend>
      <div className="controls-body">
        <div className="controls-row">
          <Switch label={t('replug.column')} checked={value.enabled} onChange={(on) => set('enabled', on)} hint={t('replug.hint')} />
        </div>
        {value.enabled && (
          <p className={activeDatastoreName ? 'hint' : 'error'} role={activeDatastoreName ? undefined : 'alert'} data-testid="replug-status">
            {activeDatastoreName ? t('replug.from', { name: activeDatastoreName, k: value.k }) : t('replug.none')}
          </p>
        )}
        <div className="controls-row">
          <NumberField label={t('replug.k')} value={value.k} min={1} max={MAX_REPLUG_K} disabled={!value.enabled} title={t('replug.kTitle')} onChange={(v) => set('k', Math.round(v))} />
          <NumberField label={t('replug.temperature')} value={value.temperature} min={0.01} max={10} step={0.01} disabled={!value.enabled} title={t('replug.temperatureTitle')} onChange={(v) => set('temperature', v)} />
        </div>
        <div className="controls-row">
          <NumberField label={t('replug.stride')} value={value.stride} min={1} max={MAX_ICRALM_STRIDE} disabled={!value.enabled} title={t('settings.strideTitle')} onChange={(v) => set('stride', Math.round(v))} />
          <NumberField label={t('replug.queryLength')} value={value.queryLength} min={1} max={MAX_ICRALM_QUERY} disabled={!value.enabled} title={t('settings.queryLengthTitle')} onChange={(v) => set('queryLength', Math.round(v))} />
        </div>
        <div className="controls-row">
          <RetrieverSelect label={t('retriever.replug')} value={value.retriever ?? 'dense'} disabled={!value.enabled} onChange={(v) => set('retriever', v)} />
        </div>
      </div>
    </fieldset>
  );
}
