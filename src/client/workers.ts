import * as Comlink from 'comlink';
import { installErrorTransfer, type InferenceWorkerApi, type RetrievalWorkerApi } from '../../workers/wire';

export interface WorkerPair {
  inference: Comlink.Remote<InferenceWorkerApi>;
  retrieval: Comlink.Remote<RetrievalWorkerApi>;
  terminate(): void;
}

/**
 * Starts both workers and gives the inference worker a direct line to the retrieval worker, so
 * RETRO's per-chunk retrievals never pass through the UI thread.
 */
export function startWorkers(): WorkerPair {
  installErrorTransfer();
  const inferenceWorker = new Worker(new URL('../../workers/inference.worker.ts', import.meta.url), {
    type: 'module',
    name: 'retrolab-inference',
  });
  const retrievalWorker = new Worker(new URL('../../workers/retrieval.worker.ts', import.meta.url), {
    type: 'module',
    name: 'retrolab-retrieval',
  });
  const inference = Comlink.wrap<InferenceWorkerApi>(inferenceWorker);
  const retrieval = Comlink.wrap<RetrievalWorkerApi>(retrievalWorker);
  const channel = new MessageChannel();
  void retrieval.neighbourPort(Comlink.transfer(channel.port1, [channel.port1]));
  void inference.neighbourPort(Comlink.transfer(channel.port2, [channel.port2]));
  // The other direction: the retrieval worker asks the GPT for kNN-LM keys of a datastore it builds.
  const keys = new MessageChannel();
  void inference.keyBuilderPort(Comlink.transfer(keys.port1, [keys.port1]));
  void retrieval.keyBuilderPort(Comlink.transfer(keys.port2, [keys.port2]));
  return {
    inference,
    retrieval,
    terminate() {
      inferenceWorker.terminate();
      retrievalWorker.terminate();
    },
  };
}
