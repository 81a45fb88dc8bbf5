// dx for a dense NHWC convolution via stride-1 XNNPACK convolutions (see transposed-conv.ts);
// replaces tfjs-backend-wasm's direct loop, which runs about 10x slower than the forward conv.
import * as tf from '../../../tf.js';
import type { Conv2DBackpropInputAttrs, KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { runOnCpu } from '../cpu-fallback.js';
import { withScope, type BackendWasm } from '../ops.js';
import { transposedConv } from '../transposed-conv.js';
import { cropTaps, sliceTaps } from '../tap-crop.js';

type Args = { inputs: { dy: TensorInfo; filter: TensorInfo }; backend: BackendWasm; attrs: Conv2DBackpropInputAttrs };

/** tfjs-backend-wasm's own kernel: correct for every configuration, used where ours is not. */
let original: KernelConfig | undefined;
export function setOriginalConv2DBackpropInput(config: KernelConfig | undefined): void {
  original = config;
}

function fallback(args: Args): TensorInfo {
  if (original != null) return original.kernelFunc(args as never) as TensorInfo;
  return runOnCpu(tf.Conv2DBackpropInput, args.backend, args.inputs, args.attrs as unknown as NamedAttrMap);
}

export function conv2DBackpropInput(args: Args): TensorInfo {
  const { inputs: { dy, filter }, backend, attrs } = args;
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs;
  if (dataFormat === 'NCHW') return fallback(args);
  const info = tf.backend_util.computeConv2DInfo(inputShape, filter.shape as [number, number, number, number],
    strides, 1, pad, dimRoundingMode, false, 'channelsLast');
  if (info.strideHeight !== info.strideWidth) return fallback(args);
  const { inHeight: H, inWidth: W, outHeight: OH, outWidth: OW, filterHeight: KH, filterWidth: KW, padInfo } = info;
  const S = info.strideHeight;
  const crop = cropTaps({ KH, KW, DH: 1, DW: 1, SH: S, SW: S, OH, OW, H, W, top: padInfo.top, left: padInfo.left });
  return withScope(backend, (s) => transposedConv(s, 'dense', dy, crop ? sliceTaps(s, filter, crop) : filter, {
    H, W, OH, OW, KH: crop?.LH ?? KH, KW: crop?.LW ?? KW, S, DH: 1, DW: 1,
    top: padInfo.top - (crop?.kh0 ?? 0), left: padInfo.left - (crop?.kw0 ?? 0), outChannels: info.inChannels,
  }));
}

export const conv2DBackpropInputConfig: KernelConfig = {
  kernelName: tf.Conv2DBackpropInput,
  backendName: 'wasm',
  kernelFunc: conv2DBackpropInput as unknown as KernelFunc,
  // the fallback kernel binds its wasm function in its setup
  setupFunc: (backend) => original?.setupFunc?.(backend),
};
