import * as tf from '../tf.js';
import { Counter, Module } from './module.js';

export type BatchNormTypeName = 'LearnedBatchNorm' | 'NonAffineBatchNorm';

/**
 * BatchNorm2d over NHWC with PyTorch semantics: normalise with the biased batch variance,
 * update running statistics with momentum 0.1 (running ← 0.9·running + 0.1·batch) using the
 * unbiased variance, count `num_batches_tracked`; eval mode uses the running statistics.
 * State entries in PyTorch order: weight, bias (affine only), running_mean, running_var,
 * num_batches_tracked.
 */
export abstract class BatchNormBase extends Module {
  readonly eps = 1e-5;
  readonly momentum = 0.1;
  readonly weight?: tf.Variable;
  readonly bias?: tf.Variable;
  readonly runningMean: tf.Variable;
  readonly runningVar: tf.Variable;
  readonly numBatchesTracked: Counter;

  constructor(readonly numFeatures: number, affine: boolean) {
    super();
    if (affine) {
      this.weight = this.registerParameter('weight', tf.ones([numFeatures]), 'plain', 'bn');
      this.bias = this.registerParameter('bias', tf.zeros([numFeatures]), 'plain', 'bn');
    }
    this.runningMean = this.registerBuffer('running_mean', tf.zeros([numFeatures]));
    this.runningVar = this.registerBuffer('running_var', tf.ones([numFeatures]));
    this.numBatchesTracked = this.registerCounter('num_batches_tracked');
  }

  forward(x: tf.Tensor): tf.Tensor {
    if (!this.training) {
      return tf.batchNorm(x as tf.Tensor4D, this.runningMean, this.runningVar, this.bias, this.weight, this.eps);
    }
    const n = x.size / this.numFeatures;
    const { mean, variance } = tf.moments(x, [0, 1, 2]);
    const y = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, this.eps)));
    this.updateRunningStats(mean, variance, n);
    if (!this.weight || !this.bias) return y;
    return tf.add(tf.mul(y, this.weight), this.bias);
  }

  private updateRunningStats(mean: tf.Tensor, variance: tf.Tensor, n: number): void {
    const m = this.momentum;
    // Running statistics never feed the loss, so no gradient flows through this update.
    const [rm, rv] = tf.tidy(() => {
      const mu = mean;
      const unbiased = tf.mul(variance, n > 1 ? n / (n - 1) : 1);
      return [
        tf.add(tf.mul(this.runningMean, 1 - m), tf.mul(mu, m)),
        tf.add(tf.mul(this.runningVar, 1 - m), tf.mul(unbiased, m)),
      ];
    });
    this.runningMean.assign(rm);
    this.runningVar.assign(rv);
    tf.dispose([rm, rv]);
    this.numBatchesTracked.value++;
  }

  inferShape(s: [number, number, number]): [number, number, number] {
    return s;
  }
}

/** nn.BatchNorm2d (affine). */
export class LearnedBatchNorm extends BatchNormBase {
  constructor(numFeatures: number) {
    super(numFeatures, true);
  }
}

/** nn.BatchNorm2d(affine=False): no weight/bias; running statistics still tracked. */
export class NonAffineBatchNorm extends BatchNormBase {
  constructor(numFeatures: number) {
    super(numFeatures, false);
  }
}

export function createBatchNorm(type: BatchNormTypeName, numFeatures: number): BatchNormBase {
  return type === 'NonAffineBatchNorm' ? new NonAffineBatchNorm(numFeatures) : new LearnedBatchNorm(numFeatures);
}
