import * as tf from '../tf.js';

/**
 * Cross-entropy, with label smoothing when ε is given (STR-SPEC §8): the ε mass is spread over
 * all K classes, the target included (q_t = 1 − ε + ε/K), the reference's LabelSmoothing and
 * PyTorch's CrossEntropyLoss(label_smoothing=ε). Mean over the batch.
 */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D, labelSmoothing?: number | null): tf.Scalar {
  return tf.tidy(() => {
    const k = logits.shape[1];
    const logp = tf.logSoftmax(logits);
    const onehot = tf.oneHot(tf.cast(labels, 'int32'), k);
    const eps = labelSmoothing ?? 0;
    const q = eps > 0 ? tf.add(tf.mul(onehot, 1 - eps), eps / k) : onehot;
    return tf.mean(tf.neg(tf.sum(tf.mul(q, logp), 1))) as tf.Scalar;
  });
}

export type Criterion = (logits: tf.Tensor2D, labels: tf.Tensor1D) => tf.Scalar;

export function makeCriterion(labelSmoothing?: number | null): Criterion {
  return (logits, labels) => crossEntropy(logits, labels, labelSmoothing);
}
