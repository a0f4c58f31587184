import { useTranslation } from 'react-i18next';
import { DEFAULT_FLARE_SETTINGS, MAX_FLARE_LOOKAHEAD, type FlareSettings } from '../../client';
import { NumberField } from '../../ui/NumberField';
import { Switch } from '../../ui/Switch';

export type FlareColumnSettings = FlareSettings & { enabled: boolean };

export const DEFAULT_FLARE_COLUMN: FlareColumnSettings = { enabled: false, ...DEFAULT_FLARE_SETTINGS };

/** The FLARE column's switch, look-ahead, θ, β and l (src/core/flare/types.ts). */
export function FlareControls({
  value,
  onChange,
  activeDatastoreName,
  disabled,
}: {
  value: FlareColumnSettings;
  onChange: (value: FlareColumnSettings) => void;
  /** null: no datastore is active, so there is nothing to retrieve from */
  activeDatastoreName: string | null;
  disabled: boolean;
}) {
  const { t } = useTranslation();
  const set = <K extends keyof FlareColumnSettings>(key: K, v: FlareColumnSettings[K]) => onChange({ ...value, [key]: v });
  return (
    <fieldset className="controls" disabled={disabled} data-testid="flare-controls">
      <legend>FLARE</legend>
      <div className="controls-body">
        <div className="controls-row">
          <Switch label={t('flare.column')} checked={value.enabled} onChange={(on) => set('enabled', on)} hint={t('flare.hint')} />
        </div>
        {value.enabled && (
          <p className={activeDatastoreName ? 'hint' : 'error'} role={activeDatastoreName ? undefined : 'alert'} data-testid="flare-status">
            {activeDatastoreName ? t('flare.from', { name: activeDatastoreName }) : t('flare.none')}
          </p>
        )}
        <div className="controls-row">
          <NumberField label={t('flare.lookahead')} value={value.lookahead} min={1} max={MAX_FLARE_LOOKAHEAD} disabled={!value.enabled} title={t('flare.lookaheadTitle')} onChange={(v) => set('lookahead', Math.round(v))} />
          <NumberField label={t('flare.threshold')} value={value.threshold} min={0} max={1} step={0.01} disabled={!value.enabled} title={t('flare.thresholdTitle')} onChange={(v) => set('threshold', v)} />
        </div>
        <div className="controls-row">
          <NumberField label={t('flare.mask')} value={value.maskBelow} min={0} max={1} step={0.01} disabled={!value.enabled} title={t('flare.maskTitle')} onChange={(v) => set('maskBelow', v)} />
          <NumberField label={t('flare.queryLength')} value={value.queryLength} min={1} max={256} disabled={!value.enabled} title={t('settings.queryLengthTitle')} onChange={(v) => set('queryLength', Math.round(v))} />
        </div>
      </div>
    </fieldset>
  );
}
