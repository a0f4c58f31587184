export { streamWindows, evaluatePerplexity, type Window, type WindowNeighbours, type PerplexityOptions, type PerplexityTotals } from './perplexity';
export { datastoreEvalStore, withLeakedStream, windowNeighbours, type EvalStore, type NeighbourMode, type ScoredRow } from './neighbours';
export { decodeBench, interleavedDecode, interleavedStats, median, medianInterval, quantileSorted, type DecodeBenchResult, type DecodeBenchOptions, type InterleavedConfig, type InterleavedOptions, type InterleavedSteps, type InterleavedStats } from './bench';
export { pairedComparison, type PairedComparison, type PairedOptions } from './paired';
