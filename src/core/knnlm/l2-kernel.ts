/**
 * The kNN-LM scan as a WebAssembly SIMD module: int16 query x int8 keys dot products, and a filter
 * that turns them into squared-L2 distance terms and lists the keys under a threshold.
 *
 * It follows src/core/retrieval/simd-scan.ts (int16 x int8 products with `i32x4.dot_i16x8_s`, the
 * module emitted byte by byte at load, no build step) with two changes the kNN-LM needs at a million
 * keys and k = 1024:
 * - the module is emitted for one row width, so the query stays in v128 locals for the whole scan
 *   and rows are read at constant offsets (no inner loop): 1M x 64 codes in ~3 ms instead of ~3.5;
 * - `below` computes four distance terms at a time (`f32x4`) and lists only the keys at or under a
 *   threshold (`f32x4.le` + `v128.any_true`), so JS sorts the ~k survivors instead of a million
 *   distances (that JS loop alone took ~3 ms per query).
 */

import {
  ANY_TRUE, BLOCK, BR, BR_IF, DOT_I16, END, EXTEND_HIGH_S, EXTEND_LOW_S, F32, F32_LE, F32X4_ADD, F32X4_FROM_I32X4, F32X4_LE,
  F32X4_MUL, F32X4_SPLAT, I32, I32_ADD, I32_AND, I32_GE_U, I32_LT_U, I32_SHL, I32_STORE, I32X4_ADD, IF, LANE, LOOP, V128, V128_LOAD,
  V128_ZERO, compileIfSupported, funcBody, funcType, get, i32const, moduleBytes as wasmModule, name, section, set, simd, tee, uleb, vec,
} from '../wasm/emit';

/** `addr + (i << 2)`: the address of element i of a 4-byte array. */
const at4 = (base: number, i: number) => [...get(base), ...get(i), ...i32const(2), ...I32_SHL, ...I32_ADD];

/**
 * sums(q, codes, n, out): out[i] = Σ_j q[j] * codes[i*dim16 + j] (int32), for a dim16 fixed when the
 * module is emitted: the query lives in 2*dim16/16 v128 locals for the whole scan and the row is
 * read at constant offsets, so the loop body is loads, widenings and dot products only.
 */
function sumsCode(dim16: number): { locals: [number, number][]; code: number[] } {
  const steps = dim16 / 16;
  const S = { Q: 0, CODES: 1, N: 2, OUT: 3, I: 4, P: 5, ACC: 6, V: 7, QV: 8 };
  const code: number[] = [];
  for (let s = 0; s < steps; s++) {
    code.push(...get(S.Q), ...V128_LOAD(32 * s), ...set(S.QV + 2 * s));
    code.push(...get(S.Q), ...V128_LOAD(32 * s + 16), ...set(S.QV + 2 * s + 1));
  }
  code.push(
    ...i32const(0), ...set(S.I),
    ...get(S.CODES), ...set(S.P),
    ...BLOCK,
    ...LOOP,
    ...get(S.I), ...get(S.N), ...I32_GE_U, ...BR_IF(1),
    ...V128_ZERO, ...set(S.ACC),
  );
  for (let s = 0; s < steps; s++) {
    code.push(
      ...get(S.P), ...V128_LOAD(16 * s), ...set(S.V),
      ...get(S.ACC),
      ...get(S.V), ...EXTEND_LOW_S, ...get(S.QV + 2 * s), ...DOT_I16, ...I32X4_ADD,
      ...get(S.V), ...EXTEND_HIGH_S, ...get(S.QV + 2 * s + 1), ...DOT_I16, ...I32X4_ADD,
      ...set(S.ACC),
    );
  }
  code.push(
    ...at4(S.OUT, S.I),
    ...get(S.ACC), ...LANE(0), ...get(S.ACC), ...LANE(1), ...I32_ADD, ...get(S.ACC), ...LANE(2), ...I32_ADD, ...get(S.ACC), ...LANE(3), ...I32_ADD,
    ...I32_STORE,
    ...get(S.P), ...i32const(dim16), ...I32_ADD, ...set(S.P),
    ...get(S.I), ...i32const(1), ...I32_ADD, ...set(S.I),
    ...BR(0),
    ...END,
    ...END,
  );
  return { locals: [[2, I32], [2 + 2 * steps, V128]], code };
}

// below(sums, base, coef, n, sigma, thr, idx) -> count: with d[i] = base[i] + (sigma * coef[i]) *
// f32(sums[i]) computed four keys at a time, idx[0..count) = every i < n with d[i] <= thr,
// ascending. The arrays must be readable up to n rounded up to 4. A block of four with a key under
// the threshold is checked lane by lane from the register (no scratch array: it would be 4 bytes a key).
const B = { SUMS: 0, BASE: 1, COEF: 2, N: 3, SIGMA: 4, THR: 5, IDX: 6, I: 7, C: 8, SIG4: 9, THR4: 10, D4: 11 };
const F32X4_LANE = (l: number) => simd(0x1f, l);
const laneCheck = (l: number): number[] => [
  // (i + l < n) & (d4[l] <= thr), both evaluated
  ...get(B.I), ...i32const(l), ...I32_ADD, ...get(B.N), ...I32_LT_U,
  ...get(B.D4), ...F32X4_LANE(l), ...get(B.THR), ...F32_LE,
  ...I32_AND,
  ...IF,
  ...at4(B.IDX, B.C), ...get(B.I), ...i32const(l), ...I32_ADD, ...I32_STORE,
  ...get(B.C), ...i32const(1), ...I32_ADD, ...set(B.C),
  ...END,
];
const belowCode: number[] = [
  ...get(B.SIGMA), ...F32X4_SPLAT, ...set(B.SIG4),
  ...get(B.THR), ...F32X4_SPLAT, ...set(B.THR4),
  ...BLOCK,
  ...LOOP,
  ...get(B.I), ...get(B.N), ...I32_GE_U, ...BR_IF(1),
  ...at4(B.BASE, B.I), ...V128_LOAD(0),
  ...at4(B.COEF, B.I), ...V128_LOAD(0), ...get(B.SIG4), ...F32X4_MUL,
  ...at4(B.SUMS, B.I), ...V128_LOAD(0), ...F32X4_FROM_I32X4,
  ...F32X4_MUL, ...F32X4_ADD, ...tee(B.D4),
  ...get(B.THR4), ...F32X4_LE, ...ANY_TRUE,
  ...IF,
  ...laneCheck(0), ...laneCheck(1), ...laneCheck(2), ...laneCheck(3),
  ...END,
  ...get(B.I), ...i32const(4), ...I32_ADD, ...set(B.I),
  ...BR(0),
  ...END,
  ...END,
  ...get(B.C),
];

function moduleBytes(dim16: number): Uint8Array<ArrayBuffer> {
  const sums = sumsCode(dim16);
  return wasmModule(
    section(1, vec([funcType([I32, I32, I32, I32], []), funcType([I32, I32, I32, I32, F32, F32, I32], [I32])])),
    section(3, vec([[0], [1]])),
    section(5, vec([[0x00, ...uleb(1)]])),
    section(7, vec([[...name('sums'), 0x00, 0], [...name('below'), 0x00, 1], [...name('memory'), 0x02, 0]])),
    section(10, vec([funcBody(sums.locals, sums.code), funcBody([[2, I32], [3, V128]], belowCode)])),
  );
}

const compiled = new Map<number, WebAssembly.Module | null>();

/** The module for rows of dim16 codes, or null where WebAssembly SIMD is unavailable. */
function kernel(dim16: number): WebAssembly.Module | null {
  let module = compiled.get(dim16);
  if (module === undefined) {
    module = compileIfSupported(moduleBytes(dim16));
    compiled.set(dim16, module);
  }
  return module;
}

/** Widest rows the kernel takes (the query is held in 2 * dim / 16 locals). */
export const L2_KERNEL_MAX_DIM = 1024;

export function l2KernelSupported(dim = 16): boolean {
  return dim <= L2_KERNEL_MAX_DIM && kernel(Math.ceil(dim / 16) * 16) !== null;
}

const align16 = (n: number) => Math.ceil(n / 16) * 16;

/**
 * int8 keys held in a kernel instance's memory. Layout: query int16 [dim16], then sums (i32),
 * base, coef (f32) and idx (i32), each [n rounded up to 4], then the codes [n * dim16] (rows
 * zero-padded). The memory is grown once, to its final size, when the kernel is made.
 */
export class L2Kernel {
  readonly dim16: number;
  private readonly memory: WebAssembly.Memory;
  private readonly sumsFn: (q: number, codes: number, n: number, out: number) => void;
  private readonly belowFn: (sums: number, base: number, coef: number, n: number, sigma: number, thr: number, idx: number) => number;
  private readonly sumsPtr: number;
  private readonly basePtr: number;
  private readonly coefPtr: number;
  private readonly idxPtr: number;
  private readonly codesPtr: number;
  private sigma = 1;

  private queryView: Int16Array | null = null;
  private sumsView: Int32Array | null = null;

  /**
   * `base[i]` and `coef[i]` are the per-key terms of the distance (see `below`). With `order`, the
   * kernel's row i is row order[i] of `codes` (the IVF index keeps each list's keys contiguous);
   * `base` and `coef` are then already in the kernel's order. Without `codes` the rows, base and
   * coef are zero until written (`writeKey`: keys copied in piece by piece, with no second copy).
   */
  constructor(
    codes: Int8Array | null,
    readonly count: number,
    readonly dim: number,
    base?: Float32Array,
    coef?: Float32Array,
    order?: ArrayLike<number>,
  ) {
    this.dim16 = Math.ceil(dim / 16) * 16;
    const module = dim <= L2_KERNEL_MAX_DIM ? kernel(this.dim16) : null;
    if (!module) throw new Error(`the WebAssembly SIMD kNN kernel is not available for ${dim} dims`);
    const n4 = Math.ceil(count / 4) * 4;
    const instance = new WebAssembly.Instance(module, {});
    this.memory = instance.exports.memory as WebAssembly.Memory;
    this.sumsFn = instance.exports.sums as L2Kernel['sumsFn'];
    this.belowFn = instance.exports.below as L2Kernel['belowFn'];
    this.sumsPtr = align16(this.dim16 * 2);
    this.basePtr = this.sumsPtr + align16(n4 * 4);
    this.coefPtr = this.basePtr + align16(n4 * 4);
    this.idxPtr = this.coefPtr + align16(n4 * 4);
    this.codesPtr = this.idxPtr + align16(n4 * 4);
    const need = this.codesPtr + count * this.dim16;
    if (need > 4 * 1024 ** 3 - 65536) throw new RangeError(`${count} keys of ${dim} dims need ${(need / 1024 ** 3).toFixed(1)} GiB, over WebAssembly's 4 GiB: project the keys to fewer dims (PCA)`);
    const pages = Math.ceil(need / 65536) - this.memory.buffer.byteLength / 65536;
    if (pages > 0) this.memory.grow(pages);
    if (base) this.base().set(base.subarray(0, count));
    if (coef) this.coef().set(coef.subarray(0, count));
    if (!codes) return;
    const mem = new Int8Array(this.memory.buffer);
    if (order) {
      for (let i = 0; i < count; i++) {
        const r = order[i]!;
        mem.set(codes.subarray(r * dim, (r + 1) * dim), this.codesPtr + i * this.dim16);
      }
    } else if (this.dim16 === dim) {
      mem.set(codes.subarray(0, count * dim), this.codesPtr);
    } else {
      for (let i = 0; i < count; i++) mem.set(codes.subarray(i * dim, (i + 1) * dim), this.codesPtr + i * this.dim16);
    }
  }

  /** Bytes of WebAssembly memory this kernel holds. */
  get bytes(): number {
    return this.memory.buffer.byteLength;
  }

  /** The per-key terms s²‖c‖² (a view of the kernel's memory, which never grows after construction). */
  base(): Float32Array {
    return new Float32Array(this.memory.buffer, this.basePtr, this.count);
  }

  /** The per-key terms −2s (a view). */
  coef(): Float32Array {
    return new Float32Array(this.memory.buffer, this.coefPtr, this.count);
  }

  /** The keys' codes, row i at i * dim16 (a view). */
  codes(): Int8Array {
    return new Int8Array(this.memory.buffer, this.codesPtr, this.count * this.dim16);
  }

  /**
   * Writes key `row` of the kernel: codes src[offset .. offset + dim) with scale `scale`; returns
   * its base term s²‖c‖² (in float64, before the float32 store, as the search's bound wants it).
   */
  writeKey(row: number, src: Int8Array, offset: number, scale: number, codes: Int8Array, base: Float32Array, coef: Float32Array): number {
    const { dim } = this;
    let c2 = 0;
    for (let j = 0, o = row * this.dim16; j < dim; j++) {
      const c = src[offset + j]!;
      codes[o + j] = c;
      c2 += c * c;
    }
    const b = scale * scale * c2;
    base[row] = b;
    coef[row] = -2 * scale;
    return b;
  }

  /**
   * Integer dot products of `query` with every key (a view, valid until the next call); `sigma`
   * is kept for `below`.
   */
  scan(query: Int16Array, sigma: number): Int32Array {
    new Int16Array(this.memory.buffer, 0, this.dim16).set(query.subarray(0, this.dim));
    this.sumsFn(0, this.codesPtr, this.count, this.sumsPtr);
    this.sigma = sigma;
    return new Int32Array(this.memory.buffer, this.sumsPtr, this.count);
  }

  /** Sets the query (and `sigma`) for `scanRange`. */
  setQuery(query: Int16Array, sigma: number): void {
    this.queryView ??= new Int16Array(this.memory.buffer, 0, this.dim16);
    this.queryView.set(query.subarray(0, this.dim));
    this.sigma = sigma;
  }

  /**
   * Integer dot products of the query of `setQuery` with keys [start, start + count), written to
   * `sums()` at the same positions (the IVF index scans only the lists it probes).
   */
  scanRange(start: number, count: number): void {
    if (!(start >= 0 && count >= 0 && start + count <= this.count)) throw new RangeError(`keys ${start}..${start + count} are outside 0..${this.count}`);
    this.sumsFn(0, this.codesPtr + start * this.dim16, count, this.sumsPtr + start * 4);
  }

  /** The dot products of the last scans (a view, valid until the memory grows: it never does after construction). */
  sums(): Int32Array {
    this.sumsView ??= new Int32Array(this.memory.buffer, this.sumsPtr, this.count);
    return this.sumsView;
  }

  /**
   * Keys whose float32 distance term base[i] + (sigma * coef[i]) * sums[i] from the last scan is
   * <= thr, ascending (a view, valid until the next call). With `count`, only keys [0, count): the
   * exact search over a prefix of the datastore (its first entries, in text order).
   */
  below(thr: number, count = this.count): Int32Array {
    if (!(count >= 0 && count <= this.count)) throw new RangeError(`keys 0..${count} are outside 0..${this.count}`);
    const c = this.belowFn(this.sumsPtr, this.basePtr, this.coefPtr, count, this.sigma, thr, this.idxPtr);
    return new Int32Array(this.memory.buffer, this.idxPtr, c);
  }
}
