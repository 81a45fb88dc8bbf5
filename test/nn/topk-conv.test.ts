import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../src/tf.js';
import { DNWConv } from '../../src/nn/conv/dnw.js';
import { GMPConv } from '../../src/nn/conv/gmp.js';
import { pruneCount, pruneMaskDevice, pruneMaskHost, torchFlatIndex } from '../../src/sparsity/topk-mask.js';
import { useBackend, assertNoLeak } from '../helpers/tf.js';

const TOY = [0.3, -0.1, 0.05, -0.6, 0.2, 0.0, -0.05, 0.4, 0.01, -0.25];

function toy<C extends DNWConv | GMPConv>(c: C): C {
  c.weight.assign(tf.tensor(TOY, [1, 1, 1, TOY.length]));
  return c;
}

describe('top-k pruning (DNW, GMP)', () => {
  before(() => useBackend('cpu'));

  test('§17.6 prune counts are ⌊p·n⌋ in float64', () => {
    assert.equal(pruneCount(0.9, 9408), 8467);
    assert.equal(9408 - pruneCount(0.9, 9408), 941);
    assert.equal(pruneCount(0.9, 2048000), 1843200);
    assert.equal(pruneCount(0.29, 100), 28);
    assert.equal(pruneCount(0.8999958333, 2359296), 2123356);
    assert.equal(pruneCount(0.9, 2359296), 2123366);
  });

  test('§17.6 toy: DNW zeroes {5, 8, 2, 6} and passes the gradient straight through', () => {
    const c = toy(new DNWConv({ inChannels: 1, outChannels: 10, kernelSize: 1 }));
    c.setPruneRate(0.45);
    const w = tf.tidy(() => c.effectiveWeight());
    assert.deepEqual(plain(w.dataSync()), plain(Float32Array.from([0.3, -0.1, 0, -0.6, 0.2, 0, 0, 0.4, 0, -0.25])));
    const G = tf.range(1, 11).reshape([1, 1, 1, 10]);
    const { grads } = tf.variableGrads(() => tf.sum(tf.mul(c.effectiveWeight(), G)) as tf.Scalar, [c.weight]);
    assert.deepEqual(Array.from(grads[c.weight.name].dataSync()), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.equal(c.sparsity().zeros, 4);
    assertThreshold(c.sparsity().threshold, 0.05);
    tf.dispose([w, G, grads]);
    c.dispose();
  });

  test('§17.6 toy: GMP masks the gradient of the pruned entries; setPruneRate resets the current rate', () => {
    const c = toy(new GMPConv({ inChannels: 1, outChannels: 10, kernelSize: 1 }));
    c.setPruneRate(0.9);
    assert.equal(c.currPruneRate, 0);
    assert.equal(c.sparsity().zeros, 1, 'current rate 0: only the exact zero');
    c.setCurrPruneRate(0.45);
    const G = tf.range(1, 11).reshape([1, 1, 1, 10]);
    const { grads } = tf.variableGrads(() => tf.sum(tf.mul(c.effectiveWeight(), G)) as tf.Scalar, [c.weight]);
    assert.deepEqual(plain(grads[c.weight.name].dataSync()), [1, 2, 0, 4, 5, 0, 0, 8, 0, 10]);
    tf.dispose([G, grads]);
    c.dispose();
  });

  test('ties are pruned in ascending PyTorch (OIHW) flat index, independent of our layout', () => {
    // 1×1 conv 2→2: internal [1,1,in,out] index = in·2+out; torch [out,in] index = out·2+in
    const idx = torchFlatIndex(1, 1, 2, 2);
    assert.deepEqual(Array.from(idx), [0, 2, 1, 3]);
    const ones = new Float32Array([1, 1, 1, 1]);
    assert.deepEqual(Array.from(pruneMaskHost(ones, 1, idx)), [0, 1, 1, 1]);
    assert.deepEqual(Array.from(pruneMaskHost(ones, 2, idx)), [0, 1, 0, 1], 'torch 0 and 1 = internal 0 and 2');
    assert.deepEqual(Array.from(pruneMaskHost(ones, 4, idx)), [0, 0, 0, 0]);
    assert.deepEqual(Array.from(pruneMaskHost(ones, 0, idx)), [1, 1, 1, 1]);
  });

  test('host selection and device top-k give the same mask (many ties, every k)', async () => {
    await assertNoLeak(() => {
      const c = new DNWConv({ inChannels: 3, outChannels: 4, kernelSize: 3, seed: 'ties' });
      const n = c.numel;
      const vals = Float32Array.from({ length: n }, (_, i) => (((i * 7919) % 13) - 6) / 4); // few distinct magnitudes
      tf.tidy(() => c.weight.assign(tf.tensor(vals, c.weight.shape)));
      for (const k of [1, 5, 17, n - 1, n]) {
        const host = pruneMaskHost(vals, k, c.torchIndex());
        const dev = pruneMaskDevice(c.weight, k, (t) => c.toTorchOrder(t), (t) => c.fromTorchOrder(t));
        assert.deepEqual(Array.from(dev.dataSync()), Array.from(host), `k=${k}`);
        assert.equal(host.reduce((a, b) => a + (b === 0 ? 1 : 0), 0), k);
        dev.dispose();
      }
      c.dispose();
    });
  });

  test('a DNW conv at rate 0.9 has exactly ⌊0.9·n⌋ zeros through the forward pass', async () => {
    await assertNoLeak(() => {
      const c = new DNWConv({ inChannels: 8, outChannels: 16, kernelSize: 3, seed: 'x' });
      c.setPruneRate(0.9);
      assert.equal(c.sparsity().zeros, pruneCount(0.9, c.numel));
      const x = tf.randomNormal([1, 4, 4, 8]);
      const y = tf.tidy(() => c.forward(x));
      assert.deepEqual(y.shape, [1, 4, 4, 16]);
      tf.dispose([x, y]);
      c.dispose();
    });
  });
});

/** Values as plain numbers with −0 folded into 0 (deepStrictEqual tells them apart). */
function plain(a: ArrayLike<number>): number[] {
  return Array.from(a, (v) => v + 0);
}

function assertThreshold(got: number, want: number) {
  assert.ok(Math.abs(got - want) < 1e-7, `threshold ${got} vs ${want}`);
}
