import { useTranslation } from 'react-i18next';
import { Switch } from '../../ui/Switch';
import type { CompareSettings } from './settings';

/** A column's random switch: where its setting lives in the compare settings, and whether the column runs. */
interface RandomSwitch {
  column: string;
  checked: boolean;
  /** why it cannot be switched now (the column is off), or null */
  off: string | null;
  onChange: (on: boolean) => void;
}

/**
 * The experiment controls in one place (docs/controls.md): each retrieval column's random-neighbour
 * switch, and the leakage switch that excludes the prompt's own document from every column.
 */
export function ExperimentControls({
  settings,
  onChange,
  knnOn,
  disabled,
}: {
  settings: CompareSettings;
  onChange: (update: (s: CompareSettings) => CompareSettings) => void;
  /** the kNN-LM column runs (its switch lives in the client: it loads a datastore) */
  knnOn: boolean;
  disabled: boolean;
}) {
  const { t } = useTranslation();
  const off = (column: string, on: boolean) => (on ? null : t('experiments.columnOff', { column }));
  const switches: RandomSwitch[] = [
    {
      column: 'RETRO',
      checked: settings.retro.randomNeighbours === true,
      off: settings.retro.retrieval ? null : t('experiments.columnOff', { column: t('settings.retrieval') }),
      onChange: (v) => onChange((s) => ({ ...s, retro: { ...s.retro, randomNeighbours: v } })),
    },
    {
      column: 'kNN-LM',
      checked: settings.knn.randomNeighbours === true,
      off: off('kNN-LM', knnOn),
      onChange: (v) => onChange((s) => ({ ...s, knn: { ...s.knn, randomNeighbours: v } })),
    },
    {
      column: 'In-Context RALM',
      checked: settings.icralm.randomNeighbours === true,
      off: off('In-Context RALM', settings.icralm.enabled),
      onChange: (v) => onChange((s) => ({ ...s, icralm: { ...s.icralm, randomNeighbours: v } })),
    },
    {
      column: 'REPLUG',
      checked: settings.replug.randomNeighbours === true,
      off: off('REPLUG', settings.replug.enabled),
      onChange: (v) => onChange((s) => ({ ...s, replug: { ...s.replug, randomNeighbours: v } })),
    },
    {
      column: 'FLARE',
      checked: settings.flare.randomNeighbours === true,
      off: off('FLARE', settings.flare.enabled),
      onChange: (v) => onChange((s) => ({ ...s, flare: { ...s.flare, randomNeighbours: v } })),
    },
  ];
  return (
    <fieldset className="controls" disabled={disabled} data-testid="experiment-controls">
      <legend>{t('experiments.legend')}</legend>
      <div className="controls-body">
        <p className="hint">{t('experiments.intro')}</p>
        <div className="controls-stack" role="group" aria-label={t('experiments.random')}>
          {switches.map((s) => (
            <Switch key={s.column} label={t('experiments.randomFor', { column: s.column })} checked={s.checked} onChange={s.onChange} hint={s.off ?? undefined} />
          ))}
        </div>
        <p className="hint">{t('experiments.randomHint')}</p>
        <div className="controls-row">
          <Switch
            label={t('experiments.excludePrompt')}
            checked={settings.experiments.excludePromptDocument}
            onChange={(v) => onChange((s) => ({ ...s, experiments: { ...s.experiments, excludePromptDocument: v } }))}
            hint={t('experiments.excludePromptHint')}
          />
        </div>
      </div>
    </fieldset>
  );
}
