import * as tf from '@tensorflow/tfjs-core';
import { STRConv, initBackend } from '../src/index.js';

await initBackend('auto');
const conv = new STRConv({ inChannels: 3, outChannels: 16, kernelSize: 3, sInitValue: -5 });
const head = tf.variable(tf.randomNormal([16, 10], 0, 0.1));
const x = tf.randomNormal([8, 32, 32, 3]);
const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32'), 10);
const opt = tf.train.sgd(0.1);
for (let step = 0; step < 10; step++) {
  opt.minimize(() => {
    const h = tf.mean(tf.relu(conv.forward(x)), [1, 2]); // [8, 16]
    const loss = tf.losses.softmaxCrossEntropy(y, tf.matMul(h, head));
    // STR learns its threshold through weight decay on sparseThreshold
    return tf.add(loss, tf.mul(5e-4, tf.sum(tf.square(conv.sparseThreshold)))) as tf.Scalar;
  }, false, [...conv.trainableVariables(), head]);
}
console.log(conv.sparsity()); // { sparsity: %, zeros, numel, threshold: σ(s) }
