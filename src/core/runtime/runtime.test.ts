/** Loading failures give typed errors that say what is wrong; real files, real onnxruntime-web. */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../models/load';
import { GPT_ID, MODELS_DIR } from '../models/test-support';
import { ModelLoadError, Runtime, serializeError } from '.';
import { nodeModelFiles } from './node-files';

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
});
