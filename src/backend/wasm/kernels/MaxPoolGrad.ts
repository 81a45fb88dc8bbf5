// MaxPoolGrad on wasm: tfjs-backend-wasm's kernel takes ~300 ms for ResNet50's stem pool at 224 px,
// batch 16 (3% of a training step); the native kernel (vectorised over channels) takes a few ms.
// Dilated or NCHW pools keep the stock kernel.
import * as tf from '../../../tf.js';
import type { KernelConfig, KernelFunc, MaxPoolGradAttrs, TensorInfo } from '@tensorflow/tfjs-core';
import { Scope, type BackendWasm } from '../ops.js';

type Args = { inputs: { dy: TensorInfo; input: TensorInfo; output: TensorInfo }; backend: BackendWasm; attrs: MaxPoolGradAttrs };

let original: KernelConfig | undefined;
export function setOriginalMaxPoolGrad(config: KernelConfig | undefined): void {
  original = config;
}

export function maxPoolGrad(args: Args): TensorInfo {
  const { inputs: { dy, input }, backend, attrs: { filterSize, strides, pad, dimRoundingMode } } = args;
  const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], filterSize, strides,
    1, pad, dimRoundingMode);
  if (input.dtype !== 'float32' || info.dilationHeight !== 1 || info.dilationWidth !== 1) {
    if (original == null) throw new Error('wasm MaxPoolGrad: the stock kernel was not registered');
    return original.kernelFunc(args as never) as TensorInfo;
  }
  const s = new Scope(backend);
  const dx = backend.makeOutput(input.shape, 'float32');
  s.native.maxpool_grad(s.addr(input), s.addr(dy), s.addr(dx), info.batchSize, info.inHeight, info.inWidth,
    info.inChannels, info.outHeight, info.outWidth, info.filterHeight, info.filterWidth, info.strideHeight,
    info.strideWidth, info.padInfo.top, info.padInfo.left);
  return dx;
}

export const maxPoolGradConfig: KernelConfig = {
  kernelName: tf.MaxPoolGrad,
  backendName: 'wasm',
  kernelFunc: maxPoolGrad as unknown as KernelFunc,
  setupFunc: (backend) => original?.setupFunc?.(backend),
};
