// The fused wasm kernels for STR's soft threshold and the SGD update against the tf-ops
// composites they replace (run on wasm itself with the fused kernel unregistered), STR-SPEC
// §17.3 and §17.8 on wasm, exact zero threshold gradients where sigmoid underflows, and no leaks.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../src/tf.js';
import { SgdUpdate, SoftThreshold } from '../../src/backend/fused-kernels.js';
import { registerWasmTrainingKernels } from '../../src/backend/wasm/register.js';
import { STRConv, softThresholdWeight } from '../../src/nn/conv/str.js';
import { Optimizer, type OptimizerOptions } from '../../src/train/optimizer.js';
import { Module } from '../../src/nn/module.js';
import { useBackend, assertClose, assertNoLeak } from '../helpers/tf.js';
import { makeRng } from '../../src/util/rng.js';

const rng = makeRng(5);
const randn = (n: number, scale = 1) => Float32Array.from({ length: n }, () => scale * rng.normal());

/** Runs `f` with the wasm kernel `name` unregistered, so the ops take their tf-ops composite. */
function withoutKernel<T>(name: string, f: () => T): T {
  tf.unregisterKernel(name, 'wasm');
  try {
    return f();
  } finally {
    registerWasmTrainingKernels();
  }
}

before(() => useBackend('wasm'));
after(() => useBackend('cpu'));

describe('fused STR soft threshold (wasm)', () => {
  /** Ŵ, ∂L/∂w, ∂L/∂s for L = Σ Ŵ·G. */
  function strRun(w: Float32Array, shape: number[], s: number, G: Float32Array) {
    return tf.tidy(() => {
      const wt = tf.tensor(w, shape), st = tf.tensor([[s]]), Gt = tf.tensor(G, shape);
      const out = softThresholdWeight(wt, st);
      const [dw, ds] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(softThresholdWeight(a, b), Gt)) as tf.Scalar)([wt, st]);
      return { out: out.dataSync(), dw: dw.dataSync(), ds: ds.dataSync()[0] };
    });
  }

  test('equals the composite sign(w)·relu(|w| − sigmoid(s)): values and w-gradient bit for bit, s-gradient to rounding', async () => {
    for (const [n, s] of [[3 * 3 * 5 * 7, -2], [4 * 4 * 16 * 8, -4.5], [13, 0.3]] as const) {
      const tau = 1 / (1 + Math.exp(-s));
      const w = randn(n, 0.2);
      // exact zeros, ±τ exactly (the kink: no gradient), and values just above
      w[0] = 0; w[1] = -0; w[2] = Math.fround(tau); w[3] = -Math.fround(tau); w[4] = Math.fround(tau * 1.0000001);
      const G = randn(n);
      const shape = [n];
      await assertNoLeak(() => {
        const fused = strRun(w, shape, s, G);
        const ref = withoutKernel(SoftThreshold, () => strRun(w, shape, s, G));
        // τ from float64 (fused) vs tfjs' float32 sigmoid (composite) may differ by an ulp
        assertClose(fused.out, ref.out, 2e-7, 'values');
        for (let i = 0; i < n; i++) assert.equal(Object.is(fused.out[i], -0), Object.is(ref.out[i], -0), `sign of zero at ${i}`);
        assert.deepEqual(Array.from(fused.dw), Array.from(ref.dw), 'dw');
        assert.ok(Math.abs(fused.ds - ref.ds) <= 1e-5 * Math.max(1, Math.abs(ref.ds)), `ds ${fused.ds} vs ${ref.ds}`);
      });
    }
  });

  test('§17.3 toy layer on wasm: values, sparsity, gradients', () => {
    const c = new STRConv({ inChannels: 1, outChannels: 5, kernelSize: 1, sInitValue: -3 });
    c.weight.assign(tf.tensor([0.5, -0.02, 0.003, -0.3, 0.0], [1, 1, 1, 5]));
    const w = tf.tidy(() => c.effectiveWeight());
    const got = Array.from(w.dataSync());
    assertClose(got, [0.45257413, -0.0, 0.0, -0.25257413, 0.0], 1e-7);
    assert.ok(Object.is(got[1], -0), 'sign(−0.02)·0 is −0');
    assert.equal(c.sparsity().sparsity, 60);
    const G = tf.tensor([1, 1, 1, -2, 1], [1, 1, 1, 5]);
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(c.effectiveWeight(), G)) as tf.Scalar, [c.weight, c.sparseThreshold]);
    assert.deepEqual(Array.from(grads[c.weight.name].dataSync(), (v) => v + 0), [1, 0, 0, -2, 0]);
    assertClose(grads[c.sparseThreshold.name].dataSync(), [-0.13552998], 1e-6);
    tf.dispose([w, G, value, grads]);
    c.dispose();
  });

  test('§17.1 sInit −3200 on wasm: exactly dense, exactly zero threshold gradient', () => {
    const c = new STRConv({ inChannels: 3, outChannels: 4, kernelSize: 3, sInitValue: -3200, seed: 'a' });
    const w = tf.tidy(() => c.effectiveWeight());
    assert.deepEqual(Array.from(w.dataSync()), Array.from(c.weight.dataSync()));
    const x = tf.randomNormal([2, 5, 5, 3], 0, 1, 'float32', 7);
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(c.forward(x))) as tf.Scalar, [c.weight, c.sparseThreshold]);
    assert.equal(grads[c.sparseThreshold.name].dataSync()[0] + 0, 0);
    tf.dispose([w, x, value, grads]);
    c.dispose();
  });
});

describe('fused SGD update (wasm)', () => {
  class Params extends Module {
    readonly a: tf.Variable;
    readonly b: tf.Variable;
    constructor(a: Float32Array, b: Float32Array) {
      super();
      this.a = this.registerParameter('a', tf.tensor(a, [a.length]), 'plain', 'rest');
      this.b = this.registerParameter('b', tf.tensor(b, [b.length]), 'plain', 'bn');
    }
    forward(x: tf.Tensor) { return x; }
    inferShape(s: [number, number, number]): [number, number, number] { return s; }
  }

  function sgdRun(o: OptimizerOptions, a0: Float32Array, b0: Float32Array, gs: Float32Array[][]) {
    const m = new Params(a0, b0);
    const opt = new Optimizer(m, o);
    for (const [ga, gb] of gs) {
      const g = { [m.a.name]: tf.tensor(ga), [m.b.name]: tf.tensor(gb) };
      opt.step(g);
      tf.dispose(g);
    }
    const out = [m.a, m.b, ...opt.slots.map((s) => s.buf).filter((b) => b != null)].map((t) => Array.from(t!.dataSync()));
    opt.dispose();
    m.dispose();
    return out;
  }

  test('bit-identical to the tf-ops update (plain, Nesterov, no momentum, no decay), no leak', async () => {
    const n = 37;
    const a0 = randn(n), b0 = randn(n);
    const gs = [0, 1, 2].map(() => [randn(n), randn(n)]);
    const base: OptimizerOptions = { optimizer: 'sgd', lr: 0.1, momentum: 0.9, nesterov: false, weightDecay: 5e-4, noBnDecay: true };
    for (const o of [base, { ...base, nesterov: true }, { ...base, momentum: 0 }, { ...base, weightDecay: 0, lr: 0.37 }]) {
      await assertNoLeak(() => {
        const fused = sgdRun(o, a0, b0, gs);
        const ref = withoutKernel(SgdUpdate, () => sgdRun(o, a0, b0, gs));
        assert.deepEqual(fused, ref, JSON.stringify(o));
      });
    }
  });

  test('§17.8 plain momentum with coupled decay, on wasm', () => {
    const m = new Params(Float32Array.of(1), Float32Array.of(1));
    const opt = new Optimizer(m, { optimizer: 'sgd', lr: 0.1, momentum: 0.875, nesterov: false, weightDecay: 0.01, noBnDecay: false });
    const ws: number[] = [];
    for (let i = 0; i < 3; i++) {
      const g = { [m.a.name]: tf.tensor1d([0.5]), [m.b.name]: tf.tensor1d([0.5]) };
      opt.step(g);
      tf.dispose(g);
      ws.push(m.a.dataSync()[0]);
    }
    assertClose(ws, [0.949, 0.853426, 0.718945324], 1e-6);
    opt.dispose();
    m.dispose();
  });
});

describe('fused DNW/GMP top-k mask (wasm)', () => {
  test('equals the host quickselect mask, ties broken by PyTorch index, k at the edges', async () => {
    const { PruneMask } = await import('../../src/backend/fused-kernels.js');
    const { pruneMaskHost, torchFlatIndex } = await import('../../src/sparsity/topk-mask.js');
    const shapes = [[3, 3, 4, 6], [1, 1, 16, 10], [3, 3, 7, 1]];
    for (const shape of shapes) {
      const n = shape.reduce((a, b) => a * b, 1);
      const torchIndex = torchFlatIndex(shape[0], shape[1], shape[2], shape[3]);
      for (const grid of [0, 4]) {
        // grid 4: values on a coarse grid, so the k-th magnitude is shared by many weights (and ±0)
        const w = Float32Array.from(randn(n), (v) => (grid ? Math.round(v * grid) / grid : v));
        for (const k of [0, 1, Math.floor(n / 3), Math.floor(n / 2), n - 1, n]) {
          const expected = pruneMaskHost(w, k, torchIndex);
          const got = tf.tidy(() => (tf.engine().runKernel(PruneMask, { w: tf.tensor(w, shape) },
            { k, torchIndex } as unknown as tf.NamedAttrMap) as tf.Tensor).dataSync());
          assert.deepEqual(Array.from(got), Array.from(expected), `${JSON.stringify(shape)} grid ${grid} k ${k}`);
        }
      }
    }
  });
});
