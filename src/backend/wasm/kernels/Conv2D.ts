// Dense NHWC convolution. tfjs-backend-wasm runs every Conv2D on XNNPACK, which first transposes
// (with a slow generic transpose) and packs the filter, then caches the packed operator per
// filter tensor. Training brings new weights every step, so each forward and input-gradient
// convolution pays the packing: for layers with few output positions (ResNet18 layer4 at 32 px:
// 32 positions, 2.4M weights) that costs 3-10x the arithmetic. Those layers run instead as
// im2col + the project's SIMD GEMM (native/kernels.c), which reads the weights in place; a filter
// seen before (inference on fixed weights) goes to XNNPACK, whose packed copy is then reused.
import * as tf from '../../../tf.js';
import type { Conv2DAttrs, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { view, withScope, type BackendWasm } from '../ops.js';

type Args = { inputs: { x: TensorInfo; filter: TensorInfo }; backend: BackendWasm; attrs: Conv2DAttrs };

/** Output positions (N*OH*OW) up to which a fresh filter takes the native GEMM (measured crossover ~1000). */
let maxNativePositions = 1024;
export function setConv2DNativeMaxPositions(n: number): void {
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
  const fresh = !seenFilters.has(filter.dataId);
  seenFilters.add(filter.dataId);
  if (dataFormat === 'NCHW' || !fresh || x.dtype !== 'float32') return original.kernelFunc(args as never) as TensorInfo;
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number], strides, dilations, pad, dimRoundingMode, false, 'channelsLast');
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: CI, outChannels: CO, outHeight: OH, outWidth: OW,
    filterHeight: KH, filterWidth: KW, strideHeight: SH, strideWidth: SW, dilationHeight: DH, dilationWidth: DW,
    padInfo } = info;
  const P = N * OH * OW;
  if (P > maxNativePositions) return original.kernelFunc(args as never) as TensorInfo;
  const K = KH * KW * CI;
  return withScope(backend, (s) => {
    const identity = KH === 1 && KW === 1 && SH === 1 && SW === 1 && padInfo.top === 0 && padInfo.left === 0
      && OH === H && OW === W;
    let col = x;
    if (!identity) {
      col = s.alloc([P, K]);
      s.native.im2col(s.addr(x), s.addr(col), N, H, W, CI, OH, OW, KH, KW, SH, SW, DH, DW, padInfo.top, padInfo.left);
    }
    const out = s.alloc([N, OH, OW, CO]);
    s.native.gemm(s.addr(col), s.addr(filter), s.addr(out), P, K, CO);
    return view(out, [N, OH, OW, CO]);
  });
}

export const conv2DConfig: KernelConfig = {
  kernelName: tf.Conv2D,
  backendName: 'wasm',
  kernelFunc: conv2D as unknown as KernelFunc,
  setupFunc: (backend) => original?.setupFunc?.(backend),
};
