// Training on wasm: gradients through the ops ResNet/MobileNet/STR training uses equal the cpu
// backend's, and the project kernels leave no tensors or backend buffers behind.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../src/tf.js';
import { initBackend } from '../../src/backend/select.js';
import { makeRng } from '../../src/util/rng.js';
import { relErr } from '../helpers/tf.js';

const rng = makeRng(7);
const randn = (n: number, scale = 1) => Float32Array.from({ length: n }, () => scale * rng.normal());

before(async () => {
  await initBackend('wasm', () => {});
});

// weights of a small network that touches every training op of the models and STR
const shapes: Record<string, number[]> = {
  stem: [7, 7, 3, 8], // 7x7/2 pad 3 (PyTorch symmetric)
  dw: [3, 3, 8, 1], // depthwise 3x3/2 pad 1
  pw: [1, 1, 8, 12], // pointwise
  c3: [3, 3, 12, 12], // 3x3/1 pad 1
  down: [1, 1, 8, 12], // 1x1/2 shortcut
  gamma: [12],
  beta: [12],
  s: [1], // STR threshold logit
  fc: [12, 10],
};
const init: Record<string, Float32Array> = Object.fromEntries(
  Object.entries(shapes).map(([k, sh]) => [k, randn(sh.reduce((a, b) => a * b, 1), k === 's' ? 1 : 0.3)]));
const xData = randn(4 * 17 * 17 * 3);
const labels = [3, 1, 0, 7];

/** Loss of the small network; `p` maps names to weights on the current backend. */
function loss(p: Record<string, tf.Tensor>): tf.Scalar {
  const x = tf.tensor4d(xData, [4, 17, 17, 3]);
  let h = tf.conv2d(x, p.stem as tf.Tensor4D, 2, 3); // [4,9,9,8]
  h = tf.relu(h);
  h = tf.maxPool(h, 3, 2, 1); // [4,5,5,8] PyTorch-style max-pool pad 1
  const shortcut = tf.conv2d(h, p.down as tf.Tensor4D, 2, 0); // [4,3,3,12]
  let b = tf.depthwiseConv2d(h, p.dw as tf.Tensor4D, 2, 1); // [4,3,3,8]
  b = tf.conv2d(b, p.pw as tf.Tensor4D, 1, 0);
  // STR: sign(W) * relu(|W| - sigmoid(s))
  const w = tf.mul(tf.sign(p.c3), tf.relu(tf.sub(tf.abs(p.c3), tf.sigmoid(p.s))));
  b = tf.conv2d(b as tf.Tensor4D, w as tf.Tensor4D, 1, 1);
  // batch norm from moments, with rsqrt
  const { mean, variance } = tf.moments(b, [0, 1, 2]);
  b = tf.add(tf.mul(tf.mul(tf.sub(b, mean), tf.rsqrt(tf.add(variance, 1e-5))), p.gamma), p.beta);
  h = tf.relu(tf.add(b, shortcut)) as tf.Tensor4D;
  // masked (DNW/GMP-like) paths; masks are constants, as tfjs has no gradient for comparisons,
  // TopK or ScatterNd
  const flat = tf.reshape(h, [4, -1]);
  const gate = tf.step(tf.tensor1d(Array.from({ length: 108 }, (_, i) => Math.sin(i))));
  const gated = tf.where(tf.greater(gate, 0), flat, tf.mul(flat, 0.5));
  const top = tf.topk(tf.abs(tf.tensor1d(init.c3)), 200);
  const keep = tf.scatterND(tf.expandDims(top.indices, 1), tf.onesLike(top.values), [12 * 12 * 9]);
  const scattered = tf.mul(tf.reshape(keep, [3, 3, 12, 12]), p.c3);
  const pooled = tf.mean(tf.reshape(gated, [4, 3, 3, 12]), [1, 2]); // global average pool
  const picked = tf.gather(p.fc, tf.tensor1d([0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11], 'int32')); // gather gradient
  const logits = tf.matMul(pooled, picked);
  const ce = tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d(labels, 'int32'), 10), logits);
  return tf.add(ce, tf.mul(tf.sum(scattered), 1e-3)) as tf.Scalar;
}

async function gradsOn(backend: string): Promise<Record<string, Float32Array>> {
  await tf.setBackend(backend);
  const params = Object.fromEntries(Object.entries(shapes).map(([k, sh]) => [k, tf.tensor(init[k], sh)]));
  const names = Object.keys(params);
  const g = tf.grads((...ts: tf.Tensor[]) => loss(Object.fromEntries(names.map((n, i) => [n, ts[i]]))))(names.map((n) => params[n]));
  const out = Object.fromEntries(names.map((n, i) => [n, g[i].dataSync() as Float32Array]));
  tf.dispose([...g, ...Object.values(params)]);
  await tf.setBackend('wasm');
  return out;
}

test('gradients of a conv/depthwise/pool/BN/STR/softmax-CE network on wasm equal cpu', async () => {
  const [w, c] = [await gradsOn('wasm'), await gradsOn('cpu')];
  for (const name of Object.keys(shapes)) {
    const e = relErr(w[name], c[name]);
    assert.ok(e < 1e-4, `${name}: relative error ${e}`);
    assert.ok(c[name].some((v) => v !== 0), `${name}: gradient is all zero (test would not detect a bug)`);
  }
});

test('no tensor, byte or backend-buffer leak from the training kernels', async () => {
  await tf.setBackend('wasm');
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const x = tf.tensor4d(randn(2 * 9 * 9 * 6), [2, 9, 9, 6]);
  const w = tf.tensor4d(randn(3 * 3 * 6 * 5), [3, 3, 6, 5]);
  const wd = tf.tensor4d(randn(3 * 3 * 6 * 1), [3, 3, 6, 1]);
  const step = () => tf.tidy(() => {
    const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 1)))([x, w]);
    const [gx2, gw2] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 1)))([x, wd]);
    const [gx3] = tf.grads((a: tf.Tensor) => tf.sum(tf.gather(a, tf.tensor1d([1, 1, 0], 'int32'))))([x]);
    return tf.addN([tf.sum(gx), tf.sum(gw), tf.sum(gx2), tf.sum(gw2), tf.sum(gx3)]);
  });
  step().dispose(); // warm-up
  const before = { ...tf.memory(), ids: backend.numDataIds() };
  for (let i = 0; i < 3; i++) step().dispose();
  const after = { ...tf.memory(), ids: backend.numDataIds() };
  assert.equal(after.numTensors, before.numTensors);
  assert.equal(after.numBytes, before.numBytes);
  assert.equal(after.ids, before.ids, 'wasm backend buffers leaked by a kernel');
  tf.dispose([x, w, wd]);
});

test('large tensors survive wasm memory growth (shared memory views stay current)', async () => {
  await tf.setBackend('wasm');
  const n = 24 << 20; // 96 MB, beyond the initial heap
  const t = tf.fill([n], 3);
  const u = tf.add(t, 1);
  const v = u.dataSync();
  assert.equal(v.length, n);
  assert.equal(v[0], 4);
  assert.equal(v[n - 1], 4);
  tf.dispose([t, u]);
});
