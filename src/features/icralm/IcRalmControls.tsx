import { useTranslation } from 'react-i18next';
import type { IcRalmSettings } from '../../client';
import { NumberField } from '../../ui/NumberField';
import { RetrieverSelect } from '../../ui/RetrieverSelect';
import { Switch } from '../../ui/Switch';

export type IcRalmColumnSettings = IcRalmSettings & { enabled: boolean };

/** Largest s offered: with a 64-token passage, s ≤ 64 keeps at least 128 tokens of the text in view. */
export const MAX_ICRALM_STRIDE = 64;
export const MAX_ICRALM_QUERY = 128;

/** The In-Context RALM column's switch, s, l and retriever (src/core/icralm/types.ts). */
export function IcRalmControls({
  value,
  onChange,
  activeDatastoreName,
  disabled,
}: {
  value: IcRalmColumnSettings;
  onChange: (value: IcRalmColumnSettings) => void;
  /** null: no datastore is active, so there is nothing to retrieve from */
  activeDatastoreName: string | null;
  disabled: boolean;
}) {
  const { t } = useTranslation();
  const set = <K extends keyof IcRalmColumnSettings>(key: K, v: IcRalmColumnSettings[K]) => onChange({ ...value, [key]: v });
  return (
    <fieldset className="controls" disabled={disabled} data-testid="icralm-controls">
      <legend>In-Context RALM</legend>
      <div className="controls-body">
        <div className="controls-row">
          <Switch
            label={t('settings.icralmColumn')}
            checked={value.enabled}
            onChange={(on) => set('enabled', on)}
            hint={t('settings.icralmHint')}
          />
        </div>
        {value.enabled && (
          <p className={activeDatastoreName ? 'hint' : 'error'} role={activeDatastoreName ? undefined : 'alert'} data-testid="icralm-status">
            {activeDatastoreName
              ? t('settings.icralmFrom', { name: activeDatastoreName })
              : t('settings.icralmNone')}
          </p>
        )}
        <div className="controls-row">
          <NumberField
            label={t('settings.stride')}
            value={value.stride}
            min={1}
            max={MAX_ICRALM_STRIDE}
            disabled={!value.enabled}
            title={t('settings.strideTitle')}
            onChange={(v) => set('stride', Math.round(v))}
          />
          <NumberField
            label={t('settings.queryLength')}
            value={value.queryLength}
            min={1}
            max={MAX_ICRALM_QUERY}
            disabled={!value.enabled}
            title={t('settings.queryLengthTitle')}
            onChange={(v) => set('queryLength', Math.round(v))}
          />
        </div>
        <div className="controls-row">
          <RetrieverSelect label={t('retriever.icralm')} value={value.retriever ?? 'dense'} disabled={!value.enabled} onChange={(v) => set('retriever', v)} />
        </div>
      </div>
    </fieldset>
  );
}
