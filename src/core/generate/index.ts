export { Rng } from './rng';
export { sample, logSoftmaxAt, validateSampling, GREEDY, type Sample } from './sampler';
export { generate, generateStream, type GenerateOptions } from './loop';
export { processLogits, processesLogits } from './sampler';
export { DEFAULT_PROCESSORS, DEFAULT_SAMPLING, DEFAULT_SEED, defaultGenerationSettings } from './defaults';
