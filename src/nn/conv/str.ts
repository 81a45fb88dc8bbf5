import * as tf from '../../tf.js';
import { hasKernel, SoftThreshold, SoftThresholdGrad, type SoftThresholdAttrs } from '../../backend/fused-kernels.js';
import { ConvBase, type ConvOptions, type ConvTypeName } from './base.js';

/**
 * At or below this s, exp(−s) overflows float32, so the reference's sigmoid is exactly 0 (and so is its
 * derivative). Stated explicitly so every backend agrees: a backend that evaluates sigmoid in
 * float64 (tfjs' cpu backend) would otherwise return denormal thresholds down to s ≈ −103.
 */
export const SIGMOID_ZERO_AT_OR_BELOW = Math.fround(-Math.log(3.4028234663852886e38)); // −88.72283935546875

export interface STRConvOptions extends ConvOptions {
  /** Initial value of the learnable threshold parameter s (the reference's --sInit-value). */
  sInitValue: number;
}

/**
 * STRConv (Kusupati et al. 2020): Ŵ = sign(W)·relu(|W| − sigmoid(s)) with one learnable scalar s
 * per layer, stored as `sparseThreshold` with shape [1, 1] like the reference.
 *
 * Built from differentiable ops so autograd yields exactly STR-SPEC §5.1:
 *   ∂L/∂W = G·1[|W| > τ] (0 at W = 0, since sign(0) = 0),
 *   ∂L/∂s = −σ(s)(1−σ(s))·Σ G·sign(W)·1[|W| > τ],
 * and σ′(s) underflows to exactly 0 for s ≲ −88.7 in float32, so a layer initialised at −3200
 * is exactly dense and its s moves only through weight decay.
 */
export class STRConv extends ConvBase {
  readonly typeName: ConvTypeName = 'STRConv';
  readonly sparseThreshold: tf.Variable;

  constructor(o: STRConvOptions) {
    super(o);
    this.sparseThreshold = this.registerParameter('sparseThreshold', tf.fill([1, 1], o.sInitValue), 'plain', 'threshold');
  }

  /** τ = sigmoid(s) with float32 underflow semantics, shape [1, 1]. */
  tau(): tf.Tensor {
    return strSigmoid(this.sparseThreshold);
  }

  effectiveWeight(): tf.Tensor {
    return softThresholdWeight(this.weight, this.sparseThreshold);
  }

  thresholdTensor(): tf.Tensor {
    return this.tau();
  }
}

/**
 * sigmoid(s), exactly 0 (value and gradient) where float32 exp(−s) overflows. The gradient is
 * σ(1−σ) from the output, as tfjs' own Sigmoid gradient, so it is 0 wherever the value is.
 */
export const strSigmoid: (s: tf.Tensor) => tf.Tensor = tf.customGrad((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const s = inputs[0] as tf.Tensor;
  const save = inputs[1] as tf.GradSaveFunc;
  const y = tf.tidy(() => tf.where(tf.lessEqual(s, SIGMOID_ZERO_AT_OR_BELOW), tf.zerosLike(s), tf.sigmoid(s)));
  save([y]);
  return { value: y, gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, tf.mul(saved[0], tf.sub(1, saved[0]))) };
});

/**
 * Ŵ = sign(w)·relu(|w| − strSigmoid(s)). Where the backend has the fused kernels (wasm) this is
 * one kernel forward and one backward with the same gradients (∂L/∂w = G·1[|w| > τ],
 * ∂L/∂s = −σ(1−σ)·Σ G·sign(w)·1[|w| > τ], exactly 0 where σ is), instead of ~9 + ~12 ops.
 */
export function softThresholdWeight(w: tf.Tensor, s: tf.Tensor): tf.Tensor {
  if (!hasKernel(SoftThreshold)) {
    return tf.tidy(() => tf.mul(tf.sign(w), tf.relu(tf.sub(tf.abs(w), strSigmoid(s)))));
  }
  const attrs: SoftThresholdAttrs = { zeroAtOrBelow: SIGMOID_ZERO_AT_OR_BELOW };
  const f = tf.customGrad((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [ww, ss] = inputs as [tf.Tensor, tf.Tensor];
    (inputs[2] as tf.GradSaveFunc)([ww, ss]);
    return {
      value: tf.engine().runKernel(SoftThreshold, { w: ww, s: ss }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.engine().runKernel(SoftThresholdGrad, { dy, w: saved[0], s: saved[1] }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[],
    };
  });
  return f(w, s);
}
