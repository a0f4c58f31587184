/**
 * The one place that imports onnxruntime-web. Three builds exist and each environment needs a
 * different one, so they are loaded on demand:
 * - Node (CLI tools, vitest): the package's Node build, WASM backend only.
 * - Browser with a WebGPU adapter: `onnxruntime-web/webgpu`, the built-in WebGPU EP (it also
 *   carries the WASM EP, used for the self-check and as fallback).
 * - Browser without WebGPU: `onnxruntime-web/wasm`, the smaller WASM-only build.
 */
import type * as OrtTypes from 'onnxruntime-web';

export type Ort = typeof OrtTypes;
export type OrtTensor = OrtTypes.Tensor;
export type OrtSession = OrtTypes.InferenceSession;
export type OrtSessionOptions = OrtTypes.InferenceSession.SessionOptions;

export type OrtFlavour = 'node' | 'webgpu' | 'wasm';

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
