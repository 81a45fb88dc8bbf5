// dW for a depthwise NHWC convolution with the project's SIMD kernel (native/kernels.c): XNNPACK
// has no fast path for it (as a depthwise convolution with dy as a huge filter it runs at ~0.5
// GMAC/s). A channel multiplier M > 1 repeats each input channel M times first.
import * as tf from '../../../tf.js';
import type { DepthwiseConv2dNativeBackpropFilterAttrs, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { withScratch } from '../native/native.js';
import { view, withScope, type BackendWasm } from '../ops.js';

export function depthwiseConv2dNativeBackpropFilter(args: { inputs: { x: TensorInfo; dy: TensorInfo };
  backend: BackendWasm; attrs: DepthwiseConv2dNativeBackpropFilterAttrs }): TensorInfo {
  const { inputs: { x, dy }, backend, attrs } = args;
  const { strides, dilations, pad, dimRoundingMode, filterShape } = attrs;
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filterShape,
    strides, dilations, pad, dimRoundingMode, true, 'channelsLast');
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW,
    filterHeight: KH, filterWidth: KW, strideHeight: SH, strideWidth: SW, dilationHeight: DH,
    dilationWidth: DW, padInfo } = info;
  const M = filterShape[3];
  return withScope(backend, (s) => {
    const xs = M === 1 ? x : view(s.tile(view(x, [N, H, W, C, 1]), [1, 1, 1, 1, M]), [N, H, W, C * M]);
    const out = s.alloc([KH, KW, C, M]);
    const taps = KH * KW * C * M;
    withScratch(backend, [taps * 8, taps * 4], ([acc, rowacc]) => {
      s.native.dw_filter_grad(s.addr(xs), s.addr(dy), s.addr(out), acc, rowacc,
        N, H, W, C * M, OH, OW, KH, KW, SH, SW, DH, DW, padInfo.top, padInfo.left);
    });
    return out;
  });
}

export const depthwiseConv2dNativeBackpropFilterConfig: KernelConfig = {
  kernelName: tf.DepthwiseConv2dNativeBackpropFilter,
  backendName: 'wasm',
  kernelFunc: depthwiseConv2dNativeBackpropFilter as unknown as KernelFunc,
};
