/** FLARE (Jiang et al. 2023): method in types.ts, decisions in plan.ts, generation wrapper, eval. */
export * from './types';
export { greedyChoice, maskedQuery, triggerTokens } from './plan';
export { FlareModel, type FlareModelOptions } from './model';
export { evaluateFlare, type FlareEvalModel, type FlareEvalOptions, type FlareEvalResult } from './eval';
