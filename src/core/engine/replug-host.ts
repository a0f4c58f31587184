/**
 * The inference engine's REPLUG side: a ReplugModel over the engine's GPT whose top-k passages come
 * from the retrieval engine's active datastore (NeighbourServer, as In-Context RALM's), the column's
 * retrieval reports with the passage weights, and each token's per-passage shares.
 */
import { separatorTokens, trimPadding } from '../icralm';
import { DEFAULT_REPLUG_SETTINGS, ReplugModel, type PassagesRetriever, type ReplugTokenShare } from '../replug';
import type { ChunkReport, GenerateRequest, NeighbourDisplay, RetrieverKind } from '../../protocol/api';
import { passageFields, type IcRalmHostDeps } from './icralm-host';

export class ReplugHost {
  private model: ReplugModel | null = null;
  /** The display views of each retrieval of the current run, in the model's retrieval order. */
  private views: NeighbourDisplay[][] = [];
  private reported = 0;

  /** In-Context RALM's host needs the same three things: the GPT, the tokenizer, the retrieval engine. */
  constructor(private readonly deps: IcRalmHostDeps) {}

  /** The column's model for this request: its k, τ, s, l and document exclusions; reports start afresh. */
  prepare(request: GenerateRequest): ReplugModel {
    const gpt = this.deps.gpt();
    const eotId = gpt.manifest.tokenizer.eot_id;
    const tokenizer = this.deps.tokenizer();
    if (!this.model || this.model.lm !== gpt) {
      void this.model?.dispose();
      this.model = new ReplugModel(gpt, this.retriever([], eotId));
    }
    this.model.setRetriever(this.retriever([...request.retro.excludeDocIds], eotId, request.replug.retriever ?? 'dense'));
    this.model.setSettings({ ...DEFAULT_REPLUG_SETTINGS, ...request.replug }, separatorTokens('newline', (t) => tokenizer.encode(t), eotId));
    this.views = [];
    this.reported = 0;
    return this.model;
  }

  private retriever(excludeDocIds: number[], eotId: number, kind: RetrieverKind = 'dense'): PassagesRetriever {
    return async (query, k) => {
      const result = await this.deps.server().retrieve([...query], k, excludeDocIds, kind);
      this.views.push(result.views.slice(0, k));
      return result.tokenIds.slice(0, k).map((ids, j) => {
        const view = result.views[j];
        return { tokenIds: trimPadding(ids, eotId), ...(view ? passageFields(view) : {}) };
      });
    };
  }

  /** Each passage's weight and probability for the token just written. */
  shares(tokenId: number): ReplugTokenShare[] {
    return this.model?.shares(tokenId) ?? [];
  }

  /** Retrievals made since the last call, as chunk reports with the passages' weights. */
  takeReports(): ChunkReport[] {
    const model = this.model;
    if (!model) return [];
    const reports: ChunkReport[] = [];
    const log = model.retrievals;
    for (; this.reported < log.length; this.reported++) {
      const r = log[this.reported]!;
      reports.push({ chunk: this.reported, start: r.queryStart, end: r.position, neighbours: this.views[this.reported] ?? [], weights: r.weights, latencyMs: r.latencyMs });
    }
    return reports;
  }
}
