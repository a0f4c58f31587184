import { useTranslation } from 'react-i18next';
import type { ModelInfo } from '../../client';
import { NumberField } from '../../ui/NumberField';
import { Switch } from '../../ui/Switch';
import type { CompareSettings, Exclusion } from './settings';

type Retro = CompareSettings['retro'];

export function RetroControls({
  value,
  onChange,
  model,
  activeDatastoreId,
  disabled,
}: {
  value: Retro;
  onChange: (value: Retro) => void;
  model: ModelInfo | undefined;
  activeDatastoreId: string | null;
  disabled: boolean;
}) {
  const { t } = useTranslation();
  const set = <K extends keyof Retro>(key: K, v: Retro[K]) => onChange({ ...value, [key]: v });
  const chunk = model?.chunk ?? 32;
  const maxK = model?.neighbours ?? 2;
  const exclusions = value.exclusions.filter((e) => e.datastoreId === activeDatastoreId);
  const remove = (e: Exclusion) => set('exclusions', value.exclusions.filter((x) => x !== e));
  return (
    <fieldset className="controls" disabled={disabled}>
      <legend>{t('settings.retro')}</legend>
      <div className="controls-body">
        <div className="controls-row">
          <Switch label={t('settings.retrieval')} checked={value.retrieval} onChange={(v) => set('retrieval', v)} />
          <NumberField
            label={t('settings.k')}
            value={Math.min(value.k, maxK)}
            min={1}
            max={maxK}
            disabled={!value.retrieval}
            onChange={(v) => set('k', Math.round(v))}
          />
          <NumberField
            label={t('settings.step')}
            value={value.retrievalStep ?? chunk}
            min={1}
            max={chunk * 4}
            disabled={!value.retrieval}
            title={t('settings.stepTitle', { chunk })}
            onChange={(v) => set('retrievalStep', Math.round(v))}
          />
        </div>
        <div className="controls-row">
          <Switch
            label={t('settings.leftPad')}
            checked={value.leftPad}
            disabled={!value.retrieval}
            onChange={(v) => set('leftPad', v)}
            hint={t('settings.leftPadHint', { chunk })}
          />
          <Switch
            label={t('settings.retroPlusPlus')}
            checked={value.retroPlusPlus}
            disabled={!value.retrieval}
            onChange={(v) => set('retroPlusPlus', v)}
            hint={t('settings.retroPlusPlusHint')}
          />
        </div>
        <div className="exclusions" aria-live="polite">
          <span className="field-label">{t('settings.excluded')}</span>
          {exclusions.length === 0 ? (
            <span className="hint">{t('settings.noneExcluded')}</span>
          ) : (
            <ul className="chips">
              {exclusions.map((e) => (
                <li key={`${e.datastoreId}:${e.docId}`} className="chip">
                  {e.title || t('neighbours.document', { id: e.docId })}
                  <button type="button" className="icon-button" aria-label={t('settings.stopExcluding', { title: e.title })} onClick={() => remove(e)}>
                    ×
                  </button>
                </li>
              ))}
            </ul>
          )}
        </div>
      </div>
    </fieldset>
  );
}
