/**
 * What the workers add to the engines: Comlink on both ends of the two MessagePorts between them
 * (the engines themselves take plain objects, so one thread can link them directly), and errors
 * that cross any boundary as {name, message, code}. The client imports it for the same reasons.
 */
import * as Comlink from 'comlink';
import { serializeError } from '../src/core/runtime/errors';
import type { InferenceApi, KnnKeyBuilder, NeighbourServer, ProgressCallback, RetrievalApi, SerializedError } from '../src/protocol/api';

/** The inference worker: its engine, plus the port to the retrieval worker and the port it serves the key builder on. */
export interface InferenceWorkerApi extends InferenceApi {
  neighbourPort(port: MessagePort): void;
  keyBuilderPort(port: MessagePort): void;
}

/** The retrieval worker: its engine, plus the port it serves neighbours on and the port to the key builder. */
export interface RetrievalWorkerApi extends RetrievalApi {
  neighbourPort(port: MessagePort): void;
  keyBuilderPort(port: MessagePort): void;
}

/** The retrieval worker's NeighbourServer over `port`; progress callbacks go back as proxies, shards arrive transferred. */
export function remoteNeighbourServer(port: MessagePort): NeighbourServer {
  const remote = Comlink.wrap<NeighbourServer>(port);
  return {
    retrieve: (chunkTokenIds, k, excludeDocIds, retriever) => remote.retrieve(chunkTokenIds, k, excludeDocIds, retriever),
    knnShard: (id, onProgress) => remote.knnShard(id, onProgress && Comlink.proxy(onProgress)),
    knnSources: () => remote.knnSources(),
  };
}

/** The inference worker's KnnKeyBuilder over `port`; the shard moves there and back without a copy. */
export function remoteKeyBuilder(port: MessagePort): KnnKeyBuilder {
  const remote = Comlink.wrap<KnnKeyBuilder>(port);
  return {
    attachKeys: (bytes: Uint8Array, onProgress: ProgressCallback) =>
      remote.attachKeys(Comlink.transfer(bytes, [bytes.buffer as ArrayBuffer]), Comlink.proxy(onProgress)),
    cancel: () => void remote.cancel(),
  };
}

export function serve(value: object, port: MessagePort): void {
  Comlink.expose(value, port);
}

/**
 * Comlink's own 'throw' handler keeps name and message but drops `code` (ModelLoadError's), and
 * passes a thrown non-Error on as it is: this one keeps its test for a thrown value and sends
 * {name, message, code}. Both ends of every link install it (the workers, and the client).
 */
export function installErrorTransfer(): void {
  const thrown = Comlink.transferHandlers.get('throw')!;
  Comlink.transferHandlers.set('throw', {
    canHandle: thrown.canHandle,
    serialize: ({ value }: { value: unknown }) => [serializeError(value), []],
    deserialize: (error: SerializedError) => {
      throw Object.assign(new Error(error.message), error);
    },
  } as Comlink.TransferHandler<{ value: unknown }, SerializedError>);
}
