// dx for a depthwise NHWC convolution. Stride 1: an XNNPACK depthwise convolution of dy with the
// flipped filter (see transposed-conv.ts; multithreaded). Stride > 1: the project's SIMD kernel
// (native/kernels.c), because the sub-pixel phases would be 2x2/2x1/1x1 depthwise convolutions,
// for which XNNPACK has no fast path (~16x the forward time, measured). A channel multiplier
// M > 1 is computed over all C*M channels of dy, then summed over M.
import * as tf from '../../../tf.js';
import type { DepthwiseConv2dNativeBackpropInputAttrs, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { view, withScope, type BackendWasm } from '../ops.js';
import { transposedConv } from '../transposed-conv.js';

export function depthwiseConv2dNativeBackpropInput(args: { inputs: { dy: TensorInfo; filter: TensorInfo };
  backend: BackendWasm; attrs: DepthwiseConv2dNativeBackpropInputAttrs }): TensorInfo {
  const { inputs: { dy, filter }, backend, attrs } = args;
  const { strides, dilations, pad, dimRoundingMode, inputShape } = attrs;
  const info = tf.backend_util.computeConv2DInfo(inputShape, filter.shape as [number, number, number, number],
    strides, dilations, pad, dimRoundingMode, true, 'channelsLast');
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW,
    filterHeight: KH, filterWidth: KW, strideHeight: SH, strideWidth: SW, dilationHeight: DH,
    dilationWidth: DW, padInfo } = info;
  const M = filter.shape[3];
  return withScope(backend, (s) => {
    let dx: TensorInfo;
    if (SH === 1 && SW === 1) {
      dx = transposedConv(s, 'depthwise', dy, filter, {
        H, W, OH, OW, KH, KW, S: 1, DH, DW, top: padInfo.top, left: padInfo.left, outChannels: C * M,
      });
    } else {
      dx = s.alloc([N, H, W, C * M]);
      s.native.dw_input_grad(s.addr(dy), s.addr(filter), s.addr(dx), N, H, W, C * M, OH, OW, KH, KW, SH, SW, DH, DW,
        padInfo.top, padInfo.left);
    }
    return M === 1 ? dx : s.sum(view(dx, [N, H, W, C, M]), [4]);
  });
}

export const depthwiseConv2dNativeBackpropInputConfig: KernelConfig = {
  kernelName: tf.DepthwiseConv2dNativeBackpropInput,
  backendName: 'wasm',
  kernelFunc: depthwiseConv2dNativeBackpropInput as unknown as KernelFunc,
};
