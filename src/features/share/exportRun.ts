import { detokenizeWikiText, qualityMetrics, type ModelKey, type RunState } from '../../client';
import type { CompareSettings } from '../compare/settings';

/** One run as lesson notes: everything needed to discuss it later without the app open. */
export interface RunExport {
  app: 'RetroLab';
  exportedAt: string;
  prompt: string;
  datastore: string | null;
  lesson: { id: string; title: string; step: number } | null;
  settings: CompareSettings;
  columns: ColumnExport[];
}

export interface ColumnExport {
  key: ModelKey;
  title: string;
  status: RunState['status'];
  text: string;
  tokens: number;
  seconds: number | null;
  tokensPerSecond: number | null;
  quality: { repeated4grams: number; distinct2: number; unkRate: number } | null;
  retrievals: { tokens: [number, number]; query: string; neighbours: { title: string; distance: number; bm25?: number; text: string }[] }[];
}

const text = (tokens: { text: string }[]) => detokenizeWikiText(tokens.map((t) => t.text).join(''));

export function exportRun(input: {
  prompt: string;
  datastore: string | null;
  lesson: RunExport['lesson'];
  settings: CompareSettings;
  runs: Partial<Record<ModelKey, RunState>>;
  titles: Record<ModelKey, string>;
  now?: Date;
}): RunExport {
  const columns: ColumnExport[] = [];
  for (const [key, run] of Object.entries(input.runs) as [ModelKey, RunState | undefined][]) {
    if (!run) continue;
    const sequence = [...run.prefix, ...run.prompt, ...run.generated];
    const m = run.generated.length > 0 ? qualityMetrics([run.generated.map((t) => t.id)], 0) : null;
    columns.push({
      key,
      title: input.titles[key],
      status: run.status,
      text: text(run.generated),
      tokens: run.generated.length,
      seconds: run.ms === null ? null : run.ms / 1000,
      tokensPerSecond: run.tokensPerSecond,
      quality: m && { repeated4grams: m.repetition4, distinct2: m.distinct2, unkRate: m.unkRate },
      retrievals: run.chunks.map((c) => ({
        tokens: [c.start, c.end],
        query: text(sequence.slice(c.start, c.end)),
        neighbours: c.neighbours.map((n) => ({ title: detokenizeWikiText(n.title), distance: n.distance, ...(n.retriever === 'bm25' && n.score !== undefined ? { bm25: n.score } : {}), text: text(n.tokens) })),
      })),
    });
  }
  return {
    app: 'RetroLab',
    exportedAt: (input.now ?? new Date()).toISOString(),
    prompt: input.prompt,
    datastore: input.datastore,
    lesson: input.lesson,
    settings: input.settings,
    columns,
  };
}

const pct = (x: number) => `${Math.round(x * 100)}%`;
/** Markdown has no escape for a line break inside a quote: each line is quoted on its own. */
const quote = (s: string) => s.split('\n').map((line) => `> ${line}`).join('\n');

export function runToMarkdown(run: RunExport): string {
  const d = run.settings.decoding;
  const lines = [
    `# RetroLab run, ${run.exportedAt.slice(0, 16).replace('T', ' ')} UTC`,
    '',
    ...(run.lesson ? [`Lesson: ${run.lesson.title}, step ${run.lesson.step + 1}`, ''] : []),
    `Datastore: ${run.datastore ?? 'none'}`,
    '',
    `Decoding: ${d.strategy === 'greedy' ? 'greedy' : `sample, temperature ${d.temperature}, top-k ${d.topK}, top-p ${d.topP}, seed ${d.seed}`}; ` +
      `${d.maxTokens} tokens at most; repetition penalty ${d.repetitionPenalty}; no-repeat n-gram ${d.noRepeatNgramSize}; <unk> ${d.suppressUnk ? 'never written' : 'allowed'}`,
    '',
    '## Prompt',
    '',
    quote(run.prompt),
  ];
  for (const c of run.columns) {
    lines.push('', `## ${c.title}`, '', quote(c.text || '(nothing written)'), '');
    const facts = [`${c.tokens} tokens`, c.status];
    if (c.seconds !== null) facts.push(`${c.seconds.toFixed(2)} s`);
    if (c.quality) facts.push(`4-gram repeats ${pct(c.quality.repeated4grams)}`, `distinct-2 ${c.quality.distinct2.toFixed(2)}`, `<unk> ${pct(c.quality.unkRate)}`);
    lines.push(facts.join(' · '));
    if (c.retrievals.length) {
      lines.push('', '| tokens | query | neighbour | distance |', '|---|---|---|---|');
      for (const r of c.retrievals) {
        for (const n of r.neighbours) {
          lines.push(`| ${r.tokens[0]}–${r.tokens[1] - 1} | ${cell(r.query)} | ${cell(`${n.title}: ${n.text}`)} | ${n.bm25 !== undefined ? `BM25 ${n.bm25.toFixed(2)}` : Number.isFinite(n.distance) ? n.distance.toFixed(3) : 'random'} |`);
        }
      }
    }
  }
  return `${lines.join('\n')}\n`;
}

function cell(s: string): string {
  return s.replace(/\s+/g, ' ').replace(/\|/g, '\\|').trim();
}

/** Saves text as a file through the browser's download (nothing leaves the machine). */
export function download(name: string, type: string, content: string): void {
  const url = URL.createObjectURL(new Blob([content], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
