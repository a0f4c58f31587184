export { InferenceEngine, type InferenceEngineOptions } from './inference';
export { RetrievalEngine, type RetrievalEngineOptions } from './retrieval';
export { fetchFolder, type FolderOpener } from './folder';
export { inThread, type Transfer } from './transfer';
