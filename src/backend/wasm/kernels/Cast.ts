// Cast to the same dtype (tfjs' relu gradient casts its float32 mask to float32 for every
// activation) is a JS copy of the whole tensor in tfjs-backend-wasm; like the cpu backend, make
// it a shared reference. The stock cast to bool copies values (2 stays 2); make it x != 0, as on
// cpu. Other casts keep the stock kernel.
import * as tf from '../../../tf.js';
import type { CastAttrs, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '../ops.js';

type Args = { inputs: { x: TensorInfo }; backend: BackendWasm; attrs: CastAttrs };

let original: KernelConfig | undefined;
export function setOriginalCast(config: KernelConfig | undefined): void {
  original = config;
}

export function cast(args: Args): TensorInfo {
  const { inputs: { x }, backend, attrs: { dtype } } = args;
  if (dtype === x.dtype) {
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype };
  }
  if (dtype === 'bool' && (x.dtype === 'float32' || x.dtype === 'int32')) {
    const out = backend.makeOutput(x.shape, 'bool');
    const src = backend.typedArrayFromHeap(x), dst = backend.typedArrayFromHeap(out);
    for (let i = 0; i < src.length; i++) dst[i] = src[i] !== 0 ? 1 : 0;
    return out;
  }
  if (original == null) throw new Error('wasm Cast: the stock kernel was not registered');
  return original.kernelFunc(args as never) as TensorInfo;
}

export const castConfig: KernelConfig = {
  kernelName: tf.Cast,
  backendName: 'wasm',
  kernelFunc: cast as unknown as KernelFunc,
};
