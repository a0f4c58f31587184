export { RetroLabClient, KNN_NOT_BUILT_MESSAGE } from './client';
export type { AppState, RunState, Notice, LensState, CurvesState, KnnState } from './client';
export { LENS_MAX_CHARS, LENS_MAX_TOKENS } from '../protocol/api';
export { ClientContext, useClient, useAppState } from './hooks';
export { formatBytes, formatDuration, type DurationWords } from './format';
export type * from '../protocol/api';
// The names the features use (src/protocol/model.ts has a ModelInfo and a NeighbourView of the core's own).
export type { ModelDescription as ModelInfo, NeighbourDisplay as NeighbourView } from '../protocol/api';
// Plain constants of the kNN-LM engine (no code runs): the controls' defaults and bounds.
export { DEFAULT_KNN_SETTINGS, MAX_KNN_K } from '../core/knnlm/types';
export { DEFAULT_LAMBDA_TABLE } from '../core/knnlm/adaptive';
export { DEFAULT_PROCESSORS, DEFAULT_SAMPLING, DEFAULT_SEED } from '../core/generate/defaults';
export { qualityMetrics, type QualityMetrics } from '../core/eval/quality';
export { DEFAULT_ICRALM_SETTINGS } from '../core/icralm/types';
export { DEFAULT_REPLUG_SETTINGS, MAX_REPLUG_K } from '../core/replug/types';
export { DEFAULT_RAG_SEQUENCE_SETTINGS, MAX_RAG_SEQUENCE_K, MAX_RAG_SEQUENCE_SPAN } from '../core/ragseq/types';
export { DEFAULT_FLARE_SETTINGS, MAX_FLARE_LOOKAHEAD } from '../core/flare/types';
// Display-only text helper, pure; re-exported so the UI needs nothing from core directly.
export { detokenizeWikiText, splitWikiTextArticles } from '../core/tokenizer/wikitext';
export { installTestHook } from './testHook';
export type { RetroLabTestHook } from './testHook';
