/**
 * Host-side preparation of a convolution for the sparse inference kernel (sparse_conv in
 * backend/wasm/native/kernels.c): eval-mode BatchNorm folded into the weights and a bias, then
 * the non-zeros of each output channel as one CSR row.
 */

/** Output positions per tile of the native kernel (SP_T in kernels.c): offsets are scaled by it. */
export const SPARSE_TILE = 16;

/** Eval-mode BatchNorm statistics and affine parameters, per output channel. */
export interface BatchNormStats {
  mean: Float32Array;
  variance: Float32Array;
  /** γ (undefined: 1, non-affine). */
  gamma?: Float32Array;
  /** β (undefined: 0). */
  beta?: Float32Array;
  eps: number;
}

export interface FoldedConv {
  /** [KH, KW, CI/groups, CO] with each output channel scaled by γ/√(var + ε): zeros stay zeros. */
  weight: Float32Array;
  /** β − mean·γ/√(var + ε) (+ the conv's own bias, scaled). */
  bias: Float32Array;
}

/**
 * conv → BN (eval) as one conv: y = Σ w·x·s + (b − mean)·s + β, s = γ/√(var + ε), computed in
 * float64 and rounded once.
 */
export function foldBatchNorm(weight: Float32Array, outChannels: number, bn?: BatchNormStats, convBias?: Float32Array): FoldedConv {
  const CO = outChannels;
  if (weight.length % CO !== 0) throw new Error(`foldBatchNorm: ${weight.length} weights are not a multiple of ${CO} channels`);
  const scale = new Float64Array(CO).fill(1);
  const bias = new Float32Array(CO);
  for (let o = 0; o < CO; o++) {
    const b = convBias ? convBias[o] : 0;
    if (bn) {
      scale[o] = (bn.gamma ? bn.gamma[o] : 1) / Math.sqrt(bn.variance[o] + bn.eps);
      bias[o] = (b - bn.mean[o]) * scale[o] + (bn.beta ? bn.beta[o] : 0);
    } else {
      bias[o] = b;
    }
  }
  const w = new Float32Array(weight.length);
  for (let i = 0; i < weight.length; i++) w[i] = weight[i] * scale[i % CO];
  return { weight: w, bias };
}

export interface CsrConv {
  /** [CO + 1]: row oc's non-zeros are entries rowptr[oc] .. rowptr[oc+1]. */
  rowptr: Int32Array;
  /**
   * [2·nnz] pairs (offset, weight bits): offset = k·SPARSE_TILE with k = (kh·KW + kw)·CI + c the
   * im2col row of input channel c (absolute, so groups need nothing else), ascending within a row.
   */
  nz: Int32Array;
  nnz: number;
}

/** The non-zeros of a [KH, KW, CI/groups, CO] weight, one CSR row per output channel. */
export function packCsr(weight: Float32Array, KH: number, KW: number, CI: number, CO: number, groups = 1): CsrConv {
  const CIg = CI / groups, COg = CO / groups;
  if (!Number.isInteger(CIg) || !Number.isInteger(COg)) throw new Error(`packCsr: ${groups} groups do not divide ${CI} → ${CO} channels`);
  if (weight.length !== KH * KW * CIg * CO) throw new Error(`packCsr: expected ${KH * KW * CIg * CO} weights, got ${weight.length}`);
  const rowptr = new Int32Array(CO + 1);
  for (let i = 0; i < weight.length; i++) if (weight[i] !== 0) rowptr[(i % CO) + 1]++;
  for (let o = 0; o < CO; o++) rowptr[o + 1] += rowptr[o];
  const nnz = rowptr[CO];
  const nz = new Int32Array(2 * nnz);
  const bits = new Float32Array(nz.buffer);
  const fill = rowptr.slice(0, CO);
  // i walks [kh][kw][ci][co], so each row receives its entries in ascending k
  for (let tap = 0, i = 0; tap < KH * KW; tap++) {
    for (let ci = 0; ci < CIg; ci++) {
      for (let o = 0; o < CO; o++, i++) {
        const v = weight[i];
        if (v === 0) continue;
        const c = Math.floor(o / COg) * CIg + ci;
        const j = fill[o]++;
        nz[2 * j] = (tap * CI + c) * SPARSE_TILE;
        bits[2 * j + 1] = v;
      }
    }
  }
  return { rowptr, nz, nnz };
}
