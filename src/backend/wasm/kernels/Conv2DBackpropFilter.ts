// dW for a dense NHWC convolution as one GEMM over all output positions p = (n, oh, ow):
//   dW[(kh,kw,ci), co] = sum_p col[p, (kh,kw,ci)] * dy[p, co]       (col = im2col of x)
// on one of two engines (`path`):
// - native/kernels.c conv_filter_grad: im2col blocks times dy in SIMD register tiles, summed in
//   float64; single-threaded, but it reads dy in place and streams each operand once.
// - XNNPACK, multithreaded, via wasm's BatchMatMul fast path (fully-connected with dy as the
//   weights, packed without a separate transpose) on the transposed im2col colT. XNNPACK streams
//   the whole reduction per output tile, so P is cut into chunks whose colT and dy fit in the L3
//   cache (`chunkBytes`) and the chunks' partial dW are summed. (A 1x1 Conv2D would compute the
//   same GEMM, but tfjs first transposes a conv filter with a slow generic transpose.)
// The output [KH*KW*CI, CO] is already dW's layout. (A first version used the conv-as-filter
// trick - x^T [CI,H,W,N] convolved with dy^T [OH,OW,N,CO] dilated by the stride: 1.5-4x slower,
// as XNNPACK's indirection runs are only N channels long.)
import * as tf from '../../../tf.js';
import type { Conv2DBackpropFilterAttrs, KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { runOnCpu } from '../cpu-fallback.js';
import { withScratch } from '../native/native.js';
import { view, withScope, type BackendWasm, type Scope } from '../ops.js';
import { cropTaps, widenTaps } from '../tap-crop.js';

/** Bytes of colT + dy per GEMM chunk; tunable for benchmarks. */
let chunkBytes = 16 << 20;
export function setIm2colChunkBytes(n: number): void {
  chunkBytes = n;
}

export function conv2DBackpropFilter(args: { inputs: { x: TensorInfo; dy: TensorInfo }; backend: BackendWasm;
  attrs: Conv2DBackpropFilterAttrs }): TensorInfo {
  const { inputs: { x, dy }, backend, attrs } = args;
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs;
  if (dataFormat === 'NCHW') return runOnCpu(tf.Conv2DBackpropFilter, backend, { x, dy }, attrs as unknown as NamedAttrMap);
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filterShape,
    strides, 1, pad, dimRoundingMode, false, 'channelsLast');
  const P = info.batchSize * info.outHeight * info.outWidth;
  const weights = info.filterHeight * info.filterWidth * info.inChannels * info.outChannels;
  const native = path === 'native' || (path === 'auto' && (P >= 4096 || weights < 262144));
  const crop = cropTaps({ KH: info.filterHeight, KW: info.filterWidth, DH: 1, DW: 1, SH: info.strideHeight,
    SW: info.strideWidth, OH: info.outHeight, OW: info.outWidth, H: info.inHeight, W: info.inWidth,
    top: info.padInfo.top, left: info.padInfo.left });
  if (crop) {
    // taps that never meet the input get exactly 0; the rest is the gradient of the cropped conv
    const c = { ...info, filterHeight: crop.LH, filterWidth: crop.LW,
      padInfo: { ...info.padInfo, top: info.padInfo.top - crop.kh0, left: info.padInfo.left - crop.kw0 } };
    const cropWeights = crop.LH * crop.LW * info.inChannels * info.outChannels;
    const nat = path === 'native' || (path === 'auto' && (P >= 4096 || cropWeights < 262144));
    return withScope(backend, (s) => widenTaps(s, nat ? viaNative(s, x, dy, c) : viaIm2col(s, x, dy, c),
      info.filterHeight, info.filterWidth, crop));
  }
  return withScope(backend, (s) => native ? viaNative(s, x, dy, info) : viaIm2col(s, x, dy, info));
}

/**
 * 'auto' takes the native kernel for many positions or small filters (where XNNPACK's packing of
 * dy and its memory-bound long reductions dominate), XNNPACK's multithreaded GEMM otherwise
 * (large filters over few positions). Measured crossover on this 2-core machine; tests force each.
 */
let path: 'auto' | 'native' | 'matmul' = 'auto';
export function setConv2DBackpropFilterPath(p: 'auto' | 'native' | 'matmul'): void {
  path = p;
}

/** The project's single-threaded SIMD kernel: im2col blocks times dy, float64 sums, no packing. */
function viaNative(s: Scope, x: TensorInfo, dy: TensorInfo, info: tf.backend_util.Conv2DInfo): TensorInfo {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: CI, outChannels: CO, outHeight: OH, outWidth: OW,
    filterHeight: KH, filterWidth: KW, strideHeight: SH, strideWidth: SW, padInfo } = info;
  const M = KH * KW * CI;
  const PB = Math.max(64, Math.min(1024, Math.floor((512 << 10) / (4 * M)))) & ~3;
  const out = s.alloc([KH, KW, CI, CO]);
  withScratch(s.backend, [M * CO * 8, PB * M * 4], ([acc, colbuf]) => {
    s.native.conv_filter_grad(s.addr(x), s.addr(dy), s.addr(out), acc, colbuf, PB, N, H, W, CI, CO, OH, OW, KH, KW,
      SH, SW, padInfo.top, padInfo.left);
  });
  return out;
}

function viaIm2col(s: Scope, x: TensorInfo, dy: TensorInfo, info: tf.backend_util.Conv2DInfo): TensorInfo {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: CI, outChannels: CO, outHeight: OH, outWidth: OW,
    filterHeight: KH, filterWidth: KW, strideHeight: SH, strideWidth: SW, padInfo } = info;
  const rows = KH * KW * CI;
  const P = N * OH * OW;
  // multiple of 4 keeps the native kernel on its 4-wide path
  const chunk = Math.max(4, Math.floor(chunkBytes / (4 * (rows + CO)) / 4) * 4);
  let total: TensorInfo | undefined;
  for (let p0 = 0; p0 < P; p0 += chunk) {
    const p1 = Math.min(P, p0 + chunk);
    const colT = s.alloc([1, rows, p1 - p0]);
    s.native.im2col_t(s.addr(x), s.addr(colT), p0, p1, H, W, CI, OH, OW, KH, KW, SH, SW, 1, 1, padInfo.top, padInfo.left);
    let dyChunk = dy;
    if (p1 - p0 < P) {
      dyChunk = s.alloc([p1 - p0, CO]);
      s.native.copy_floats(s.addr(dyChunk), s.addr(dy) + p0 * CO * 4, (p1 - p0) * CO);
    }
    const part = s.run('BatchMatMul', { a: colT, b: view(dyChunk, [1, p1 - p0, CO]) },
      { transposeA: false, transposeB: false }); // [1,rows,CO]
    s.release(colT);
    if (dyChunk !== dy) s.release(dyChunk);
    if (total == null) {
      total = part;
    } else {
      const sum = s.run('Add', { a: total, b: part });
      s.release(total);
      s.release(part);
      total = sum;
    }
  }
  return view(total!, [KH, KW, CI, CO]);
}

export const conv2DBackpropFilterConfig: KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: conv2DBackpropFilter as unknown as KernelFunc,
};
