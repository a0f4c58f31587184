import type { OrtTensor } from './ort';
import { InferenceError } from './errors';

/**
 * A tensor owned by the runtime. Models hold these as opaque handles (a KV cache may live in a
 * GPU buffer) and read values only through `float32()`, so no code outside the runtime touches
 * onnxruntime-web's Tensor.
 */
export class RtTensor {
  /** Internal to src/core/runtime. */
  readonly ortTensor: OrtTensor;

  constructor(ortTensor: OrtTensor) {
    this.ortTensor = ortTensor;
  }

  get dims(): readonly number[] {
    return this.ortTensor.dims;
  }

  get type(): string {
    return this.ortTensor.type;
  }

  /** True when the data is in a GPU buffer and reading it needs a download. */
  get onDevice(): boolean {
    return this.ortTensor.location !== 'cpu' && this.ortTensor.location !== 'cpu-pinned';
  }

  /** Values as float32 (downloads from the GPU when needed). */
  async float32(): Promise<Float32Array> {
    if (this.ortTensor.type !== 'float32') throw new InferenceError(`expected a float32 tensor, got ${this.ortTensor.type}`);
    const data = this.onDevice ? await this.ortTensor.getData() : this.ortTensor.data;
    return data as Float32Array;
  }

  /** Frees GPU memory; harmless for CPU tensors. */
  dispose(): void {
    if (this.onDevice) this.ortTensor.dispose();
  }
}

export function product(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}
