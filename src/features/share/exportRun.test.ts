import { describe, expect, it } from 'vitest';
import type { RunState } from '../../client';
import { DEFAULT_SETTINGS } from '../compare/settings';
import { exportRun, runToMarkdown } from './exportRun';

const tok = (id: number, text: string) => ({ id, text });

function run(generated: RunState['generated'], chunks: RunState['chunks'] = []): RunState {
  return { prefix: [], paddingId: null, prompt: [tok(5, 'The'), tok(6, ' ship')], generated, chunk: 8, chunks, tokensPerSecond: 20, status: 'done', ms: 1500 };
}

describe('exporting a run', () => {
  const exported = exportRun({
    prompt: 'The ship',
    datastore: 'Harbour',
    lesson: { id: 'leakage', title: 'Leakage', step: 0 },
    settings: DEFAULT_SETTINGS,
    titles: { gpt: 'GPT', retro: 'RETRO', knnlm: 'kNN-LM', icralm: 'In-Context RALM', replug: 'REPLUG', flare: 'FLARE', ragseq: 'RAG-Sequence' },
    now: new Date('2026-12-06T19:00:00Z'),
    runs: {
      gpt: run([tok(7, ' sailed'), tok(8, ' | north')]),
      retro: run([tok(9, ' sank')], [
        { chunk: 0, start: 0, end: 2, latencyMs: 1, neighbours: [{ docId: 1, title: 'wreck.txt', chunkIndex: 0, distance: 0.25, text: '', continuationText: '', tokens: [tok(5, 'The'), tok(6, ' ship'), tok(9, ' sank')], chunkLength: 2 }] },
      ]),
    },
  });

  it('keeps each column’s text, timing and retrievals', () => {
    expect(exported.columns.map((c) => [c.key, c.text, c.tokens, c.seconds])).toEqual([
      ['gpt', ' sailed | north', 2, 1.5],
      ['retro', ' sank', 1, 1.5],
    ]);
    expect(exported.columns[1]!.retrievals).toEqual([{ tokens: [0, 2], query: 'The ship', neighbours: [{ title: 'wreck.txt', distance: 0.25, text: 'The ship sank' }] }]);
    expect(JSON.parse(JSON.stringify(exported))).toEqual(exported);
  });

  it('writes Markdown a teacher can paste into notes, with table cells escaped', () => {
    const md = runToMarkdown(exported);
    expect(md).toContain('# RetroLab run, 2026-12-06 19:00 UTC');
    expect(md).toContain('Lesson: Leakage, step 1');
    expect(md).toContain('## RETRO\n\n>  sank');
    expect(md).toContain('| 0–1 | The ship | wreck.txt: The ship sank | 0.250 |');
    expect(md).toContain('>  sailed | north');
  });
});
