/**
 * Okapi BM25 over a chunk datastore's chunks (Robertson & Zaragoza 2009, "The Probabilistic
 * Relevance Framework: BM25 and Beyond"), the sparse retriever beside the dense embedder. The only
 * importer of minisearch (its inverted index and its BM25 term score). For a query q and chunk c:
 *
 *   score(q, c) = Σ_{t ∈ q} idf(t) · tf(t, c) (k1 + 1) / (tf(t, c) + k1 (1 − b + b |c| / avgdl))
 *   idf(t)      = ln(1 + (N − n(t) + 0.5) / (n(t) + 0.5))
 *
 * with N chunks, n(t) the chunks that hold t, tf(t, c) how often c holds t, |c| the chunk's length
 * and avgdl its mean; a word repeated in the query counts each time. minisearch measures |c| in
 * distinct words (not all words: a chunk that repeats a word is not made longer by it). minisearch computes exactly this term score (with its
 * BM25+ offset d set to 0 here) and sums it over the query's words, but then multiplies the sum by
 * how many distinct query words matched; `search` divides that factor out, so the scores and the
 * ranking are BM25's.
 */
import MiniSearch from 'minisearch';

/** minisearch's names: k is k1. Defaults there are k 1.2, b 0.7, d 0.5 (BM25+). */
export interface Bm25Parameters {
  k: number;
  b: number;
  /** BM25+'s lower bound per matched term (Lv & Zhai 2011); 0 is plain BM25. */
  d: number;
}

/** Robertson & Zaragoza's usual values (k1 in [1.2, 2], b = 0.75), and plain BM25 (no BM25+ offset). */
export const BM25_PARAMETERS: Readonly<Bm25Parameters> = { k: 1.2, b: 0.75, d: 0 };

/**
 * Words: runs of letters and digits in any script, lower-cased. Dropped: Lucene's English stop
 * words (the list its StandardAnalyzer and Pyserini's BM25, which In-Context RALM used, drop), and
 * WikiText's `<unk>`. They say little about a chunk, and their posting lists (most of the 82k
 * chunks of WikiText-2 train hold "the") would make every search visit nearly every chunk.
 */
const WORD = /[\p{L}\p{N}]+/gu;
const DROPPED = new Set([
  'a', 'an', 'and', 'are', 'as', 'at', 'be', 'but', 'by', 'for', 'if', 'in', 'into', 'is', 'it', 'no', 'not', 'of', 'on', 'or', 'such',
  'that', 'the', 'their', 'then', 'there', 'these', 'they', 'this', 'to', 'was', 'will', 'with',
  'unk',
]);

export function bm25Words(text: string): string[] {
  const words: string[] = [];
  for (const match of text.toLowerCase().matchAll(WORD)) if (!DROPPED.has(match[0])) words.push(match[0]);
  return words;
}

interface ChunkDocument {
  id: number;
  text: string;
}

export interface Bm25Hit {
  /** the chunk's row in its datastore */
  id: number;
  /** BM25 score, > 0 */
  score: number;
}

export interface Bm25BuildOptions {
  parameters?: Bm25Parameters;
  /** chunks indexed so far, every `progressEvery` chunks and at the end */
  onProgress?: (done: number, total: number) => void;
  progressEvery?: number;
}

export class Bm25Index {
  private constructor(
    private readonly search_: MiniSearch<ChunkDocument>,
    readonly count: number,
    readonly parameters: Readonly<Bm25Parameters>,
    /** build time in milliseconds */
    readonly buildMs: number,
  ) {}

  /** Indexes chunks 0..count-1, whose texts `text(i)` gives (read one at a time: nothing is kept but the index). */
  static build(count: number, text: (id: number) => string, options: Bm25BuildOptions = {}): Bm25Index {
    const t0 = performance.now();
    const parameters = options.parameters ?? BM25_PARAMETERS;
    const search = new MiniSearch<ChunkDocument>({
      fields: ['text'],
      storeFields: [],
      tokenize: bm25Words,
      // bm25Words already lower-cases and drops; minisearch's default would lower-case again.
      processTerm: (term) => term,
      searchOptions: { bm25: { ...parameters }, combineWith: 'OR', prefix: false, fuzzy: false },
    });
    const every = options.progressEvery ?? 5000;
    for (let id = 0; id < count; id++) {
      search.add({ id, text: text(id) });
      if (options.onProgress && (id + 1) % every === 0) options.onProgress(id + 1, count);
    }
    options.onProgress?.(count, count);
    return new Bm25Index(search, count, parameters, performance.now() - t0);
  }

  /** The k best chunks for `query`'s words, best first (ties: the smaller id); chunks for which `exclude` is true are skipped. */
  search(query: string, k: number, exclude?: (id: number) => boolean): Bm25Hit[] {
    if (k < 1 || bm25Words(query).length === 0) return [];
    const results = this.search_.search(query, exclude ? { filter: (r) => !exclude(r.id as number) } : {});
    const hits = results.map((r) => ({ id: r.id as number, score: r.score / Math.max(1, r.queryTerms.length) }));
    hits.sort((a, b) => b.score - a.score || a.id - b.id);
    return hits.slice(0, k);
  }
}
