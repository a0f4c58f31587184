/**
 * The flat index's int8 scan as a WebAssembly SIMD kernel: int16 query x int8 codes, 16 codes per
 * step (`i16x8.extend_*_i8x16_s` then `i32x4.dot_i16x8_s`), exact int32 sums. A typed-array loop in
 * JS took ~30 ms per query over 82k x 256 codes; see docs/datastore-format.md for measurements.
 *
 * The module is a few dozen instructions, emitted here byte by byte rather than shipped as a
 * binary, so there is no build step and the code reads as what it does. Where WebAssembly SIMD
 * is missing (WebAssembly.validate fails) the flat index falls back to its JS loop.
 */

const I32 = 0x7f;
const V128 = 0x7b;

/** Unsigned LEB128. */
function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 (small constants only). */
function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
const name = (s: string) => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];

// Instructions used by the kernel.
const get = (i: number) => [0x20, ...uleb(i)];
const set = (i: number) => [0x21, ...uleb(i)];
const tee = (i: number) => [0x22, ...uleb(i)];
const i32const = (v: number) => [0x41, ...sleb(v)];
const simd = (op: number, ...imm: number[]) => [0xfd, ...uleb(op), ...imm];
const memarg = (alignLog2: number, offset: number) => [...uleb(alignLog2), ...uleb(offset)];
const I32_ADD = [0x6a];
const I32_SHL = [0x74];
const I32_LT_U = [0x49];
const I32_GE_U = [0x4f];
const V128_LOAD = (offset: number) => simd(0x00, ...memarg(0, offset));
const V128_ZERO = simd(0x0c, ...new Array<number>(16).fill(0));
const EXTEND_LOW_S = simd(0x87);
const EXTEND_HIGH_S = simd(0x88);
const DOT_I16 = simd(0xba);
const I32X4_ADD = simd(0xae);
const LANE = (l: number) => simd(0x1b, l);

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
  0x0b, // end function
];

const MODULE_BYTES = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  ...section(1, vec([[0x60, ...vec([[I32], [I32], [I32], [I32], [I32]]), ...vec([])]])),
  ...section(3, vec([[0]])),
  ...section(5, vec([[0x00, ...uleb(1)]])),
  ...section(7, vec([[...name('scan'), 0x00, 0], [...name('memory'), 0x02, 0]])),
  ...section(10, vec([(() => {
    const fn = [...vec([[...uleb(3), I32], [...uleb(2), V128]]), ...body];
    return [...uleb(fn.length), ...fn];
  })()])),
]);

let compiled: WebAssembly.Module | null | undefined;

/** The compiled kernel, or null where WebAssembly SIMD is unavailable. */
function kernel(): WebAssembly.Module | null {
  if (compiled === undefined) {
    compiled = typeof WebAssembly !== 'undefined' && WebAssembly.validate(MODULE_BYTES) ? new WebAssembly.Module(MODULE_BYTES) : null;
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
