import * as tf from '../tf.js';
import { Counter, Module } from './module.js';
import { batchNormTrain } from './batchnorm-train.js';

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
    return this.run(x, false);
  }

  /**
   * relu(bn(x) [+ residual]) as one op in training mode (one fused kernel forward and backward
   * where the backend has them); the same values as tf.relu(tf.add(bn.forward(x), residual)).
   */
  forwardRelu(x: tf.Tensor, residual?: tf.Tensor): tf.Tensor {
    return this.run(x, true, residual);
  }

  private run(x: tf.Tensor, relu: boolean, residual?: tf.Tensor): tf.Tensor {
    if (!this.training) {
      return tf.tidy(() => {
        let y: tf.Tensor = tf.batchNorm(x as tf.Tensor4D, this.runningMean, this.runningVar, this.bias, this.weight, this.eps);
        if (residual) y = tf.add(y, residual);
        return relu ? tf.relu(y) : y;
      });
    }
    // normalise with the biased batch variance; running statistics (no gradient) with the unbiased one
    const y = batchNormTrain(x, {
      scale: this.weight, offset: this.bias, residual, relu, eps: this.eps, momentum: this.momentum,
      runningMean: this.runningMean, runningVar: this.runningVar,
    });
    this.numBatchesTracked.value++;
    return y;
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
