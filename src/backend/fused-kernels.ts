// Names and attributes of the project's fused training kernels. A backend that registers them
// (wasm, see wasm/kernels/fused.ts) runs each as one pass-efficient native kernel; on every other
// backend the ops in src/nn and src/train fall back to a composite of tf ops with the same maths.
import * as tf from '../tf.js';

/**
 * Training-mode BatchNorm over the last axis (channels), PyTorch semantics, optionally followed
 * by `+ residual` and ReLU. Inputs: x, and optionally scale (γ), offset (β), residual,
 * runningMean + runningVar. Attrs: BatchNormTrainAttrs. Outputs: [y, mean, invstd] and, when the
 * running statistics are given, [newRunningMean, newRunningVar].
 */
export const BatchNormTrain = 'StrBatchNormTrain';
export interface BatchNormTrainAttrs {
  eps: number;
  momentum: number;
  relu: boolean;
}

/**
 * Its gradient. Inputs: dy, x, mean, invstd, and optionally y (the forward's output, when the
 * forward applied ReLU) and scale. Attrs: { residual } (also output the residual's gradient).
 * Outputs: [dx, dscale, doffset] (+ [dresidual]).
 */
export const BatchNormTrainGrad = 'StrBatchNormTrainGrad';

/**
 * STR's effective weight sign(w)·relu(|w| − τ), τ = sigmoid(s) (exactly 0 at or below
 * `zeroAtOrBelow`). Inputs: w, s ([1,1]). Output: the weight.
 */
export const SoftThreshold = 'StrSoftThreshold';
export interface SoftThresholdAttrs {
  zeroAtOrBelow: number;
}
/** Its gradient (STR-SPEC §5.1). Inputs: dy, w, s. Outputs: [dw, ds]. */
export const SoftThresholdGrad = 'StrSoftThresholdGrad';

/**
 * One SGD step on one parameter (torch order, see train/optimizer.ts). Inputs: p, g, and buf
 * unless `first` or momentum is 0. Outputs: [p'] (+ [buf'] when momentum is not 0).
 */
export const SgdUpdate = 'StrSgdUpdate';
export interface SgdUpdateAttrs {
  lr: number;
  momentum: number;
  weightDecay: number;
  nesterov: boolean;
  first: boolean;
}

/**
 * DNW/GMP keep-mask: 0 at the k smallest |w| (ties broken by ascending `torchIndex`, the
 * PyTorch flat index of each position), 1 elsewhere. Inputs: w. Attrs: PruneMaskAttrs.
 */
export const PruneMask = 'StrPruneMask';
export interface PruneMaskAttrs {
  k: number;
  torchIndex: Int32Array;
}

/**
 * Eval-only convolution over the non-zero weights (CSR, nn/sparse/pack.ts), with a folded bias,
 * optional `+ residual` and ReLU: act(conv(x) + bias [+ residual]). Inputs: x (NHWC), rowptr
 * (int32 [CO+1]), nz (int32 [2·nnz] pairs of im2col offset and weight bits), bias ([CO]), and
 * optionally residual ([N,OH,OW,CO]). Attrs: SparseConv2DAttrs. Registered on wasm only.
 */
export const SparseConv2D = 'StrSparseConv2D';
export interface SparseConv2DAttrs {
  kernelSize: number;
  stride: number;
  /** Symmetric zero padding (PyTorch). */
  padding: number;
  outChannels: number;
  relu: boolean;
}

/** Whether the active backend registers `kernelName` (false on backends using the composites). */
export function hasKernel(kernelName: string): boolean {
  return tf.getKernel(kernelName, tf.getBackend()) != null;
}
