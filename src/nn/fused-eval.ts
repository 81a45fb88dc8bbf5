import type * as tf from '../tf.js';
import type { Module } from './module.js';

/**
 * A conv prepared for inference (nn/sparse/inference.ts): conv → BatchNorm (eval statistics,
 * folded into the weights) → [+ residual] → [ReLU] as one op. Set on a ConvBase as `fusedEval`
 * while a prepared evaluation runs; used only in eval mode.
 */
export interface FusedEval {
  /** The BatchNorm folded in (undefined: the conv alone, its own bias folded). */
  readonly bn?: Module;
  /** act(bn(conv(x)) [+ residual]); the caller owns the result. */
  run(x: tf.Tensor, relu: boolean, residual?: tf.Tensor): tf.Tensor;
}

interface ConvLike extends Module {
  fusedEval?: FusedEval;
}
interface BnLike extends Module {
  forward(x: tf.Tensor): tf.Tensor;
  forwardRelu(x: tf.Tensor, residual?: tf.Tensor): tf.Tensor;
}

/**
 * bn(conv(x)) [+ residual] [→ ReLU]: the prepared fused op in eval mode when one is set for this
 * pair, else the conv and the BatchNorm as modules (training: BN's fused train kernel).
 */
export function convBn(conv: ConvLike, bn: BnLike, x: tf.Tensor, relu: boolean, residual?: tf.Tensor): tf.Tensor {
  const f = conv.fusedEval;
  if (f && !conv.training && f.bn === bn) return f.run(x, relu, residual);
  const y = conv.forward(x);
  return relu || residual ? bn.forwardRelu(y, residual) : bn.forward(y);
}
