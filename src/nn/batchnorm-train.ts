// Training-mode BatchNorm (+ optional residual add and ReLU) as ONE differentiable op with an
// explicit gradient. On backends that register the fused kernels (wasm) forward and backward are
// two native passes each; elsewhere (cpu, tfjs-node, webgl) they are a few tf ops. Either way
// autograd sees one node instead of the ~15 ops (and their ~25 backward ops) of moments/sub/
// rsqrt/mul/add/relu.
import * as tf from '../tf.js';
import { BatchNormTrain, BatchNormTrainGrad, hasKernel, type BatchNormTrainAttrs } from '../backend/fused-kernels.js';

export interface BatchNormTrainOptions {
  /** γ and β (both or neither). */
  scale?: tf.Tensor;
  offset?: tf.Tensor;
  /** Added after normalisation, before the ReLU (a residual block's shortcut). */
  residual?: tf.Tensor;
  relu?: boolean;
  eps: number;
  momentum: number;
  /** Updated in place with the batch statistics (unbiased variance), PyTorch's rule. */
  runningMean?: tf.Variable;
  runningVar?: tf.Variable;
}

/**
 * y = [relu]((x − mean)/sqrt(var + eps)·γ + β [+ residual]) over the last axis, with the batch's
 * mean and biased variance, and running ← (1 − momentum)·running + momentum·batch (unbiased
 * variance n/(n−1)). Gradients flow to x, γ, β and the residual.
 */
export function batchNormTrain(x: tf.Tensor, o: BatchNormTrainOptions): tf.Tensor {
  if ((o.scale == null) !== (o.offset == null)) throw new Error('batchNormTrain: scale and offset go together');
  const affine = o.scale != null;
  const native = hasKernel(BatchNormTrain);
  const inputs: tf.Tensor[] = [x];
  if (affine) inputs.push(o.scale!, o.offset!);
  if (o.residual) inputs.push(o.residual);
  const relu = o.relu ?? false;
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const xx = args[0] as tf.Tensor;
    const scale = affine ? (args[1] as tf.Tensor) : undefined;
    const offset = affine ? (args[2] as tf.Tensor) : undefined;
    const residual = o.residual ? (args[affine ? 3 : 1] as tf.Tensor) : undefined;
    const { y, mean, invstd } = native
      ? forwardNative(xx, scale, offset, residual, relu, o)
      : forwardComposite(xx, scale, offset, residual, relu, o);
    save(scale ? [xx, y, mean, invstd, scale] : [xx, y, mean, invstd]);
    const n = xx.size / xx.shape[xx.shape.length - 1];
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sy, smean, sinvstd, sscale] = saved;
        const { dx, dscale, doffset, dres } = native
          ? backwardNative(dy, sx, relu ? sy : undefined, smean, sinvstd, sscale, residual != null)
          : backwardComposite(dy, sx, relu ? sy : undefined, smean, sinvstd, sscale, residual != null, n);
        const grads = [dx];
        if (affine) grads.push(dscale, doffset);
        else tf.dispose([dscale, doffset]);
        if (residual) grads.push(dres!);
        return grads;
      },
    };
  });
  return f(...inputs);
}

interface Forward { y: tf.Tensor; mean: tf.Tensor; invstd: tf.Tensor }

function forwardNative(x: tf.Tensor, scale: tf.Tensor | undefined, offset: tf.Tensor | undefined,
  residual: tf.Tensor | undefined, relu: boolean, o: BatchNormTrainOptions): Forward {
  const inputs: tf.NamedTensorMap = { x };
  if (scale) Object.assign(inputs, { scale, offset });
  if (residual) inputs.residual = residual;
  if (o.runningMean && o.runningVar) Object.assign(inputs, { runningMean: o.runningMean, runningVar: o.runningVar });
  const attrs: BatchNormTrainAttrs = { eps: o.eps, momentum: o.momentum, relu };
  const [y, mean, invstd, rm, rv] = tf.engine().runKernel(BatchNormTrain, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
  if (rm) {
    o.runningMean!.assign(rm);
    o.runningVar!.assign(rv);
    tf.dispose([rm, rv]);
  }
  return { y, mean, invstd };
}

function forwardComposite(x: tf.Tensor, scale: tf.Tensor | undefined, offset: tf.Tensor | undefined,
  residual: tf.Tensor | undefined, relu: boolean, o: BatchNormTrainOptions): Forward {
  const axes = x.shape.slice(0, -1).map((_, i) => i);
  const n = x.size / x.shape[x.shape.length - 1];
  const { mean, variance } = tf.moments(x, axes);
  const invstd = tf.rsqrt(tf.add(variance, o.eps));
  let y = tf.mul(tf.sub(x, mean), invstd);
  if (scale) y = tf.add(tf.mul(y, scale), offset!);
  if (residual) y = tf.add(y, residual);
  if (relu) y = tf.relu(y);
  if (o.runningMean && o.runningVar) {
    const m = o.momentum;
    const unbiased = tf.mul(variance, n > 1 ? n / (n - 1) : 1);
    o.runningMean.assign(tf.add(tf.mul(o.runningMean, 1 - m), tf.mul(mean, m)));
    o.runningVar.assign(tf.add(tf.mul(o.runningVar, 1 - m), tf.mul(unbiased, m)));
  }
  return { y, mean, invstd };
}

interface Backward { dx: tf.Tensor; dscale: tf.Tensor; doffset: tf.Tensor; dres?: tf.Tensor }

function backwardNative(dy: tf.Tensor, x: tf.Tensor, y: tf.Tensor | undefined, mean: tf.Tensor, invstd: tf.Tensor,
  scale: tf.Tensor | undefined, residual: boolean): Backward {
  const inputs: tf.NamedTensorMap = { dy, x, mean, invstd };
  if (y) inputs.y = y;
  if (scale) inputs.scale = scale;
  const [dx, dscale, doffset, dres] = tf.engine().runKernel(BatchNormTrainGrad, inputs, { residual }) as tf.Tensor[];
  return { dx, dscale, doffset, dres };
}

/** dx = γ·invstd/n·(n·g − Σg − x̂·Σg·x̂), dγ = Σg·x̂, dβ = Σg, with g = dy·[y > 0] under ReLU. */
function backwardComposite(dy: tf.Tensor, x: tf.Tensor, y: tf.Tensor | undefined, mean: tf.Tensor, invstd: tf.Tensor,
  scale: tf.Tensor | undefined, residual: boolean, n: number): Backward {
  return tf.tidy(() => {
    const axes = x.shape.slice(0, -1).map((_, i) => i);
    const g = y ? tf.where(tf.greater(y, 0), dy, tf.zerosLike(dy)) : dy;
    const xhat = tf.mul(tf.sub(x, mean), invstd);
    const doffset = tf.sum(g, axes);
    const dscale = tf.sum(tf.mul(g, xhat), axes);
    const k = tf.div(scale ? tf.mul(scale, invstd) : invstd, n);
    const dx = tf.mul(k, tf.sub(tf.sub(tf.mul(g, n), doffset), tf.mul(xhat, dscale)));
    return residual ? { dx, dscale, doffset, dres: g === dy ? tf.clone(dy) : g } : { dx, dscale, doffset };
  }) as Backward;
}
