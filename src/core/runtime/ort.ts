/**
 * The one place that imports onnxruntime (web and node). Four builds exist and each environment
 * needs a different one, so they are loaded on demand:
 * - Node, native (CLI tools, vitest, by default): onnxruntime-node's CPU execution provider. Same
 *   graph, same dequantized weights, logits within ~1e-5 of WASM, and ~3x faster on the batched
 *   forwards of key builds and evaluations (docs/benchmarks.md).
 * - Node, WASM: onnxruntime-web's Node build, the app's own kernels (benchmarks and the reference).
 * - Browser with a WebGPU adapter: `onnxruntime-web/webgpu`, the built-in WebGPU EP (it also
 *   carries the WASM EP, used for the self-check and as fallback).
 * - Browser without WebGPU: `onnxruntime-web/wasm`, the smaller WASM-only build.
 */
import type * as OrtTypes from 'onnxruntime-web';

export type Ort = typeof OrtTypes;
export type OrtTensor = OrtTypes.Tensor;
export type OrtSession = OrtTypes.InferenceSession;
export type OrtSessionOptions = OrtTypes.InferenceSession.SessionOptions;

export type OrtFlavour = 'native' | 'node' | 'webgpu' | 'wasm';

export function isNode(): boolean {
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof proc?.versions?.node === 'string' && typeof (globalThis as { window?: unknown }).window === 'undefined';
}

const loaded = new Map<OrtFlavour, Promise<Ort>>();

export function loadOrt(flavour: OrtFlavour): Promise<Ort> {
  let module = loaded.get(flavour);
  if (!module) {
    module = importFlavour(flavour);
    loaded.set(flavour, module);
  }
  return module;
}

async function importFlavour(flavour: OrtFlavour): Promise<Ort> {
  switch (flavour) {
    case 'native': {
      // onnxruntime-node shares onnxruntime-common's API (and Tensor class) with onnxruntime-web.
      const nativeBuild = 'onnxruntime-node';
      return (await import(/* @vite-ignore */ nativeBuild)) as Ort;
    }
    case 'node': {
      // A variable specifier keeps Vite from bundling the Node build into the browser app; Node
      // resolves the bare name with its "node" export condition.
      const nodeBuild = 'onnxruntime-web';
      return (await import(/* @vite-ignore */ nodeBuild)) as Ort;
    }
    case 'webgpu':
      return (await import('onnxruntime-web/webgpu')) as Ort;
    case 'wasm':
      return (await import('onnxruntime-web/wasm')) as Ort;
  }
}
