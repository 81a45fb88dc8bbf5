// Registers the training kernels tfjs-backend-wasm lacks (or implements slowly) for 'wasm'.
import * as tf from '../../tf.js';
import type { KernelConfig } from '@tensorflow/tfjs-core';
import { castConfig, setOriginalCast } from './kernels/Cast.js';
import { conv2DConfig, setOriginalConv2D } from './kernels/Conv2D.js';
import { conv2DBackpropFilterConfig } from './kernels/Conv2DBackpropFilter.js';
import { conv2DBackpropInputConfig, setOriginalConv2DBackpropInput } from './kernels/Conv2DBackpropInput.js';
import { depthwiseConv2dNativeBackpropFilterConfig } from './kernels/DepthwiseConv2dNativeBackpropFilter.js';
import { depthwiseConv2dNativeBackpropInputConfig } from './kernels/DepthwiseConv2dNativeBackpropInput.js';
import { unsortedSegmentSumConfig } from './kernels/UnsortedSegmentSum.js';
import { fusedKernelConfigs, identityConfig } from './kernels/fused.js';
import { maxPoolGradConfig, setOriginalMaxPoolGrad } from './kernels/MaxPoolGrad.js';
import { sparseConv2DConfig } from './kernels/SparseConv2D.js';

/** Every kernel this project registers for the wasm backend (replacing stock ones where they exist). */
export const wasmTrainingKernels: readonly KernelConfig[] = [
  castConfig,
  conv2DConfig,
  conv2DBackpropFilterConfig,
  conv2DBackpropInputConfig,
  depthwiseConv2dNativeBackpropFilterConfig,
  depthwiseConv2dNativeBackpropInputConfig,
  unsortedSegmentSumConfig,
  identityConfig,
  maxPoolGradConfig,
  ...fusedKernelConfigs,
  sparseConv2DConfig,
];

/**
 * Registers (or, where tfjs-backend-wasm already has a kernel of that name, replaces) the
 * project's wasm training kernels. Idempotent. Call before `tf.setBackend('wasm')`, or call
 * `tf.setBackend('wasm')` again afterwards, so kernel setup functions run.
 */
export function registerWasmTrainingKernels(): void {
  for (const config of wasmTrainingKernels) {
    const existing = tf.getKernel(config.kernelName, 'wasm');
    if (existing === config) continue;
    if (existing != null) {
      if (config === conv2DBackpropInputConfig) setOriginalConv2DBackpropInput(existing);
      if (config === conv2DConfig) setOriginalConv2D(existing);
      if (config === castConfig) setOriginalCast(existing);
      if (config === maxPoolGradConfig) setOriginalMaxPoolGrad(existing);
      tf.unregisterKernel(config.kernelName, 'wasm');
    }
    tf.registerKernel(config);
  }
}
