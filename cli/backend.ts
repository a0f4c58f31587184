import type { BackendPreference } from '../src/protocol/model';

/**
 * `--backend cpu|wasm` of the Node tools. cpu (the default) runs onnxruntime-node's native CPU
 * provider, falling back to WASM when its binary does not load: the same graph and dequantized
 * weights as the app's WASM, logits within ~1e-5, and the batched forwards of key builds and evals
 * ~3x faster (docs/benchmarks.md). wasm runs onnxruntime-web's own kernels, as the app does.
 */
export function parseBackend(value: string | undefined): BackendPreference {
  if (value === undefined || value === 'cpu') return 'cpu';
  if (value === 'wasm') return value;
  throw new Error(`--backend must be cpu or wasm, not ${value}`);
}

/** For a result's measured_by: which onnxruntime ran the graphs (a BackendInfo's backend). */
export function onnxRuntimeName(backend: string | undefined): string {
  return backend === 'cpu' ? 'onnxruntime-node CPU' : 'onnxruntime-web WASM';
}
