// The input gradient of a convolution (a "transposed convolution") as stride-1 XNNPACK
// convolutions of dy with the flipped filter. For stride S > 1, zero-inserting dy would waste
// S*S of the work; instead the output is split into its S x S phases (sub-pixel decomposition):
// phase (rh, rw) of dx only meets the filter taps kh = rh (mod S), kw = rw (mod S), so it is a
// stride-1 convolution of dy with that sub-sampled flipped filter, written into its strided
// place in dx.
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { Scope } from './ops.js';

export interface TransposedConvGeometry {
  /** dx spatial size and dy spatial size */
  H: number; W: number; OH: number; OW: number;
  KH: number; KW: number;
  /** forward stride (equal in both dims) */
  S: number;
  /** forward dilation (only with S = 1) */
  DH: number; DW: number;
  /** forward padding before the input */
  top: number; left: number;
  /** channels of the convolution result (before any reduction the caller does) */
  outChannels: number;
}

/**
 * The stride-1 filter for phase (rh, rw): taps rh, rh+S, ... of `filter` [KH,KW,A,B], flipped in
 * space; dense filters get their channel roles swapped ([LH,LW,B,A]), depthwise ones [KH,KW,C,M]
 * become [LH,LW,C*M,1].
 */
function phaseFilter(s: Scope, kind: 'dense' | 'depthwise', filter: TensorInfo, S: number, rh: number, rw: number,
  LH: number, LW: number): TensorInfo {
  const [KH, KW, A, B] = filter.shape;
  const out = s.alloc(kind === 'dense' ? [LH, LW, B, A] : [LH, LW, A * B, 1]);
  s.native.flip_filter(s.addr(filter), s.addr(out), KH, KW, A, B, S, rh, rw, LH, LW, kind === 'dense' ? 1 : 0);
  return out;
}

/** dx for dy [N,OH,OW,*] and a filter [KH,KW,*,*] of a convolution of kind `kind`. */
export function transposedConv(s: Scope, kind: 'dense' | 'depthwise', dy: TensorInfo, filter: TensorInfo,
  g: TransposedConvGeometry): TensorInfo {
  const { H, W, OH, OW, KH, KW, S, DH, DW, top, left } = g;
  const N = dy.shape[0];
  if (S === 1) {
    return s.conv(kind, dy, phaseFilter(s, kind, filter, 1, 0, 0, KH, KW),
      { top: (KH - 1) * DH - top, bottom: top + H - OH, left: (KW - 1) * DW - left, right: left + W - OW },
      [1, 1], [DH, DW]);
  }
  if (DH !== 1 || DW !== 1) throw new Error('transposedConv: stride and dilation both > 1');
  // Phase row q (0-based) of every phase is the padded-input row (qaH + q) * S + rh.
  const qaH = Math.floor(top / S), qaW = Math.floor(left / S);
  const QH = Math.ceil((H + top) / S) - qaH, QW = Math.ceil((W + left) / S) - qaW;
  // each phase is written straight into its place in dx (wasm's Concat + DepthToSpace + Slice
  // cost more than the convolutions)
  const offH = top - qaH * S, offW = left - qaW * S;
  const dx = s.alloc([N, H, W, g.outChannels]);
  for (let rh = 0; rh < S; rh++) {
    for (let rw = 0; rw < S; rw++) {
      const LH = rh < KH ? Math.ceil((KH - rh) / S) : 0;
      const LW = rw < KW ? Math.ceil((KW - rw) / S) : 0;
      let phase: TensorInfo | undefined;
      if (LH > 0 && LW > 0) {
        phase = s.conv(kind, dy, phaseFilter(s, kind, filter, S, rh, rw, LH, LW),
          { top: LH - 1 - qaH, bottom: qaH + QH - OH, left: LW - 1 - qaW, right: qaW + QW - OW });
      }
      s.native.scatter_phase(phase ? s.addr(phase) : 0, s.addr(dx), N, QH, QW, g.outChannels, H, W, S, rh, rw, offH, offW);
      if (phase) s.release(phase);
    }
  }
  return dx;
}
