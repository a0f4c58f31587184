/** Node-only helpers for the model tests: where the shipped models and fixtures are. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NeighbourSource } from './neighbours';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
/** RETROLAB_MODELS_DIR / RETROLAB_FIXTURES_DIR point the tests at other exports (development). */
export const MODELS_DIR = process.env.RETROLAB_MODELS_DIR ?? join(REPO_ROOT, 'public/models');
export const FIXTURES_DIR = process.env.RETROLAB_FIXTURES_DIR ?? join(REPO_ROOT, 'models/fixtures');
export const GPT_ID = process.env.RETROLAB_GPT_ID ?? 'gpt-wt2';
export const RETRO_ID = process.env.RETROLAB_RETRO_ID ?? 'retro-wt2';

/**
 * models/fixtures/<id>.parity.json written by models/retrolab/ship.py from the same weights.
 * `logits_*` rows are for `positions` (all positions when absent).
 */
export interface ParityFixture {
  input_ids: number[];
  /** U x K x L (RETRO) */
  neighbour_ids?: number[][][];
  positions?: number[];
  logits_fp32_torch: number[][];
  /** PyTorch with the int8-dequantized weights: the same arithmetic as the shipped graph. */
  logits_int8_torch?: number[][];
  tolerance_int8?: number;
  tolerance_int8_vs_fp32_torch?: number;
  tolerance_int8_vs_int8_torch?: number;
}

export function fixturePath(id: string): string {
  return join(FIXTURES_DIR, `${id}.parity.json`);
}

export function readFixture(id: string): ParityFixture | null {
  const path = fixturePath(id);
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as ParityFixture) : null;
}

/** max |a[row p] - expected[i]| over the fixture's positions. */
export function maxDiffAtPositions(logits: Float32Array, vocab: number, positions: readonly number[], expected: readonly number[][]): number {
  let max = 0;
  positions.forEach((p, i) => {
    const row = expected[i]!;
    for (let j = 0; j < vocab; j++) max = Math.max(max, Math.abs(logits[p * vocab + j]! - row[j]!));
  });
  return max;
}

export function maxDiff(a: Float32Array, b: Float32Array, from = 0, to = Math.min(a.length, b.length)): number {
  let max = 0;
  for (let i = from; i < to; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

/**
 * A deterministic neighbour source over a fixed pool of rows: the query's ids pick rows by a hash,
 * so the same query always gets the same neighbours (what a datastore does) without needing one.
 * `log` records every query.
 */
export function hashedSource(pool: readonly number[][], log: number[][] = []): NeighbourSource {
  return async (query, k) => {
    log.push([...query]);
    let h = 2166136261;
    for (const id of query) h = Math.imul(h ^ id, 16777619) >>> 0;
    return Array.from({ length: k }, (_, i) => ({ tokenIds: pool[(h + i * 7919) % pool.length]!, distance: i / 10, title: `row ${(h + i * 7919) % pool.length}` }));
  };
}

/** The fixture's neighbours for the chunk whose tokens equal the query. */
export function fixtureSource(fixture: ParityFixture, chunk: number): NeighbourSource {
  const ids = fixture.input_ids;
  const nb = fixture.neighbour_ids ?? [];
  return async (query) => {
    for (let u = 0; u < nb.length; u++) {
      if (ids.slice(u * chunk, (u + 1) * chunk).join(',') === query.join(',')) return nb[u]!;
    }
    throw new Error(`fixture has no neighbours for query ${query.slice(0, 4).join(',')}...`);
  };
}
