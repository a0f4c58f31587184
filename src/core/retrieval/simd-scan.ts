/**
 * The flat index's int8 scan as a WebAssembly SIMD kernel: int16 query x int8 codes, 16 codes per
 * step (`i16x8.extend_*_i8x16_s` then `i32x4.dot_i16x8_s`), exact int32 sums. A typed-array loop in
 * JS took ~30 ms per query over 82k x 256 codes; see docs/datastore-format.md for measurements.
 *
 * The module is a few dozen instructions, emitted here byte by byte rather than shipped as a
 * binary, so there is no build step and the code reads as what it does. Where WebAssembly SIMD
 * is missing (WebAssembly.validate fails) the flat index falls back to its JS loop.
 */

import {
  DOT_I16, EXTEND_HIGH_S, EXTEND_LOW_S, I32, I32_ADD, I32_GE_U, I32_LT_U, I32_SHL, I32X4_ADD, LANE, V128, V128_LOAD, V128_ZERO,
  compileIfSupported, funcBody, funcType, get, i32const, memarg, moduleBytes, name, section, set, tee, uleb, vec,
} from '../wasm/emit';

// scan(q, codes, n, dim16, out): out[i] = sum_j q[j] * codes[i*dim16 + j], q int16, codes int8,
// dim16 a multiple of 16. Params 0..4; locals 5 = i, 6 = j, 7 = row pointer, 8 = acc, 9 = codes.
const [Q, CODES, N, DIM, OUT, I, J, P, ACC, V] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
const body: number[] = [
  ...i32const(0), ...set(I),
  ...get(CODES), ...set(P),
  0x02, 0x40, // block
  0x03, 0x40, // loop over rows
  ...get(I), ...get(N), ...I32_GE_U, 0x0d, 1, // br_if out of the block when i >= n
  ...V128_ZERO, ...set(ACC),
  ...i32const(0), ...set(J),
  0x03, 0x40, // loop over 16-code steps
  ...get(P), ...get(J), ...I32_ADD, ...V128_LOAD(0), ...set(V),
  ...get(ACC),
  ...get(V), ...EXTEND_LOW_S,
  ...get(Q), ...get(J), ...i32const(1), ...I32_SHL, ...I32_ADD, ...V128_LOAD(0),
  ...DOT_I16, ...I32X4_ADD,
  ...get(V), ...EXTEND_HIGH_S,
  ...get(Q), ...get(J), ...i32const(1), ...I32_SHL, ...I32_ADD, ...V128_LOAD(16),
  ...DOT_I16, ...I32X4_ADD,
  ...set(ACC),
  ...get(J), ...i32const(16), ...I32_ADD, ...tee(J), ...get(DIM), ...I32_LT_U, 0x0d, 0, // br_if continue
  0x0b, // end step loop
  ...get(OUT), ...get(I), ...i32const(2), ...I32_SHL, ...I32_ADD,
  ...get(ACC), ...LANE(0), ...get(ACC), ...LANE(1), ...I32_ADD, ...get(ACC), ...LANE(2), ...I32_ADD, ...get(ACC), ...LANE(3), ...I32_ADD,
  0x36, ...memarg(2, 0), // i32.store
  ...get(P), ...get(DIM), ...I32_ADD, ...set(P),
  ...get(I), ...i32const(1), ...I32_ADD, ...set(I),
  0x0c, 0, // br to the row loop
  0x0b, // end row loop
  0x0b, // end block
];

const MODULE_BYTES = moduleBytes(
  section(1, vec([funcType([I32, I32, I32, I32, I32], [])])),
  section(3, vec([[0]])),
  section(5, vec([[0x00, ...uleb(1)]])),
  section(7, vec([[...name('scan'), 0x00, 0], [...name('memory'), 0x02, 0]])),
  section(10, vec([funcBody([[3, I32], [2, V128]], body)])),
);

let compiled: WebAssembly.Module | null | undefined;

/** The compiled kernel, or null where WebAssembly SIMD is unavailable. */
function kernel(): WebAssembly.Module | null {
  if (compiled === undefined) {
    compiled = compileIfSupported(MODULE_BYTES);
  }
  return compiled;
}

export function simdScanSupported(): boolean {
  return kernel() !== null;
}

/** Largest query magnitude after scaling: 8191 * 127 * 2048 dims still fits int32. */
export const QUERY_INT_MAX = 8191;
export const SIMD_MAX_DIM = 2048;

/** int8 codes copied into a kernel instance's memory, scanned against int16 queries. */
export class SimdInt8Scanner {
  readonly dim16: number;
  private readonly memory: WebAssembly.Memory;
  private readonly scanFn: (q: number, codes: number, n: number, dim16: number, out: number) => void;
  private readonly outPtr: number;
  private readonly codesPtr: number;

  constructor(
    codes: Int8Array,
    readonly count: number,
    readonly dim: number,
  ) {
    const module = kernel();
    if (!module) throw new Error('WebAssembly SIMD is not available');
    if (dim > SIMD_MAX_DIM) throw new RangeError(`the SIMD scan supports up to ${SIMD_MAX_DIM} dims`);
    this.dim16 = Math.ceil(dim / 16) * 16;
    const instance = new WebAssembly.Instance(module, {});
    this.memory = instance.exports.memory as WebAssembly.Memory;
    this.scanFn = instance.exports.scan as SimdInt8Scanner['scanFn'];
    // Layout: query int16 [dim16], out int32 [count], codes int8 [count * dim16] (rows zero-padded).
    this.outPtr = this.dim16 * 2;
    this.codesPtr = this.outPtr + Math.ceil((count * 4) / 16) * 16;
    const need = this.codesPtr + count * this.dim16;
    const pages = Math.ceil(need / 65536) - this.memory.buffer.byteLength / 65536;
    if (pages > 0) this.memory.grow(pages);
    const mem = new Int8Array(this.memory.buffer);
    if (this.dim16 === dim) {
      mem.set(codes.subarray(0, count * dim), this.codesPtr);
    } else {
      for (let i = 0; i < count; i++) mem.set(codes.subarray(i * dim, (i + 1) * dim), this.codesPtr + i * this.dim16);
    }
  }

  /** Integer dot products of `query` (int16 values, length dim) with every code row. */
  scan(query: Int16Array): Int32Array {
    new Int16Array(this.memory.buffer, 0, this.dim16).set(query.subarray(0, this.dim));
    this.scanFn(0, this.codesPtr, this.count, this.dim16, this.outPtr);
    return new Int32Array(this.memory.buffer, this.outPtr, this.count);
  }
}
