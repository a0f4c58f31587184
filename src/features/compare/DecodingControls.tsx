import { useId } from 'react';
import { useTranslation } from 'react-i18next';
import type { DecodingSettings } from '../../client';
import { NumberField } from '../../ui/NumberField';
import { Switch } from '../../ui/Switch';

export function DecodingControls({
  value,
  onChange,
  disabled,
}: {
  value: DecodingSettings;
  onChange: (value: DecodingSettings) => void;
  disabled: boolean;
}) {
  const id = useId();
  const { t } = useTranslation();
  const set = <K extends keyof DecodingSettings>(key: K, v: DecodingSettings[K]) => onChange({ ...value, [key]: v });
  const sampling = value.strategy === 'sample';
  return (
    <fieldset className="controls" disabled={disabled}>
      <legend>{t('settings.decoding')}</legend>
      <div className="controls-body controls-grid">
        <div className="field">
          <label htmlFor={`${id}-strategy`}>{t('settings.strategy')}</label>
          <select
            id={`${id}-strategy`}
            value={value.strategy}
            onChange={(e) => set('strategy', e.target.value as DecodingSettings['strategy'])}
          >
            <option value="greedy">{t('settings.greedy')}</option>
            <option value="sample">{t('settings.sample')}</option>
          </select>
        </div>
        <NumberField label={t('settings.maxTokens')} value={value.maxTokens} min={1} max={512} onChange={(v) => set('maxTokens', Math.round(v))} />
        <NumberField label={t('settings.temperature')} value={value.temperature} min={0.05} max={2} step={0.05} disabled={!sampling} onChange={(v) => set('temperature', v)} />
        <NumberField label={t('settings.topK')} value={value.topK} min={0} max={8192} disabled={!sampling} title={t('settings.topKTitle')} onChange={(v) => set('topK', Math.round(v))} />
        <NumberField label={t('settings.topP')} value={value.topP} min={0.05} max={1} step={0.05} disabled={!sampling} onChange={(v) => set('topP', v)} />
        <NumberField label={t('settings.seed')} value={value.seed} min={0} max={2 ** 31 - 1} disabled={!sampling} onChange={(v) => set('seed', Math.round(v))} />
        <NumberField
          label={t('settings.repetitionPenalty')}
          value={value.repetitionPenalty}
          min={1}
          max={3}
          step={0.05}
          title={t('settings.repetitionPenaltyTitle')}
          onChange={(v) => set('repetitionPenalty', v)}
        />
        <NumberField
          label={t('settings.noRepeat')}
          value={value.noRepeatNgramSize}
          min={0}
          max={8}
          title={t('settings.noRepeatTitle')}
          onChange={(v) => set('noRepeatNgramSize', Math.round(v))}
        />
        <div className="field-wide">
        <Switch
          label={t('settings.suppressUnk')}
          checked={value.suppressUnk}
          onChange={(v) => set('suppressUnk', v)}
          hint={t('settings.suppressUnkHint')}
        />
        </div>
      </div>
    </fieldset>
  );
}
