/** The IVF sections of a kNN-LM shard (docs/datastore-format.md): their version and consistency check. */
import type { KnnlmIvf } from '../../protocol/shard';

/** Version of the IVF sections' layout (`meta.knnlm.ivf.version`); readers search exactly for others. */
export const IVF_FORMAT_VERSION = 1;

/** Checks that IVF lists fit `count` keys of `dim` dims: offsets from 0 to count, every id exactly once. */
export function checkIvf(ivf: KnnlmIvf, count: number, dim: number): string | null {
  const lists = ivf.offsets.length - 1;
  if (lists < 1) return 'IVF offsets hold no list';
  if (ivf.centroids.length !== lists * dim) return `IVF centroids hold ${ivf.centroids.length} floats, expected ${lists} x ${dim}`;
  if (ivf.offsets[0] !== 0 || ivf.offsets[lists] !== count) return `IVF offsets must run from 0 to ${count}`;
  for (let c = 0; c < lists; c++) if (ivf.offsets[c]! > ivf.offsets[c + 1]!) return `IVF offsets decrease at list ${c}`;
  if (ivf.ids.length !== count) return `IVF lists hold ${ivf.ids.length} ids, expected ${count}`;
  const seen = new Uint8Array(count);
  for (let t = 0; t < count; t++) {
    const id = ivf.ids[t]!;
    if (id >= count || seen[id]) return `IVF entry id ${id} is out of range or listed twice`;
    seen[id] = 1;
  }
  return null;
}
