/**
 * The inference engine's FLARE side: a FlareModel over the engine's GPT whose passages come from the
 * retrieval engine's active datastore (NeighbourServer, as In-Context RALM's), and one report per
 * decision: the look-ahead with its probabilities, the tokens that triggered a retrieval, the
 * masked query and the passage.
 */
import { DEFAULT_FLARE_SETTINGS, FlareModel } from '../flare';
import { separatorTokens, type PassageRetriever } from '../icralm';
import type { ChunkReport, GenerateRequest, NeighbourDisplay } from '../../protocol/api';
import { topPassageRetriever, type IcRalmHostDeps } from './icralm-host';

export class FlareHost {
  private model: FlareModel | null = null;
  /** The display view of each retrieval of the current run, in retrieval order. */
  private views: (NeighbourDisplay | null)[] = [];
  private reported = 0;

  /** In-Context RALM's host needs the same three things: the GPT, the tokenizer, the retrieval engine. */
  constructor(private readonly deps: IcRalmHostDeps) {}

  /**
   * The column's model for this request: its look-ahead, θ, β, l, document exclusions (the request's
   * and `promptDocIds`, the leakage control's) and random-passage control; reports start afresh.
   */
  prepare(request: GenerateRequest, promptDocIds: readonly number[] = []): FlareModel {
    const gpt = this.deps.gpt();
    const eotId = gpt.manifest.tokenizer.eot_id;
    const tokenizer = this.deps.tokenizer();
    if (!this.model || this.model.lm !== gpt) {
      // The GPT session is the 'gpt' column's too: the engine runs the columns one after another.
      this.model = new FlareModel(gpt, this.retriever([], eotId), { ownsModel: false });
    }
    this.model.setRetriever(this.retriever([...request.retro.excludeDocIds, ...promptDocIds], eotId, request.flare?.randomNeighbours === true));
    this.model.setSettings({ ...DEFAULT_FLARE_SETTINGS, ...request.flare }, separatorTokens('newline', (t) => tokenizer.encode(t), eotId));
    this.views = [];
    this.reported = 0;
    return this.model;
  }

  private retriever(excludeDocIds: number[], eotId: number, random = false): PassageRetriever {
    return topPassageRetriever(() => this.deps.server(), excludeDocIds, eotId, { random }, (view) => this.views.push(view));
  }

  /**
   * Decisions made since the last call, as the compare view's chunk reports: `end` is the block's
   * first position; [start, end) is the text part of the query; `flare` holds the look-ahead.
   */
  takeReports(): ChunkReport[] {
    const model = this.model;
    if (!model) return [];
    const tokenizer = this.deps.tokenizer();
    const { threshold, maskBelow, queryLength } = model.settings;
    const reports: ChunkReport[] = [];
    const log = model.decisions;
    let retrievalIndex = log.slice(0, this.reported).filter((d) => d.retrieved).length;
    for (; this.reported < log.length; this.reported++) {
      const d = log[this.reported]!;
      const view = d.retrieved ? (this.views[retrievalIndex++] ?? null) : null;
      const kept = d.lookahead.filter((t) => t.probability >= maskBelow).length;
      reports.push({
        chunk: this.reported,
        start: Math.max(0, d.position - Math.max(0, queryLength - kept)),
        end: d.position,
        neighbours: view ? [view] : [],
        latencyMs: d.latencyMs,
        flare: {
          lookahead: d.lookahead.map((t) => ({ ...t, text: tokenizer.decode([t.id]) })),
          triggers: d.triggers,
          retrieved: d.retrieved,
          queryText: d.retrieved ? tokenizer.decode(d.query) : '',
          threshold,
          maskBelow,
        },
      });
    }
    return reports;
  }
}
