/**
 * kNN-LM keys on every core: one worker thread per core, each a GPT on onnxruntime-node with one
 * intra-op thread. Two such threads key 1.3-1.4× faster than one session with two intra-op threads
 * (docs/benchmarks.md, "Set-up: building the kNN-LM keys"), and the builder keeps one batch per
 * worker in flight (`concurrency`) while the main thread projects and encodes the last one.
 */
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { KeyBatchModel } from '../src/core/knnlm/build';
import type { ModelManifest } from '../src/protocol/manifest';
import type { KeyWorkerApi, KeyWorkerData } from './key-worker';
import { tsWorker } from './ts-worker';

export interface KeyPool extends KeyBatchModel {
  /** The workers' backend ("cpu" unless onnxruntime-node failed to load, with the reason). */
  backend: { backend: string; reason?: string };
  dispose(): Promise<void>;
}

export async function startKeyPool(modelDir: string, workers: number): Promise<KeyPool> {
  const dir = resolve(modelDir);
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as ModelManifest;
  const threads = Array.from({ length: Math.max(1, workers) }, () => tsWorker(new URL('./key-worker.ts', import.meta.url), { modelDir: dir } satisfies KeyWorkerData));
  const remotes = threads.map((thread) => Comlink.wrap<KeyWorkerApi>(nodeEndpoint(thread)));
  let disposed = false;
  // A worker that fails or exits (before dispose) fails every call, instead of leaving it waiting.
  const failed = new Promise<never>((_, reject) =>
    threads.forEach((t) => {
      t.once('error', reject);
      t.once('exit', (code) => disposed || reject(new Error(`a key worker exited (code ${code})`)));
    }),
  );
  // Seen by the next keysBatch; between calls it must not end the process as an unhandled rejection.
  failed.catch(() => undefined);
  const terminate = async () => {
    disposed = true;
    for (const remote of remotes) remote[Comlink.releaseProxy]();
    await Promise.all(threads.map((t) => t.terminate()));
  };
  let backends: Awaited<ReturnType<KeyWorkerApi['backend']>>[];
  try {
    backends = await Promise.race([Promise.all(remotes.map((r) => r.backend())), failed]);
    // Keys from one runtime only: a worker that fell back to WASM would key slightly differently.
    if (backends.some((b) => b.backend !== backends[0]!.backend)) throw new Error(`the key workers run on different backends (${backends.map((b) => b.backend).join(', ')})`);
  } catch (error) {
    await terminate();
    throw error;
  }
  const idle = [...remotes];
  const waiting: ((remote: Comlink.Remote<KeyWorkerApi>) => void)[] = [];
  const acquire = () => new Promise<Comlink.Remote<KeyWorkerApi>>((take) => (idle.length ? take(idle.pop()!) : waiting.push(take)));
  const release = (remote: Comlink.Remote<KeyWorkerApi>) => (waiting.length ? waiting.shift()!(remote) : idle.push(remote));
  return {
    manifest,
    concurrency: threads.length,
    backend: backends[0]!,
    keysBatch: async (sequences) => {
      const remote = await acquire();
      try {
        return await Promise.race([remote.keysBatch(sequences.map((s) => Array.from(s))), failed]);
      } finally {
        release(remote);
      }
    },
    dispose: terminate,
  };
}
