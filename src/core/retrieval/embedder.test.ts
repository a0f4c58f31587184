import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, syntheticEmbedderBytes } from '../datastore/node';
import { EmbedderFormatError, MeanEmbedder } from './embedder';

/** A 3-token, 2-d embedder small enough to compute by hand. */
function toyBytes(): Uint8Array {
  const out = new Uint8Array(3 * 2 + 3 * 4);
  new Int8Array(out.buffer, 0, 6).set([10, 0, 0, 20, -127, 127]);
  const scales = new DataView(out.buffer, 6);
  scales.setFloat32(0, 0.5, true);
  scales.setFloat32(4, 0.25, true);
  scales.setFloat32(8, 1, true);
  return out;
}

describe('MeanEmbedder', () => {
  it('embeds a toy chunk as the normalised mean of row * scale', () => {
    const e = MeanEmbedder.fromBytes(toyBytes(), 3, 2);
    // rows: [5, 0], [0, 5], [-127, 127]
    expect(Array.from(e.embed([0]))).toEqual([1, 0]);
    const v = e.embed([0, 1]); // mean [2.5, 2.5]
    expect(v[0]).toBeCloseTo(Math.SQRT1_2, 7);
    expect(v[1]).toBeCloseTo(Math.SQRT1_2, 7);
    const w = e.embed([0, 0, 2]); // mean [(10-127)/3, 127/3]
    const n = Math.hypot(-117, 127);
    expect(w[0]).toBeCloseTo(-117 / n, 6);
    expect(w[1]).toBeCloseTo(127 / n, 6);
    expect(Array.from(e.embed([]))).toEqual([0, 0]);
  });

  it('batches into one Float32Array and embeds only the real tokens of a row', () => {
    const e = MeanEmbedder.fromBytes(toyBytes(), 3, 2);
    const batch = e.embedBatch([[0], [0, 1]]);
    expect(batch.length).toBe(4);
    expect(Array.from(batch.subarray(2))).toEqual(Array.from(e.embed([0, 1])));
    const out = new Float32Array(2);
    e.embedRows([0, 2, 2, 2], 4, [1], 0, 1, out); // padding ids after the chunk's length are ignored
    expect(Array.from(out)).toEqual([1, 0]);
  });

  it('refuses files of the wrong size and ids outside the vocabulary', () => {
    expect(() => MeanEmbedder.fromBytes(new Uint8Array(17), 3, 2)).toThrow(EmbedderFormatError);
    expect(() => MeanEmbedder.fromBytes(toyBytes(), 3, 2).embed([3])).toThrow(RangeError);
    const a = MeanEmbedder.fromBytes(toyBytes(), 3, 2);
    const other = toyBytes();
    other[0] = 11;
    expect(MeanEmbedder.fromBytes(other, 3, 2).fingerprint).not.toBe(a.fingerprint);
  });

  const python = '/usr/bin/python3';
  const haveNumpy = existsSync(python) && (() => {
    try {
      execFileSync(python, ['-c', 'import numpy'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  it.skipIf(!haveNumpy)('matches models/retrolab/data.py MeanEmbedder on the same bytes', () => {
    const vocab = 512, dim = 64;
    const bytes = syntheticEmbedderBytes(vocab, dim, 7);
    const dir = mkdtempSync(join(tmpdir(), 'retrolab-embed-'));
    writeFileSync(join(dir, 'embedder.bin'), bytes);
    // Chunks of mixed lengths, including repeats and a short last chunk.
    let s = 12345;
    const chunks: number[][] = Array.from({ length: 40 }, (_, i) =>
      Array.from({ length: i % 7 === 6 ? 5 : 32 }, () => (s = (s * 1103515245 + 12345) % 2147483648) % vocab),
    );
    writeFileSync(join(dir, 'chunks.json'), JSON.stringify(chunks));
    const script = `
import json, sys, numpy as np
from retrolab.data import MeanEmbedder
d = sys.argv[1]; vocab, dim = ${vocab}, ${dim}
raw = np.fromfile(d + '/embedder.bin', dtype=np.uint8)
e = MeanEmbedder(raw[:vocab*dim].view(np.int8).reshape(vocab, dim), raw[vocab*dim:].view('<f4'))
chunks = json.load(open(d + '/chunks.json'))
C = max(len(c) for c in chunks)
ids = np.zeros((len(chunks), C), dtype=np.int64); lengths = np.array([len(c) for c in chunks])
for i, c in enumerate(chunks): ids[i, :len(c)] = c
e.embed(ids, lengths).astype('<f4').tofile(d + '/py.f32')
`;
    execFileSync(python, ['-c', script, dir], { env: { ...process.env, PYTHONPATH: join(REPO_ROOT, 'models') } });
    const py = new Float32Array(new Uint8Array(readFileSync(join(dir, 'py.f32'))).buffer);
    const ts = MeanEmbedder.fromBytes(bytes, vocab, dim).embedBatch(chunks);
    expect(py.length).toBe(ts.length);
    let maxDiff = 0;
    for (let i = 0; i < ts.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ts[i]! - py[i]!));
    // float32 sums in a different order: a few ulps of values below 1
    expect(maxDiff).toBeLessThan(1e-6);
    expect(Math.abs(py[0]!)).toBeGreaterThan(0);
  });
});
