import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../src/tf.js';
import { DenseConv } from '../../src/nn/conv/dense.js';
import { MaxPool2d } from '../../src/nn/layers.js';
import { useBackend, assertClose } from '../helpers/tf.js';

/** PyTorch conv2d semantics written out: symmetric zero padding, floor output size. */
function naiveConv(x: Float32Array, [n, h, w, ci]: number[], wt: Float32Array, [k, co]: number[], stride: number, pad: number) {
  const oh = Math.floor((h + 2 * pad - k) / stride) + 1;
  const ow = Math.floor((w + 2 * pad - k) / stride) + 1;
  const out = new Float32Array(n * oh * ow * co);
  for (let b = 0; b < n; b++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++)
        for (let o = 0; o < co; o++) {
          let acc = 0;
          for (let di = 0; di < k; di++)
            for (let dj = 0; dj < k; dj++) {
              const y = i * stride - pad + di;
              const xx = j * stride - pad + dj;
              if (y < 0 || y >= h || xx < 0 || xx >= w) continue;
              for (let c = 0; c < ci; c++) acc += x[((b * h + y) * w + xx) * ci + c] * wt[((di * k + dj) * ci + c) * co + o];
            }
          out[((b * oh + i) * ow + j) * co + o] = acc;
        }
  return { out, shape: [n, oh, ow, co] };
}

function naiveMaxPool(x: Float32Array, [n, h, w, c]: number[], k: number, stride: number, pad: number) {
  const oh = Math.floor((h + 2 * pad - k) / stride) + 1;
  const ow = Math.floor((w + 2 * pad - k) / stride) + 1;
  const out = new Float32Array(n * oh * ow * c);
  for (let b = 0; b < n; b++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++)
        for (let ch = 0; ch < c; ch++) {
          let m = -Infinity;
          for (let di = 0; di < k; di++)
            for (let dj = 0; dj < k; dj++) {
              const y = i * stride - pad + di;
              const xx = j * stride - pad + dj;
              if (y >= 0 && y < h && xx >= 0 && xx < w) m = Math.max(m, x[((b * h + y) * w + xx) * c + ch]);
            }
          out[((b * oh + i) * ow + j) * c + ch] = m;
        }
  return { out, shape: [n, oh, ow, c] };
}

describe('PyTorch-identical symmetric padding (not TF "same")', () => {
  before(() => useBackend('cpu'));

  for (const [k, stride, size] of [
    [7, 2, 16], // ResNet stem on an even input
    [7, 2, 15],
    [3, 2, 8], // 3×3/s2 conv on an even input
    [3, 1, 7],
    [1, 2, 8], // downsample 1×1/s2
  ]) {
    test(`conv ${k}×${k}/s${stride} pad ${(k - 1) / 2} on ${size}×${size}`, () => {
      const conv = new DenseConv({ inChannels: 3, outChannels: 4, kernelSize: k, stride, seed: `p${k}` });
      const x = tf.randomNormal([2, size, size, 3], 0, 1, 'float32', 11);
      const y = tf.tidy(() => conv.forward(x));
      const ref = naiveConv(x.dataSync() as Float32Array, x.shape, conv.weight.dataSync() as Float32Array, [k, 4], stride, (k - 1) / 2);
      assert.deepEqual(y.shape, ref.shape);
      assert.deepEqual(conv.inferShape([size, size, 3]), ref.shape.slice(1));
      assertClose(y.dataSync(), ref.out, 1e-5);
      tf.dispose([x, y]);
      conv.dispose();
    });
  }

  test('TF "same" padding would shift the grid for 7×7/s2 on even inputs (why explicit padding)', () => {
    const x = tf.randomNormal([1, 16, 16, 1], 0, 1, 'float32', 5);
    const w = tf.randomNormal([7, 7, 1, 1], 0, 1, 'float32', 6);
    const sym = tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 3);
    const same = tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'same');
    assert.deepEqual(sym.shape, same.shape);
    assert.ok(tf.tidy(() => tf.max(tf.abs(tf.sub(sym, same))).dataSync()[0]) > 1e-3);
    tf.dispose([x, w, sym, same]);
  });

  for (const size of [8, 9, 112]) {
    test(`max-pool 3×3/s2 pad 1 on ${size}×${size}`, () => {
      const pool = new MaxPool2d(3, 2, 1);
      const x = tf.randomNormal([1, size, size, 2], 0, 1, 'float32', size);
      const y = pool.forward(x);
      const ref = naiveMaxPool(x.dataSync() as Float32Array, x.shape, 3, 2, 1);
      assert.deepEqual(y.shape, ref.shape);
      assert.deepEqual(Array.from(y.dataSync()), Array.from(ref.out));
      tf.dispose([x, y]);
    });
  }
});
