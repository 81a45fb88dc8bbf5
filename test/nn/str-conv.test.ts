import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../src/tf.js';
import { STRConv, strSigmoid } from '../../src/nn/conv/str.js';
import { useBackend, assertClose, assertNoLeak } from '../helpers/tf.js';

/** A 1×1 STRConv whose 5 weights are W (torch shape [5, 1, 1, 1]). */
function toyConv(w: number[], s: number): STRConv {
  const c = new STRConv({ inChannels: 1, outChannels: w.length, kernelSize: 1, sInitValue: s });
  c.weight.assign(tf.tensor(w, [1, 1, 1, w.length]));
  return c;
}

describe('STRConv', () => {
  before(() => useBackend('cpu'));

  test('§17.1 sigmoid thresholds in float32, exact zero where exp(−s) overflows', () => {
    const s = [-12800, -3200, -100, -88.8, -88, -20, -10, -5, 100];
    const t = strSigmoid(tf.tensor1d(s));
    const v = t.dataSync();
    t.dispose();
    assert.equal(v[0], 0);
    assert.equal(v[1], 0);
    assert.equal(v[2], 0);
    assert.equal(v[3], 0);
    assert.ok(v[4] > 0 && Math.abs(v[4] - 6.05e-39) < 0.01e-39, `σ(−88) = ${v[4]}`);
    assertClose([v[5] / 2.0611535e-9, v[6] / 4.539787e-5, v[7] / 6.692851e-3], [1, 1, 1], 1e-6);
    assert.equal(v[8], 1);
    const g = tf.grad((x: tf.Tensor) => tf.sum(strSigmoid(x)))(tf.tensor1d([-12800, -3200]));
    assert.deepEqual(Array.from(g.dataSync()), [0, 0]);
    g.dispose();
  });

  test('§17.1 at sInit −3200 the layer is exactly dense and s gets exactly zero gradient', async () => {
    await assertNoLeak(() => {
      const c = new STRConv({ inChannels: 3, outChannels: 4, kernelSize: 3, sInitValue: -3200, seed: 'a' });
      const w = tf.tidy(() => c.effectiveWeight());
      assert.deepEqual(Array.from(w.dataSync()), Array.from(c.weight.dataSync()));
      assert.equal(c.sparsity().sparsity, 0);
      assert.equal(c.sparsity().threshold, 0);
      const x = tf.randomNormal([2, 5, 5, 3], 0, 1, 'float32', 7);
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(c.forward(x))) as tf.Scalar, [c.weight, c.sparseThreshold]);
      assert.ok(grads[c.sparseThreshold.name].dataSync()[0] === 0, 'exactly zero (±0)');
      assert.ok(tf.tidy(() => tf.max(tf.abs(grads[c.weight.name])).dataSync()[0]) > 0);
      tf.dispose([w, x, value, grads]);
      c.dispose();
    });
  });

  test('§17.3 toy forward, sparsity and gradients', () => {
    const c = toyConv([0.5, -0.02, 0.003, -0.3, 0.0], -3);
    const w = tf.tidy(() => c.effectiveWeight());
    const got = Array.from(w.dataSync());
    assertClose(got, [0.45257413, -0.0, 0.0, -0.25257413, 0.0], 1e-7);
    assert.ok(Object.is(got[1], -0), 'sign(−0.02)·0 is −0');
    assert.equal(c.sparsity().sparsity, 60);
    assertClose([c.sparsity().threshold], [0.04742587], 1e-7);
    const G = tf.tensor([1, 1, 1, -2, 1], [1, 1, 1, 5]);
    const { grads } = tf.variableGrads(() => tf.sum(tf.mul(c.effectiveWeight(), G)) as tf.Scalar, [c.weight, c.sparseThreshold]);
    assert.deepEqual(Array.from(grads[c.weight.name].dataSync(), (v) => v + 0), [1, 0, 0, -2, 0]);
    assertClose(grads[c.sparseThreshold.name].dataSync(), [-0.13552998], 1e-6);
    tf.dispose([w, G, grads]);
    c.dispose();
  });

  test('gradients of a whole STR conv layer match central finite differences', () => {
    const c = new STRConv({ inChannels: 2, outChannels: 3, kernelSize: 3, stride: 2, sInitValue: -2, seed: 'fd' });
    const tau = 1 / (1 + Math.exp(2));
    // keep every |W| away from the kink at τ and from 0 so the finite difference is smooth
    const w0 = Float32Array.from(c.weight.dataSync(), (v, i) => Math.sign(v || 1) * (tau + 0.05 + ((i * 0.037) % 0.4)));
    c.weight.assign(tf.tensor(w0, c.weight.shape));
    const x = tf.randomNormal([2, 6, 6, 2], 0, 1, 'float32', 3);
    const r = tf.randomNormal([2, 3, 3, 3], 0, 1, 'float32', 4);
    const loss = () => tf.tidy(() => tf.sum(tf.mul(c.forward(x), r)).dataSync()[0]);
    const { grads } = tf.variableGrads(() => tf.tidy(() => tf.sum(tf.mul(c.forward(x), r))) as tf.Scalar, [c.weight, c.sparseThreshold]);
    const gw = grads[c.weight.name].dataSync();
    const gs = grads[c.sparseThreshold.name].dataSync()[0];
    const eps = 1e-3;
    for (const i of [0, 5, 17, 31, 53]) {
      const plus = Float32Array.from(w0);
      plus[i] += eps;
      c.weight.assign(tf.tensor(plus, c.weight.shape));
      const lp = loss();
      plus[i] -= 2 * eps;
      c.weight.assign(tf.tensor(plus, c.weight.shape));
      const lm = loss();
      c.weight.assign(tf.tensor(w0, c.weight.shape));
      const fd = (lp - lm) / (2 * eps);
      assert.ok(Math.abs(fd - gw[i]) <= 2e-2 * Math.max(1, Math.abs(fd)), `dL/dW[${i}]: fd ${fd} vs autograd ${gw[i]}`);
    }
    const se = 1e-2;
    c.sparseThreshold.assign(tf.fill([1, 1], -2 + se));
    const sp = loss();
    c.sparseThreshold.assign(tf.fill([1, 1], -2 - se));
    const sm = loss();
    const fds = (sp - sm) / (2 * se);
    assert.ok(Math.abs(fds - gs) <= 2e-2 * Math.max(1, Math.abs(fds)), `dL/ds: fd ${fds} vs autograd ${gs}`);
    assert.notEqual(gs, 0);
    tf.dispose([x, r, grads]);
    c.dispose();
  });
});
