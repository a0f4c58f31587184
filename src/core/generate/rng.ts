/**
 * Seeded PRNG for sampling: the same seed gives the same stream in every browser and in Node, so
 * "same seed + same settings => same tokens" holds across the compare view and the tests.
 * SplitMix32-style state increment with a 32-bit avalanche mix; 2^32 period is plenty for text.
 */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = (Math.trunc(seed) ^ 0x9e3779b9) >>> 0;
  }

  /** Uniform in [0, 1) with 32 bits of randomness. */
  next(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    z = (z ^ (z >>> 16)) >>> 0;
    return z / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/**
 * A seed from token ids (FNV-1a over the ids): the random-neighbour controls seed their draws with
 * the query, so the same text draws the same places again (docs/controls.md).
 */
export function seedOfIds(ids: ArrayLike<number>, from = 0, to = ids.length, seed = 2166136261): number {
  for (let i = from; i < to; i++) seed = Math.imul(seed ^ ids[i]!, 16777619) >>> 0;
  return seed;
}
