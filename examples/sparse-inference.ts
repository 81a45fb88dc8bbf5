import * as tf from '@tensorflow/tfjs-core';
import { createModel, initBackend, prepareSparseInference } from '../src/index.js';

await initBackend('wasm');
// a 90 % sparse ResNet18 (DNW's magnitude pruning of random weights; normally a trained checkpoint)
const model = createModel('ResNet18', { convType: 'DNWConv', pruneRate: 0.9, numClasses: 10 }).eval();
const images = tf.randomNormal([4, 32, 32, 3]);
const plain = tf.tidy(() => model.forward(images));
const prepared = await prepareSparseInference(model); // folds BN, packs the non-zeros, once
const fast = tf.tidy(() => model.forward(images)); // conv-BN-ReLU as one op, sparse where it pays
const sparse = prepared.layers.filter((l) => l.kind === 'sparse').length;
console.log(`${sparse} of ${prepared.layers.length} convs sparse`);
console.log(`max |difference|: ${tf.max(tf.abs(tf.sub(fast, plain))).dataSync()[0]}`);
prepared.dispose(); // back to the plain forward
