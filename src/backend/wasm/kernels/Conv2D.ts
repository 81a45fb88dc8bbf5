// Dense NHWC convolution. tfjs-backend-wasm runs every Conv2D on XNNPACK, which first transposes
// (with a slow generic transpose) and packs the filter, then caches the packed operator per
// filter tensor. Training brings new weights every step, so each forward and input-gradient
// convolution pays the packing: for layers with few output positions (ResNet18 layer4 at 32 px:
// 32 positions, 2.4M weights) that costs 3-10x the arithmetic. Fresh filters run instead as
// im2col + the project's blocked SIMD GEMM (native/kernels.c; all of them single-threaded, those
// with few positions multithreaded); with a thread pool, a filter seen before (inference on fixed
// weights) goes to XNNPACK, whose packed copy is then reused. Single-threaded, the native GEMM
// beats XNNPACK even with its packing cached (ResNet50 eval at 224 px b16: 3.0 vs 3.6 s), so it
// takes every convolution.
import * as tf from '../../../tf.js';
import type { Conv2DAttrs, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { view, withScope, type BackendWasm } from '../ops.js';
import { cropTaps, sliceTaps } from '../tap-crop.js';
import { withScratch } from '../native/native.js';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';

type Args = { inputs: { x: TensorInfo; filter: TensorInfo }; backend: BackendWasm; attrs: Conv2DAttrs };

/**
 * Output positions (N*OH*OW) up to which a fresh filter takes the native GEMM. Default
 * (undefined): 1024 with a multithreaded build (XNNPACK then uses every thread; measured
 * crossover ~1000), unlimited single-threaded, where the blocked native GEMM matched or beat
 * XNNPACK, its packing included, on every ResNet/MobileNet layer measured (up to 2x on 1x1s).
 */
let maxNativePositions: number | undefined;
export function setConv2DNativeMaxPositions(n: number | undefined): void {
  maxNativePositions = n;
}

let original: KernelConfig | undefined;
export function setOriginalConv2D(config: KernelConfig | undefined): void {
  original = config;
}

const seenFilters = new WeakSet<object>();

export function conv2D(args: Args): TensorInfo {
  const { inputs: { x, filter }, backend, attrs } = args;
  const { strides, pad, dataFormat, dilations, dimRoundingMode } = attrs;
  if (original == null) throw new Error('wasm Conv2D: the stock kernel was not registered');
  if (dataFormat === 'NCHW' || x.dtype !== 'float32') return original.kernelFunc(args as never) as TensorInfo;
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number], strides, dilations, pad, dimRoundingMode, false, 'channelsLast');
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: CI, outChannels: CO, outHeight: OH, outWidth: OW,
    filterHeight: KH, filterWidth: KW, strideHeight: SH, strideWidth: SW, dilationHeight: DH, dilationWidth: DW,
    padInfo } = info;
  const crop = cropTaps({ KH, KW, DH, DW, SH, SW, OH, OW, H, W, top: padInfo.top, left: padInfo.left });
  if (crop) {
    // the same convolution over the taps that meet the input (tap-crop.ts)
    return withScope(backend, (s) => {
      const top = padInfo.top - crop.kh0 * DH, left = padInfo.left - crop.kw0 * DW;
      const bottom = (OH - 1) * SH + (crop.LH - 1) * DH + 1 - H - top;
      const right = (OW - 1) * SW + (crop.LW - 1) * DW + 1 - W - left;
      return s.conv('dense', x, sliceTaps(s, filter, crop), { top, bottom, left, right }, [SH, SW], [DH, DW]);
    });
  }
  const fresh = getThreadsCount() === 1 || !seenFilters.has(filter.dataId);
  seenFilters.add(filter.dataId);
  if (!fresh) return original.kernelFunc(args as never) as TensorInfo;
  const P = N * OH * OW;
  if (P > (maxNativePositions ?? (getThreadsCount() > 1 ? 1024 : Infinity))) {
    return original.kernelFunc(args as never) as TensorInfo;
  }
  const K = KH * KW * CI;
  return withScope(backend, (s) => {
    const identity = KH === 1 && KW === 1 && SH === 1 && SW === 1 && padInfo.top === 0 && padInfo.left === 0
      && OH === H && OW === W;
    const out = s.alloc([N, OH, OW, CO]);
    // K blocks whose packed weights stay within ~256 KB (L2)
    const KC = Math.max(16, Math.min(K, Math.floor(65536 / Math.max(8, CO & ~7))));
    // im2col a few images at a time (~8 MB), so the rows are still in cache for the GEMM
    const rows = OH * OW;
    const imgs = identity ? N : Math.max(1, Math.min(N, Math.floor((2 << 20) / (rows * K))));
    const col = identity ? x : s.alloc([imgs * rows, K]);
    withScratch(backend, [KC * (CO & ~7) * 4], ([bpack]) => {
      for (let n0 = 0; n0 < N; n0 += imgs) {
        const n = Math.min(imgs, N - n0);
        if (!identity) {
          s.native.im2col(s.addr(x) + 4 * n0 * H * W * CI, s.addr(col), n, H, W, CI, OH, OW, KH, KW, SH, SW, DH, DW,
            padInfo.top, padInfo.left);
        }
        s.native.gemm(s.addr(col), s.addr(filter), s.addr(out) + 4 * n0 * rows * CO, n * rows, K, CO, bpack, KC);
      }
    });
    return view(out, [N, OH, OW, CO]);
  });
}

export const conv2DConfig: KernelConfig = {
  kernelName: tf.Conv2D,
  backendName: 'wasm',
  kernelFunc: conv2D as unknown as KernelFunc,
  setupFunc: (backend) => original?.setupFunc?.(backend),
};
