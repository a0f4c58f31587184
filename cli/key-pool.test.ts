/** The Node key pool: real worker threads, each the shipped GPT on onnxruntime-node. */
import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { REPO_ROOT } from '../src/core/datastore/node';
import { GptModel } from '../src/core/models/gpt';
import { Runtime } from '../src/core/runtime';
import { nodeModelFiles } from '../src/core/runtime/node-files';
import { startKeyPool, type KeyPool } from './key-pool';

const GPT = join(REPO_ROOT, 'public/models/gpt-wt2');

describe('key pool', () => {
  let pool: KeyPool | null = null;
  afterAll(async () => pool?.dispose());

  it('gives the keys one in-thread session gives, from every worker at once', async () => {
    pool = await startKeyPool(GPT, 2);
    expect(pool.concurrency).toBe(2);
    expect(pool.backend.backend).toBe('cpu');
    const windows = [0, 1, 2, 3].map((w) => Array.from({ length: 40 }, (_, t) => (w * 997 + t * 31) % 8000));
    const fromPool = await Promise.all([pool.keysBatch(windows.slice(0, 2)), pool.keysBatch(windows.slice(2))]);
    const gpt = await GptModel.load(await Runtime.create({ prefer: 'cpu', wasmThreads: 1 }), nodeModelFiles(GPT));
    try {
      const inThread = await Promise.all([gpt.keysBatch(windows.slice(0, 2)), gpt.keysBatch(windows.slice(2))]);
      expect(fromPool[0]!.length).toBe(2 * 40 * gpt.manifest.hyperparameters.d_model);
      expect(Array.from(fromPool[0]!)).toEqual(Array.from(inThread[0]!));
      expect(Array.from(fromPool[1]!)).toEqual(Array.from(inThread[1]!));
    } finally {
      await gpt.dispose();
    }
  }, 60_000);

  it('refuses a model folder that is not there, instead of waiting forever', async () => {
    await expect(startKeyPool(join(REPO_ROOT, 'no-such-model'), 1)).rejects.toThrow();
  });
});
