/**
 * A deterministic embedder.bin for tests and for trying the tools before a model is shipped:
 * random unit-ish rows quantized like models/retrolab/data.py `MeanEmbedder.quantize`.
 */
export function syntheticEmbedderBytes(vocabSize: number, dim: number, seed = 1): Uint8Array {
  let s = seed >>> 0 || 1;
  const next = () => {
    // xorshift32
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
  const out = new Uint8Array(vocabSize * dim + vocabSize * 4);
  const codes = new Int8Array(out.buffer, 0, vocabSize * dim);
  const scales = new DataView(out.buffer, vocabSize * dim);
  for (let v = 0; v < vocabSize; v++) {
    for (let j = 0; j < dim; j++) codes[v * dim + j] = Math.round((next() * 2 - 1) * 127);
    scales.setFloat32(v * 4, (0.05 + next() * 0.1) / 127, true);
  }
  return out;
}
