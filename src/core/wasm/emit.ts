/**
 * A few WebAssembly encoding helpers and opcodes for the SIMD kernels that are emitted byte by byte at
 * load (src/core/retrieval/simd-scan.ts, src/core/knnlm/l2-kernel.ts): no build step, no shipped
 * binary, and each kernel reads as the instructions it runs. Only what those kernels use is here.
 */

/** Value types. */
export const I32 = 0x7f;
export const F32 = 0x7d;
export const V128 = 0x7b;

/** Unsigned LEB128. */
export function uleb(n: number): number[] {
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
export function sleb(n: number): number[] {
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

export const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
export const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
export const name = (s: string) => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
export const funcType = (params: number[], results: number[]) => [0x60, ...vec(params.map((p) => [p])), ...vec(results.map((r) => [r]))];
/** A code-section entry: locals as [count, type] runs, then the code and the function's `end`. */
export const funcBody = (locals: [number, number][], code: number[]) => {
  const fn = [...vec(locals.map(([count, type]) => [...uleb(count), type])), ...code, 0x0b];
  return [...uleb(fn.length), ...fn];
};

/** The module header (magic and version 1) followed by `sections`. */
export const moduleBytes = (...sections: number[][]): Uint8Array<ArrayBuffer> => new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...sections.flat()]);

/** Compiles `bytes`, or null where WebAssembly (or the SIMD the module uses) is unavailable. */
export function compileIfSupported(bytes: Uint8Array<ArrayBuffer>): WebAssembly.Module | null {
  return typeof WebAssembly !== 'undefined' && WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
}

// Instructions.
export const get = (i: number) => [0x20, ...uleb(i)];
export const set = (i: number) => [0x21, ...uleb(i)];
export const tee = (i: number) => [0x22, ...uleb(i)];
export const i32const = (v: number) => [0x41, ...sleb(v)];
export const simd = (op: number, ...imm: number[]) => [0xfd, ...uleb(op), ...imm];
export const memarg = (alignLog2: number, offset: number) => [...uleb(alignLog2), ...uleb(offset)];
export const BLOCK = [0x02, 0x40];
export const LOOP = [0x03, 0x40];
export const IF = [0x04, 0x40];
export const END = [0x0b];
export const BR = (depth: number) => [0x0c, depth];
export const BR_IF = (depth: number) => [0x0d, depth];
export const I32_ADD = [0x6a];
export const I32_AND = [0x71];
export const I32_SHL = [0x74];
export const I32_LT_U = [0x49];
export const I32_GE_U = [0x4f];
export const I32_STORE = [0x36, ...memarg(2, 0)];
export const F32_LOAD = [0x2a, ...memarg(2, 0)];
export const F32_LE = [0x5f];
export const V128_LOAD = (offset: number) => simd(0x00, ...memarg(0, offset));
export const V128_STORE = (offset: number) => simd(0x0b, ...memarg(0, offset));
export const V128_ZERO = simd(0x0c, ...new Array<number>(16).fill(0));
export const EXTEND_LOW_S = simd(0x87);
export const EXTEND_HIGH_S = simd(0x88);
export const DOT_I16 = simd(0xba);
export const I32X4_ADD = simd(0xae);
export const LANE = (l: number) => simd(0x1b, l);
export const F32X4_SPLAT = simd(0x13);
export const F32X4_LE = simd(0x45);
export const ANY_TRUE = simd(0x53);
export const F32X4_ADD = simd(0xe4);
export const F32X4_MUL = simd(0xe6);
export const F32X4_FROM_I32X4 = simd(0xfa);
