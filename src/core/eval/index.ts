export { streamWindows, evaluatePerplexity, type Window, type WindowNeighbours, type PerplexityOptions, type PerplexityTotals } from './perplexity';
export { datastoreEvalStore, withLeakedStream, windowNeighbours, type EvalStore, type NeighbourMode, type ScoredRow } from './neighbours';
export { decodeBench, type DecodeBenchResult, type DecodeBenchOptions } from './bench';
export { pairedComparison, type PairedComparison, type PairedOptions } from './paired';
