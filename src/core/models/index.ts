export type { LanguageModel, StepOutput, StartOptions } from './types';
export { lastLogits } from './types';
export { GptModel, type ModelLoadOptions } from './gpt';
export { RetroModel, defaultRetroOptions, type RetroLoadOptions, type EncodedChunks } from './retro';
export { loadModel } from './load';
export { readManifest, validateManifest, retroHyperparameters, type RetroHyperparameters } from './manifest';
export { neighbourRows, toNeighbourView, type NeighbourSource, type RetrievedNeighbour, type NeighbourQueryOptions } from './neighbours';
