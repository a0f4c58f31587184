/** Loading failures give typed errors that say what is wrong; real files, real onnxruntime-web (and onnxruntime-node for the tools). */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../models/load';
import { GPT_ID, MODELS_DIR } from '../models/test-support';
import { ModelLoadError, Runtime, serializeError } from '.';
import { defaultWasmThreads } from './runtime';
import { nodeModelFiles } from './node-files';
import { keepOutputs } from './onnx-prune';
import { GptModel } from '../models/gpt';

const source = join(MODELS_DIR, GPT_ID);
let runtime: Runtime;
let dir: string;

beforeAll(async () => {
  runtime = await Runtime.create();
  dir = mkdtempSync(join(tmpdir(), 'retrolab-runtime-'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A copy of the GPT model folder with the manifest edited and/or the decoder replaced. */
function variant(name: string, edit: (manifest: Record<string, unknown>) => void, decoderBytes?: Uint8Array): string {
  const target = join(dir, name);
  rmSync(target, { recursive: true, force: true });
  const manifest = JSON.parse(readFileSync(join(source, 'manifest.json'), 'utf8')) as Record<string, unknown>;
  const file = (manifest.onnx as { decoder: { file: string } }).decoder.file;
  edit(manifest);
  mkdirSync(target, { recursive: true });
  writeFileSync(join(target, 'manifest.json'), JSON.stringify(manifest));
  if (decoderBytes) writeFileSync(join(target, file), decoderBytes);
  else copyFileSync(join(source, file), join(target, file));
  return target;
}

async function loadError(path: string, verify = true): Promise<ModelLoadError> {
  try {
    await loadModel(runtime, nodeModelFiles(path), { verify });
  } catch (error) {
    expect(error).toBeInstanceOf(ModelLoadError);
    return error as ModelLoadError;
  }
  throw new Error(`loading ${path} should have failed`);
}

describe('model loading errors', () => {
  it('missing folder or file', async () => {
    const error = await loadError(join(dir, 'nope'));
    expect(error.code).toBe('missing-file');
    expect(error.message).toMatch(/manifest\.json: file not found/);
    const noDecoder = variant('no-decoder', (m) => {
      (m.onnx as { decoder: { file: string } }).decoder.file = 'absent.onnx';
    });
    expect((await loadError(noDecoder)).message).toMatch(/absent\.onnx/);
  });

  it('wrong format_version', async () => {
    const error = await loadError(variant('v2', (m) => (m.format_version = 2)));
    expect(error.code).toBe('format-version');
    expect(error.message).toMatch(/format_version 2 is not supported/);
    expect(serializeError(error)).toEqual({ name: 'ModelLoadError', message: error.message, code: 'format-version' });
  });

  it('manifest that is not JSON', async () => {
    const target = variant('bad-json', () => undefined);
    writeFileSync(join(target, 'manifest.json'), '{ "format_version": 1,');
    expect((await loadError(target)).code).toBe('bad-manifest');
  });

  it('truncated or replaced ONNX bytes', async () => {
    const original = readFileSync(join(source, 'decoder.int8.onnx'));
    const truncated = variant('truncated', () => undefined, original.subarray(0, 1000));
    expect((await loadError(truncated)).code).toBe('size-mismatch');
    const flipped = new Uint8Array(original);
    flipped[flipped.length - 10] = flipped[flipped.length - 10]! ^ 0xff;
    expect((await loadError(variant('flipped', () => undefined, flipped))).code).toBe('hash-mismatch');
    // Without verification onnxruntime-web itself rejects garbage, still as a ModelLoadError.
    const garbage = variant('garbage', () => undefined, new Uint8Array(4096).fill(7));
    const error = await loadError(garbage, false);
    expect(error.code).toBe('bad-onnx');
    expect(error.message).toMatch(/decoder\.int8\.onnx/);
  });

  it('a graph that does not match the architecture', async () => {
    const target = variant('as-retro', (m) => {
      m.architecture = 'retro';
      const hp = m.hyperparameters as Record<string, unknown>;
      Object.assign(hp, { chunk: 32, neighbours: 2, neighbour_len: 64, cca_layers: [2, 5], encoder_layers: 2 });
      (m.onnx as Record<string, unknown>).encoder = (m.onnx as Record<string, unknown>).decoder;
    });
    const error = await loadError(target);
    expect(error.code).toBe('contract-mismatch');
    expect(error.message).toMatch(/neighbour_ids/);
  });
});

describe('runtime', () => {
  it('in Node runs WASM with one thread by default', () => {
    expect(runtime.environment).toBe('node');
    expect(runtime.candidate).toBe('wasm');
    expect(runtime.wasmThreads).toBe(1);
  });

  it('serialises concurrent calls on one model', async () => {
    const model = await loadModel(runtime, nodeModelFiles(source));
    const prompt = [11, 12, 13, 14];
    const reference = (await model.start(prompt)).logits.slice();
    // start() twice without awaiting: each must see a clean sequence of its own.
    const [a, b] = await Promise.all([model.start(prompt), model.start(prompt)]);
    expect(Array.from(a.logits.slice(0, 50))).toEqual(Array.from(reference.slice(0, 50)));
    expect(Array.from(b.logits.slice(0, 50))).toEqual(Array.from(reference.slice(0, 50)));
    await model.dispose();
  });

  it('the tools\' native CPU backend (onnxruntime-node) runs the same graph within 1e-4 of WASM', async () => {
    const native = await Runtime.create({ prefer: 'cpu' });
    expect(native.candidate).toBe('cpu');
    expect(native.candidateReason).toMatch(/onnxruntime-node/);
    const [onWasm, onCpu] = [await loadModel(runtime, nodeModelFiles(source)), await loadModel(native, nodeModelFiles(source))];
    expect(onCpu.info.backend.backend).toBe('cpu');
    const prompt = [11, 12, 13, 14, 15, 16, 17, 18];
    const [a, b] = [await onWasm.start(prompt, { allLogits: true }), await onCpu.start(prompt, { allLogits: true })];
    expect(b.logits.length).toBe(a.logits.length);
    let maxDiff = 0;
    for (let i = 0; i < a.logits.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a.logits[i]! - b.logits[i]!));
    // int8 matmuls (no dequantize-at-load) differ by ~0.1 here: this checks that the weights are the same floats.
    expect(maxDiff).toBeLessThan(1e-4);
    expect(Array.from(b.knnKeys!.slice(0, 8)).map((v, i) => Math.abs(v - a.knnKeys![i]!) < 1e-4)).toEqual(Array(8).fill(true));
    await onWasm.dispose();
    await onCpu.dispose();
  });

  it('cuts the GPT to its knn_key output: the same keys, batched, without the logits', async () => {
    const bytes = new Uint8Array(readFileSync(join(source, 'decoder.int8.onnx')));
    expect(() => keepOutputs(bytes, ['no_such_output'])).toThrow(/no output no_such_output/);
    const cut = keepOutputs(bytes, ['knn_key'])!;
    expect(cut.length).toBeLessThan(bytes.length);
    const session = await runtime.createSession(cut, { label: 'knn_key cut' });
    expect(session.outputNames).toEqual(['knn_key']);
    await session.release();
    const gpt = await loadModel(runtime, nodeModelFiles(source));
    if (!(gpt instanceof GptModel)) throw new Error('expected the GPT');
    const [a, b] = [[5, 6, 7, 8, 9, 10], [40, 41, 42, 43, 44, 45]];
    const batch = await gpt.keysBatch([a, b]);
    const one = (await gpt.start(b, { allLogits: true })).knnKeys!;
    expect(batch.length).toBe(2 * one.length);
    let maxDiff = 0;
    for (let i = 0; i < one.length; i++) maxDiff = Math.max(maxDiff, Math.abs(batch[one.length + i]! - one[i]!));
    expect(maxDiff).toBeLessThan(1e-5);
    await gpt.dispose();
  });
});

describe('defaultWasmThreads', () => {
  it('is one thread on 2 cores or fewer, else the cores up to 4', () => {
    expect([1, 2, 3, 4, 8, 16].map(defaultWasmThreads)).toEqual([1, 1, 3, 4, 4, 4]);
  });
});
