/**
 * One thread of cli/key-pool.ts: a GPT on onnxruntime-node with one intra-op thread, serving
 * `keysBatch` over Comlink. Its keys leave transferred, not copied.
 */
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { parentPort, workerData } from 'node:worker_threads';
import { GptModel } from '../src/core/models/gpt';
import { Runtime } from '../src/core/runtime';
import { nodeModelFiles } from '../src/core/runtime/node-files';

export interface KeyWorkerData {
  modelDir: string;
}

export interface KeyWorkerApi {
  /** The backend it runs on, and why when it is not onnxruntime-node. */
  backend(): { backend: string; reason?: string };
  keysBatch(sequences: number[][]): Promise<Float32Array>;
}

const { modelDir } = workerData as KeyWorkerData;
const gpt = await GptModel.load(await Runtime.create({ prefer: 'cpu', wasmThreads: 1 }), nodeModelFiles(modelDir));
const api: KeyWorkerApi = {
  backend: () => ({ backend: gpt.info.backend.backend, ...(gpt.info.backend.reason ? { reason: gpt.info.backend.reason } : {}) }),
  keysBatch: async (sequences) => {
    const keys = await gpt.keysBatch(sequences);
    return Comlink.transfer(keys, [keys.buffer as ArrayBuffer]);
  },
};
Comlink.expose(api, nodeEndpoint(parentPort!));
