/** REPLUG (Shi et al. 2023): the LM ensemble over top-k passages, method in types.ts. */
export * from './types';
export { ReplugModel } from './model';
export { evaluateReplug, type ReplugEvalOptions, type ReplugEvalResult } from './eval';
