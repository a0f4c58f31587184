import { useId } from 'react';
import type { DecodingSettings } from '../../client';
import { NumberField } from '../../ui/NumberField';

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
  const set = <K extends keyof DecodingSettings>(key: K, v: DecodingSettings[K]) => onChange({ ...value, [key]: v });
  const sampling = value.strategy === 'sample';
  return (
    <fieldset className="controls" disabled={disabled}>
      <legend>Decoding (same for every model)</legend>
      <div className="controls-body controls-grid">
        <div className="field">
          <label htmlFor={`${id}-strategy`}>Strategy</label>
          <select
            id={`${id}-strategy`}
            value={value.strategy}
            onChange={(e) => set('strategy', e.target.value as DecodingSettings['strategy'])}
          >
            <option value="greedy">Greedy</option>
            <option value="sample">Sample</option>
          </select>
        </div>
        <NumberField label="Max tokens" value={value.maxTokens} min={1} max={512} onChange={(v) => set('maxTokens', Math.round(v))} />
        <NumberField label="Temperature" value={value.temperature} min={0.05} max={2} step={0.05} disabled={!sampling} onChange={(v) => set('temperature', v)} />
        <NumberField label="Top-k" value={value.topK} min={0} max={8192} disabled={!sampling} title="0 = no top-k cut" onChange={(v) => set('topK', Math.round(v))} />
        <NumberField label="Top-p" value={value.topP} min={0.05} max={1} step={0.05} disabled={!sampling} onChange={(v) => set('topP', v)} />
        <NumberField label="Seed" value={value.seed} min={0} max={2 ** 31 - 1} disabled={!sampling} onChange={(v) => set('seed', Math.round(v))} />
      </div>
    </fieldset>
  );
}
