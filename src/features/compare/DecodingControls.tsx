import { useId } from 'react';
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
        <NumberField
          label="Repetition penalty"
          value={value.repetitionPenalty}
          min={1}
          max={3}
          step={0.05}
          title="Divides the score of every token already in the text (1 = off), as repetition_penalty in Hugging Face generate"
          onChange={(v) => set('repetitionPenalty', v)}
        />
        <NumberField
          label="No-repeat n-gram"
          value={value.noRepeatNgramSize}
          min={0}
          max={8}
          title="No run of this many tokens is written twice (0 = off), as no_repeat_ngram_size in Hugging Face generate"
          onChange={(v) => set('noRepeatNgramSize', Math.round(v))}
        />
        <div className="field-wide">
        <Switch
          label="Never write <unk>"
          checked={value.suppressUnk}
          onChange={(v) => set('suppressUnk', v)}
          hint="<unk> stands for a word outside the 8,192-token vocabulary. Perplexity still counts it."
        />
        </div>
      </div>
    </fieldset>
  );
}
