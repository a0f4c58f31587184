/**
 * The inference engine's In-Context RALM side: an IcRalmModel over the engine's GPT whose passages
 * come from the retrieval engine's active datastore (NeighbourServer, like RETRO's neighbours),
 * and the column's retrieval reports.
 */
import { DEFAULT_ICRALM_SETTINGS, IcRalmModel, separatorTokens, trimPadding, type PassageRetriever } from '../icralm';
import type { GptModel } from '../models';
import type { RetroTokenizer } from '../tokenizer';
import type { ChunkReport, GenerateRequest, NeighbourServer, NeighbourDisplay, RetrieveControls } from '../../protocol/api';

/** What a passage carries from the retrieval engine's view of it: where it is, and its distance (dense) or BM25 score. */
export function passageFields(view: NeighbourDisplay): { chunkIndex: number; docId: number; title: string; distance: number; score?: number } {
  return { chunkIndex: view.chunkIndex, docId: view.docId, title: view.title, distance: view.distance, ...(view.score !== undefined ? { score: view.score } : {}) };
}

export interface IcRalmHostDeps {
  gpt(): GptModel;
  tokenizer(): RetroTokenizer;
  server(): NeighbourServer;
}

/**
 * The top passage for each query from the retrieval engine, trailing padding removed (In-Context
 * RALM's and FLARE's retriever); each retrieval's display view, or null, goes to `onView` in order.
 */
export function topPassageRetriever(
  server: () => NeighbourServer,
  excludeDocIds: readonly number[],
  eotId: number,
  controls: RetrieveControls,
  onView: (view: NeighbourDisplay | null) => void,
): PassageRetriever {
  return async (queries) => {
    const passages = [];
    for (const query of queries) {
      const result = await server().retrieve([...query], 1, [...excludeDocIds], controls);
      const ids = result.tokenIds[0];
      const view = result.views[0] ?? null;
      onView(view);
      passages.push(ids ? { tokenIds: trimPadding(ids, eotId), ...(view ? passageFields(view) : {}) } : null);
    }
    return passages;
  };
}

export class IcRalmHost {
  private model: IcRalmModel | null = null;
  /** The display view of each retrieval of the current run, in the model's retrieval order. */
  private views: (NeighbourDisplay | null)[] = [];
  private reported = 0;

  constructor(private readonly deps: IcRalmHostDeps) {}

  /**
   * The column's model for this request: its s, l, document exclusions (the request's and
   * `promptDocIds`, the leakage control's) and random-passage control; reports start afresh.
   */
  prepare(request: GenerateRequest, promptDocIds: readonly number[] = []): IcRalmModel {
    const gpt = this.deps.gpt();
    const eotId = gpt.manifest.tokenizer.eot_id;
    const tokenizer = this.deps.tokenizer();
    if (!this.model || this.model.lm !== gpt) {
      // The GPT session is the 'gpt' column's too: the engine runs the columns one after another.
      this.model = new IcRalmModel(gpt, this.retriever([], eotId), { ownsModel: false });
    }
    const exclude = [...request.retro.excludeDocIds, ...promptDocIds];
    this.model.setRetriever(this.retriever(exclude, eotId, { retriever: request.icralm.retriever ?? 'dense', random: request.icralm.randomNeighbours === true }));
    this.model.setSettings({ ...DEFAULT_ICRALM_SETTINGS, ...request.icralm }, separatorTokens('newline', (t) => tokenizer.encode(t), eotId));
    this.views = [];
    this.reported = 0;
    return this.model;
  }

  private retriever(excludeDocIds: number[], eotId: number, controls: RetrieveControls = {}): PassageRetriever {
    return topPassageRetriever(() => this.deps.server(), excludeDocIds, eotId, controls, (view) => this.views.push(view));
  }

  /** Retrievals made since the last call, as the compare view's chunk reports: [start, end) is the query, `end` the first position the passage served. */
  takeReports(): ChunkReport[] {
    const model = this.model;
    if (!model) return [];
    const reports: ChunkReport[] = [];
    const log = model.retrievals;
    for (; this.reported < log.length; this.reported++) {
      const r = log[this.reported]!;
      const view = this.views[this.reported];
      reports.push({ chunk: this.reported, start: r.queryStart, end: r.position, neighbours: view ? [view] : [], latencyMs: r.latencyMs });
    }
    return reports;
  }
}
