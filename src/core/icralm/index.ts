/** In-Context RALM (Ram et al. 2023): protocol in types.ts, generation wrapper, eval, datastore retriever. */
export * from './types';
export { blockInput, blockQuery, trimPadding, separatorTokens, SEPARATOR_KINDS, type BlockInput, type SeparatorKind } from './plan';
export { IcRalmModel, type IcRalmModelOptions } from './model';
export { evaluateIcRalm, scoreBlocks, type ScoredBlock, type BatchForwardModel, type IcRalmEvalOptions, type IcRalmEvalResult } from './eval';
export { datastorePassagesRetriever, datastoreRetriever, type DatastoreRetrieverOptions } from './retriever';
