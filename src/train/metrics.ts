import * as tf from '../tf.js';

/**
 * Number of samples whose label is among the top-1 / top-5 logits, as int32 scalars kept on the
 * device (read them in batches, not per step). With fewer than 5 classes top-5 covers all of them.
 */
export function topkCorrect(logits: tf.Tensor2D, labels: tf.Tensor1D): [tf.Scalar, tf.Scalar] {
  return tf.tidy(() => {
    const k = Math.min(5, logits.shape[1]);
    const { indices } = tf.topk(logits, k);
    const hits = tf.cast(tf.equal(indices, tf.expandDims(tf.cast(labels, 'int32'), 1)), 'int32');
    const top1 = tf.sum(tf.slice(hits, [0, 0], [-1, 1]));
    const top5 = tf.sum(hits);
    return [top1 as tf.Scalar, top5 as tf.Scalar];
  });
}

/** The reference's AverageMeter: last value, and an average weighted by batch size. */
export class AverageMeter {
  val = 0;
  sum = 0;
  count = 0;
  constructor(readonly name: string, readonly fmt: (v: number) => string = (v) => v.toFixed(3)) {}

  update(val: number, n = 1): void {
    this.val = val;
    this.sum += val * n;
    this.count += n;
  }

  get avg(): number {
    return this.count ? this.sum / this.count : 0;
  }

  reset(): void {
    this.val = this.sum = this.count = 0;
  }

  toString(): string {
    return `${this.name} ${this.fmt(this.val)} (${this.fmt(this.avg)})`;
  }
}
