import { useMemo, type ReactNode } from 'react';
import type { TFunction } from 'i18next';
import { useTranslation } from 'react-i18next';
import { qualityMetrics, type ColumnControls, type ModelInfo, type ModelKey, type RunState } from '../../client';
import { chunkSequence, detokenizeTokens, plainSegments } from './chunks';
import { Segments, type TokenPicker } from './Segments';

/** The manifest says "6.9M params"; only the number is data, the word is UI. */
function parameters(text: string, t: TFunction): string {
  const match = /^(\S+) params$/.exec(text);
  return match ? t('column.params', { value: match[1] }) : text;
}

function testPerplexity(model: ModelInfo, t: TFunction): string | null {
  const m = model.metrics.wt2_test;
  return m ? t('column.testPerplexity', { value: m.word_ppl.toFixed(1) }) : null;
}

/** What a column's experiment controls did, as short badges (docs/controls.md), so a class sees which column is the control. */
function controlBadges(controls: ColumnControls | undefined, t: TFunction): { key: string; text: string }[] {
  if (!controls) return [];
  const badges: { key: string; text: string }[] = [];
  if (controls.random) badges.push({ key: 'random', text: t('experiments.badgeRandom') });
  const sources = controls.promptSources;
  if (sources) {
    const text = !sources.known
      ? t('experiments.badgeUnknown')
      : sources.documents.length > 0
        ? t('experiments.badgeExcluded', { titles: sources.documents.map((d) => d.title || `#${d.docId}`).join(', ') })
        : sources.pieces === 0
          ? t('experiments.badgeTooShort')
          : t('experiments.badgeNotFound');
    badges.push({ key: 'leakage', text });
  }
  return badges;
}

function metricsTitle(model: ModelInfo, t: TFunction): string {
  const lines = Object.entries(model.metrics).map(([k, m]) => t('column.metricsLine', { name: k, word: m.word_ppl.toFixed(2), token: m.token_ppl.toFixed(2) }));
  return lines.length ? `${t('column.metricsTitle')}\n${lines.join('\n')}` : t('column.noMetrics');
}

function statusText(run: RunState | undefined, generating: boolean, t: TFunction): string {
  if (!run) return generating ? t('column.waiting') : '';
  if (run.status === 'waiting') return t('column.waitingTurn');
  if (run.status === 'running') return t('column.writing');
  if (run.status === 'stopped') return t('column.stopped');
  if (run.status === 'error') return t('column.failed');
  return run.ms !== null ? t('column.tokensIn', { count: run.generated.length, seconds: (run.ms / 1000).toFixed(2) }) : t('column.tokens', { count: run.generated.length });
}

/**
 * The NVIDIA RETRO study's text-quality measures of this one continuation, so a class sees what
 * retrieval and the decoding options do to repetition, diversity and <unk>.
 */
function TextQuality({ run }: { run: RunState }) {
  const { t } = useTranslation();
  const ids = run.generated.map((t) => t.id);
  const m = qualityMetrics([ids], 0);
  const pct = (x: number) => `${Math.round(x * 100)}%`;
  return (
    <span className="text-quality" data-testid="text-quality">
      {' · '}
      <abbr title={t('column.repeatsTitle')}>{t('column.repeats')}</abbr> {pct(m.repetition4)}
      {' · '}
      <abbr title={t('column.distinctTitle')}>{t('column.distinct')}</abbr> {m.distinct2.toFixed(2)}
      {' · '}
      <abbr title={t('column.unkTitle')}>&lt;unk&gt;</abbr> {pct(m.unkRate)}
    </span>
  );
}

/** Column titles; a model kind without one shows its `name` prop or its key. */
const TITLES: Partial<Record<ModelKey, string>> = { gpt: 'GPT', retro: 'RETRO', knnlm: 'kNN-LM' };

export function OutputColumn({
  modelKey,
  model,
  run,
  generating,
  selectedChunk,
  onSelectChunk,
  name,
  selectedToken = null,
  onSelectToken,
  body,
  chunkHintId,
}: {
  modelKey: ModelKey;
  model: ModelInfo | undefined;
  run: RunState | undefined;
  generating: boolean;
  selectedChunk: number | null;
  onSelectChunk: (chunk: number) => void;
  /** column title (default: the model kind's name) */
  name?: string;
  selectedToken?: number | null;
  /** Makes generated tokens clickable once the column has finished (what the model predicted there). */
  onSelectToken?: (index: number) => void;
  /** Draws the run's text instead of the default (the In-Context RALM column's passage marks); gets the token picker. */
  body?: (picker: TokenPicker | undefined) => ReactNode;
  /** id of the text describing what a chunk's neighbour button does */
  chunkHintId?: string;
}) {
  const { t } = useTranslation();
  const title = name ?? TITLES[modelKey] ?? modelKey;
  const headingId = `column-${modelKey}`;
  const tps = run?.tokensPerSecond;
  const reported = new Set(run?.chunks.map((c) => c.chunk) ?? []);
  const chunkSize = run?.chunk ?? null;
  const generated = run?.generated;
  const shown = useMemo(() => (generated ? detokenizeTokens(generated) : []), [generated]);
  const badges = controlBadges(run?.controls, t);
  const perplexity = model ? testPerplexity(model, t) : null;
  const picker: TokenPicker | undefined =
    onSelectToken && run && run.status !== 'running' && run.status !== 'waiting' ? { shown, selected: selectedToken, onSelect: onSelectToken, column: title } : undefined;

  return (
    <section className={`column column-${modelKey}`} aria-labelledby={headingId} data-testid={`column-${modelKey}`}>
      <header className="column-header">
        <h2 id={headingId}>{title}</h2>
        {/* The perplexity is the number a class compares between columns: it has a line of its own,
            so a narrow column cuts the model's name, never the number. */}
        <span className="model-meta" title={model ? metricsTitle(model, t) : undefined}>
          {model ? (
            <>
              <span className="model-name">{`${model.name} · ${parameters(model.parameters, t)}`}</span>
              {perplexity !== null && <span className="model-perplexity">{perplexity}</span>}
            </>
          ) : (
            t('column.loading')
          )}
        </span>
        <span className="tps" data-testid={`tps-${modelKey}`} aria-label={t('column.tps', { title })}>
          {t('column.tpsValue', { value: tps != null ? tps.toFixed(tps < 10 ? 1 : 0) : '–' })}
        </span>
      </header>
      {badges.length > 0 && (
        <ul className="control-badges" aria-label={t('experiments.badgesLabel')} data-testid={`controls-${modelKey}`}>
          {badges.map((b) => (
            <li key={b.key} className={`control-badge control-badge-${b.key}`} data-testid={`badge-${b.key}`}>
              {b.text}
            </li>
          ))}
        </ul>
      )}
      {/* The models write English whatever the UI language: screen readers need to know. */}
      <div
        lang="en"
        className={`output${run?.status === 'running' ? ' output-running' : ''}`}
        data-testid={`output-${modelKey}`}
        data-status={run?.status ?? 'idle'}
        data-generated={run?.generated.length ?? 0}
      >
        {!run || (run.prompt.length === 0 && run.generated.length === 0) ? (
          <p className="placeholder">{run ? statusText(run, generating, t) : t('column.placeholder', { title })}</p>
        ) : body ? (
          body(picker)
        ) : chunkSize === null ? (
          <Segments segments={plainSegments(run)} picker={picker} />
        ) : (
          chunkSequence(run, chunkSize).map((c) => {
            const clickable = reported.has(c.index);
            const selected = selectedChunk === c.index;
            const className = `chunk chunk-${c.index % 2 ? 'odd' : 'even'}${clickable ? ' chunk-retrieved' : ''}${selected ? ' chunk-selected' : ''}`;
            // The chunk reads as its words; the action is the number at its start, a real button
            // (a label on the whole chunk would replace its words for a screen reader).
            return clickable ? (
              <span key={c.index} className={className} data-chunk={c.index} onClick={() => onSelectChunk(c.index)}>
                <button
                  type="button"
                  className="chunk-mark chunk-button"
                  aria-pressed={selected}
                  aria-label={t('column.chunkButton', { index: c.index })}
                  aria-describedby={chunkHintId}
                  data-testid="chunk-button"
                  onClick={(event) => {
                    // the chunk's own click handler would toggle it back
                    event.stopPropagation();
                    onSelectChunk(c.index);
                  }}
                >
                  {c.index}
                </button>
                <Segments segments={c.segments} picker={picker} />
              </span>
            ) : (
              <span key={c.index} className={className} data-chunk={c.index}>
                <span className="chunk-mark" aria-hidden="true">
                  {c.index}
                </span>
                <Segments segments={c.segments} picker={picker} />
              </span>
            );
          })
        )}
      </div>
      <footer className="column-footer">
        {statusText(run, generating, t)}
        {run && run.status !== 'running' && run.generated.length >= 8 ? <TextQuality run={run} /> : null}
        {run && run.generated.some((token) => token.searched === false && !token.knnSkipped) && (
          <span data-testid="searches-skipped">
            {' · '}
            {t('column.searchesSkipped', { skipped: run.generated.filter((token) => token.searched === false && !token.knnSkipped).length, count: run.generated.length })}
          </span>
        )}
        {run && run.chunks.some((c) => c.flare) && <FlareFooter run={run} />}
        {run && run.generated.some((token) => token.knnSkipped) && (
          <span data-testid="searches-saved">
            {' · '}
            {t('column.searchesSaved', { saved: run.generated.filter((token) => token.knnSkipped).length, count: run.generated.length })}
          </span>
        )}
      </footer>
    </section>
  );
}

/** FLARE's cost: how many of its look-aheads made it retrieve, and retrievals per 100 tokens written. */
function FlareFooter({ run }: { run: RunState }) {
  const { t } = useTranslation();
  const decisions = run.chunks.filter((c) => c.flare);
  const retrieved = decisions.filter((c) => c.flare!.retrieved).length;
  const per100 = run.generated.length > 0 ? ((100 * retrieved) / run.generated.length).toFixed(1) : '–';
  return (
    <span data-testid="flare-footer" data-retrieved={retrieved} data-decisions={decisions.length}>
      {' · '}
      {t('flare.footer', { retrieved, decisions: decisions.length, per100 })}
    </span>
  );
}
