/**
 * PCA for kNN-LM keys ("Efficient Nearest Neighbor Language Models", He et al. 2021, project the
 * keys to fewer dimensions): the top eigenvectors of the keys' covariance, found with the cyclic
 * Jacobi method on the d x d covariance (d = 256: about a second, once per datastore).
 */

export interface Pca {
  /** input dimension */
  keyDim: number;
  /** output dimension */
  dim: number;
  /** mean of the fitted keys [keyDim] */
  mean: Float32Array;
  /** components, one per row, largest variance first [dim, keyDim] */
  basis: Float32Array;
  /** variance along each kept component [dim] */
  variances: Float64Array;
  /** share of the total variance the kept components explain */
  explained: number;
}

/** Eigen-decomposition of a symmetric matrix (row-major n x n, overwritten): values and column vectors. */
export function symmetricEigen(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let total = 0;
  for (let i = 0; i < n * n; i++) total += a[i]! * a[i]!;
  const tiny = 1e-30 + total * 1e-26;
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q]! * a[p * n + q]!;
    if (off <= tiny) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const app = a[p * n + p]!;
        const aqq = a[q * n + q]!;
        // Rotation angle that zeroes a[p][q] (Golub & Van Loan, Algorithm 8.4.1).
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p]!;
          const akq = a[k * n + q]!;
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k]!;
          const aqk = a[q * n + k]!;
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p]!;
          const vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = a[i * n + i]!;
  return { values, vectors: v };
}

/** Fits a projection of `count` keys [count, keyDim] onto their `dim` principal components. */
export function fitPca(keys: Float32Array, keyDim: number, dim: number): Pca {
  const count = Math.floor(keys.length / keyDim);
  if (!(Number.isInteger(dim) && dim >= 1 && dim <= keyDim)) throw new RangeError(`PCA dimension must be in 1..${keyDim}, got ${dim}`);
  if (count < 2) throw new RangeError('PCA needs at least two keys');
  const mean = new Float64Array(keyDim);
  for (let i = 0; i < count; i++) for (let j = 0; j < keyDim; j++) mean[j]! += keys[i * keyDim + j]!;
  for (let j = 0; j < keyDim; j++) mean[j]! /= count;
  // Upper triangle of the covariance, accumulated row by row from centred keys.
  const cov = new Float64Array(keyDim * keyDim);
  const x = new Float64Array(keyDim);
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < keyDim; j++) x[j] = keys[i * keyDim + j]! - mean[j]!;
    for (let a = 0; a < keyDim; a++) {
      const xa = x[a]!;
      const row = a * keyDim;
      for (let b = a; b < keyDim; b++) cov[row + b]! += xa * x[b]!;
    }
  }
  for (let a = 0; a < keyDim; a++) {
    for (let b = a; b < keyDim; b++) {
      const c = cov[a * keyDim + b]! / (count - 1);
      cov[a * keyDim + b] = c;
      cov[b * keyDim + a] = c;
    }
  }
  const { values, vectors } = symmetricEigen(cov, keyDim);
  const order = Array.from({ length: keyDim }, (_, i) => i).sort((a, b) => values[b]! - values[a]! || a - b);
  const basis = new Float32Array(dim * keyDim);
  const variances = new Float64Array(dim);
  let total = 0;
  for (let i = 0; i < keyDim; i++) total += Math.max(0, values[i]!);
  let kept = 0;
  for (let r = 0; r < dim; r++) {
    const c = order[r]!;
    variances[r] = values[c]!;
    kept += Math.max(0, values[c]!);
    // Fix each component's sign (largest |entry| positive) so a refit gives the same basis.
    let big = 0;
    for (let j = 0; j < keyDim; j++) if (Math.abs(vectors[j * keyDim + c]!) > Math.abs(big)) big = vectors[j * keyDim + c]!;
    const sign = big < 0 ? -1 : 1;
    for (let j = 0; j < keyDim; j++) basis[r * keyDim + j] = sign * vectors[j * keyDim + c]!;
  }
  return { keyDim, dim, mean: Float32Array.from(mean), basis, variances, explained: total > 0 ? kept / total : 1 };
}

/** The basis widened to float64 once per basis (exact), instead of on every multiply. */
const widened = new WeakMap<Float32Array, Float64Array>();

/**
 * basis · (key − mean) for `count` keys [count, keyDim] -> [count, dim]. Each output is one float64
 * sum over j in order, as the plain loop; four outputs share each pass over the key (same sums,
 * same order, the same bits), which is what the key builder's ~20,000 windows spend their time on.
 */
export function projectKeys(pca: { keyDim: number; dim: number; mean: Float32Array; basis: Float32Array }, keys: Float32Array, out: Float32Array = new Float32Array((keys.length / pca.keyDim) * pca.dim)): Float32Array {
  const { keyDim, dim, mean } = pca;
  let basis = widened.get(pca.basis);
  if (!basis) {
    basis = Float64Array.from(pca.basis);
    widened.set(pca.basis, basis);
  }
  const count = keys.length / keyDim;
  const x = new Float64Array(keyDim);
  const whole = dim - (dim % 4);
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < keyDim; j++) x[j] = keys[i * keyDim + j]! - mean[j]!;
    let r = 0;
    for (; r < whole; r += 4) {
      const o0 = r * keyDim;
      const o1 = o0 + keyDim;
      const o2 = o1 + keyDim;
      const o3 = o2 + keyDim;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let j = 0; j < keyDim; j++) {
        const v = x[j]!;
        s0 += basis[o0 + j]! * v;
        s1 += basis[o1 + j]! * v;
        s2 += basis[o2 + j]! * v;
        s3 += basis[o3 + j]! * v;
      }
      out[i * dim + r] = s0;
      out[i * dim + r + 1] = s1;
      out[i * dim + r + 2] = s2;
      out[i * dim + r + 3] = s3;
    }
    for (; r < dim; r++) {
      let s = 0;
      for (let j = 0, o = r * keyDim; j < keyDim; j++) s += basis[o + j]! * x[j]!;
      out[i * dim + r] = s;
    }
  }
  return out;
}
