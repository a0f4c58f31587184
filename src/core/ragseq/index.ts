/** RAG-Sequence (Lewis et al. 2020) on the frozen GPT with REPLUG's passages: method in types.ts. */
export * from './types';
export { evaluateRagSequence, type RagSequenceBlockScore, type RagSequenceEvalOptions, type RagSequenceEvalResult } from './eval';
export { thoroughDecode, type DecodingModel, type ThoroughCandidate, type ThoroughDecodeOptions } from './decode';
