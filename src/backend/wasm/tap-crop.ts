// Filter taps that only ever meet padding contribute exactly nothing: at ResNet18's layer4 on
// 32 px inputs (1x1 feature maps, 3x3 filters, pad 1) 8 of 9 taps are such, yet im2col and the
// GEMMs would carry them all. These helpers find the taps that meet the input and slice the
// filter (or widen a gradient) to them, so the convolution kernels run on the smaller problem.
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { Scope } from './ops.js';

export interface TapCrop {
  kh0: number; LH: number;
  kw0: number; LW: number;
}

/** [first, last] tap along one axis that reads inside the input for some output position. */
function axisRange(K: number, D: number, S: number, O: number, pad: number, I: number): [number, number] {
  let lo = K, hi = -1;
  for (let k = 0; k < K; k++) {
    for (let o = 0; o < O; o++) {
      const i = o * S + k * D - pad;
      if (i >= 0 && i < I) {
        lo = Math.min(lo, k);
        hi = k;
        break;
      }
    }
  }
  return [lo, hi];
}

/** The taps to keep, or null when every tap meets the input (or none does). */
export function cropTaps(g: { KH: number; KW: number; DH: number; DW: number; SH: number; SW: number; OH: number;
  OW: number; H: number; W: number; top: number; left: number }): TapCrop | null {
  const [h0, h1] = axisRange(g.KH, g.DH, g.SH, g.OH, g.top, g.H);
  const [w0, w1] = axisRange(g.KW, g.DW, g.SW, g.OW, g.left, g.W);
  if (h1 < 0 || w1 < 0) return null;
  const LH = h1 - h0 + 1, LW = w1 - w0 + 1;
  if (LH === g.KH && LW === g.KW) return null;
  return { kh0: h0, LH, kw0: w0, LW };
}

/** filter[kh0:kh0+LH, kw0:kw0+LW, :, :] of a [KH,KW,A,B] filter. */
export function sliceTaps(s: Scope, filter: TensorInfo, c: TapCrop): TensorInfo {
  const [, KW, A, B] = filter.shape;
  const tap = A * B;
  const out = s.alloc([c.LH, c.LW, A, B]);
  for (let j = 0; j < c.LH; j++) {
    s.native.copy_floats(s.addr(out) + 4 * j * c.LW * tap, s.addr(filter) + 4 * ((c.kh0 + j) * KW + c.kw0) * tap, c.LW * tap);
  }
  return out;
}

/** The [KH,KW,A,B] tensor that is `part` [LH,LW,A,B] at the kept taps and 0 elsewhere. */
export function widenTaps(s: Scope, part: TensorInfo, KH: number, KW: number, c: TapCrop): TensorInfo {
  const [, , A, B] = part.shape;
  const tap = A * B;
  const out = s.alloc([KH, KW, A, B]);
  s.backend.typedArrayFromHeap(out).fill(0);
  for (let j = 0; j < c.LH; j++) {
    s.native.copy_floats(s.addr(out) + 4 * ((c.kh0 + j) * KW + c.kw0) * tap, s.addr(part) + 4 * j * c.LW * tap, c.LW * tap);
  }
  return out;
}
