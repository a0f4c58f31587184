/// <reference lib="webworker" />
/** The inference worker: src/core/engine/inference.ts behind Comlink, linked to the retrieval worker. */
import * as Comlink from 'comlink';
import { InferenceEngine } from '../src/core/engine/inference';
import { installErrorTransfer, remoteNeighbourServer, serve, type InferenceWorkerApi } from './wire';

installErrorTransfer();
const engine = new InferenceEngine({ transfer: Comlink.transfer });

const api: InferenceWorkerApi = Object.assign(engine, {
  // RETRO's neighbours, In-Context RALM's passages and kNN-LM shards come straight from the retrieval worker.
  neighbourPort: (port: MessagePort) => engine.connect(remoteNeighbourServer(port)),
  // The retrieval worker asks this GPT for the kNN-LM keys of a datastore it builds.
  keyBuilderPort: (port: MessagePort) => serve(engine.keyBuilder, port),
});

Comlink.expose(api);
