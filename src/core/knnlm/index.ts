/**
 * kNN-LM (docs/knnlm.md): datastore builder, exact squared-L2 search over int8 keys, log-space
 * interpolation, a LanguageModel wrapping a GPT, and the perplexity eval.
 */
export * from './types';
export { knnLogProbs, knnLogProbOf, mixLogProb, mixLogProbs, logAddExp, logSoftmax, validateKnnSettings, type SparseLogProbs } from './interpolate';
export { KnnIndex, bruteForceKnn, dequantize, type KnnIndexOptions } from './search';
export { fitPca, projectKeys, type Pca } from './pca';
export { KnnDatastore, type KnnOpenOptions, type KnnEntryText, type KnnDatastoreOptions, type KnnIndexKind, type KnnSearchOptions } from './datastore';
export { IvfIndex, trainIvf, checkIvf, IVF_DEFAULTS, IVF_FORMAT_VERSION, type IvfIndexOptions, type IvfSearchOptions, type IvfTrainOptions, type IvfTrainStats } from './ivf';
export { DEFAULT_KEY_BATCH, buildKnnShard, compressKnnShard, addIvfToShard, shardDocuments, tokenStream, type KeyBatchModel, type KeyModel, type KnnBuildOptions, type KnnBuildResult, type KnnBuildStats, type TokenStream } from './build';
export { KnnLmModel, type KnnLmModelOptions } from './model';
export { DEFAULT_LAMBDA_TABLE, bucketOf, effectiveLambda, fitLambdaTable, scoreRecords, skipsSearch, tableLambda, topProbability, validateAdaptive, type AdaptiveRecord, type FitRecord, type LambdaFit } from './adaptive';
export { followPointers, pointerNeighbours } from './retomaton';
export { evaluateKnnLm, type KnnEvalOptions, type KnnEvalTotals, type KnnEvalScore } from './eval';
