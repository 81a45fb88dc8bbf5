// The fused training-mode BatchNorm op (src/nn/batchnorm-train.ts) against the tf-ops formulation
// it replaced (moments, sub, rsqrt, mul, add, relu, differentiated by autograd on the cpu
// backend): values, gradients and running statistics, on wasm (native kernels) and cpu
// (composite), and its gradient against finite differences of a float64 reference.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../src/tf.js';
import { batchNormTrain } from '../../src/nn/batchnorm-train.js';
import { LearnedBatchNorm } from '../../src/nn/batchnorm.js';
import { useBackend, assertNoLeak, relErr } from '../helpers/tf.js';
import { makeRng } from '../../src/util/rng.js';

const rng = makeRng(11);
const randn = (n: number, scale = 1, shift = 0) => Float32Array.from({ length: n }, () => shift + scale * rng.normal());

interface Case { shape: number[]; affine: boolean; relu: boolean; residual: boolean }
interface Data { x: Float32Array; g: Float32Array; b: Float32Array; r: Float32Array; w: Float32Array; rm: Float32Array; rv: Float32Array }
interface Result { y: Float32Array; dx: Float32Array; dg?: Float32Array; db?: Float32Array; dr?: Float32Array; rm: Float32Array; rv: Float32Array }

function makeData(c: Case): Data {
  const n = c.shape.reduce((a, b) => a * b, 1), C = c.shape[c.shape.length - 1];
  // a channel offset larger than the spread, as conv outputs often have
  return { x: randn(n, 1.5, 3), g: randn(C, 0.5, 1), b: randn(C), r: randn(n), w: randn(n), rm: randn(C), rv: randn(C, 0.1, 1) };
}

/** Loss Σ y·w through either formulation; returns values, gradients and new running stats. */
function run(c: Case, d: Data, impl: 'old' | 'new'): Result {
  const C = c.shape[c.shape.length - 1];
  const x = tf.tensor(d.x, c.shape), w = tf.tensor(d.w, c.shape), r = tf.tensor(d.r, c.shape);
  const g = tf.tensor1d(d.g), b = tf.tensor1d(d.b);
  const [rm, rv] = tf.tidy(() => [tf.variable(tf.tensor1d(d.rm), false), tf.variable(tf.tensor1d(d.rv), false)]);
  let y!: tf.Tensor;
  const used = [x, ...(c.affine ? [g, b] : []), ...(c.residual ? [r] : [])];
  const f = (...ins: tf.Tensor[]) => {
    const xx = ins[0], gg = c.affine ? ins[1] : g, bb = c.affine ? ins[2] : b, rr = c.residual ? ins[ins.length - 1] : r;
    let out: tf.Tensor;
    if (impl === 'new') {
      out = batchNormTrain(xx, { scale: c.affine ? gg : undefined, offset: c.affine ? bb : undefined,
        residual: c.residual ? rr : undefined, relu: c.relu, eps: 1e-5, momentum: 0.1, runningMean: rm, runningVar: rv });
    } else {
      const n = xx.size / C;
      const { mean, variance } = tf.moments(xx, [0, 1, 2]);
      out = tf.mul(tf.sub(xx, mean), tf.rsqrt(tf.add(variance, 1e-5)));
      if (c.affine) out = tf.add(tf.mul(out, gg), bb);
      if (c.residual) out = tf.add(out, rr);
      if (c.relu) out = tf.relu(out);
      rm.assign(tf.add(tf.mul(rm, 0.9), tf.mul(mean, 0.1)));
      rv.assign(tf.add(tf.mul(rv, 0.9), tf.mul(tf.mul(variance, n > 1 ? n / (n - 1) : 1), 0.1)));
    }
    y = tf.keep(out);
    return tf.sum(tf.mul(out, w)) as tf.Scalar;
  };
  const gs = tf.grads(f)(used);
  const dx = gs[0], dg = c.affine ? gs[1] : undefined, db = c.affine ? gs[2] : undefined;
  const dr = c.residual ? gs[gs.length - 1] : undefined;
  const res: Result = {
    y: y.dataSync() as Float32Array, dx: dx.dataSync() as Float32Array,
    rm: rm.dataSync().slice() as Float32Array, rv: rv.dataSync().slice() as Float32Array,
  };
  if (dg && db) { res.dg = dg.dataSync() as Float32Array; res.db = db.dataSync() as Float32Array; }
  if (dr) res.dr = dr.dataSync() as Float32Array;
  tf.dispose([x, w, r, g, b, rm, rv, y, ...gs]);
  return res;
}

function compare(a: Result, ref: Result, tol: number, what: string): void {
  for (const k of ['y', 'dx', 'dg', 'db', 'dr', 'rm', 'rv'] as const) {
    if (ref[k] == null) continue;
    const e = relErr(a[k]!, ref[k]!);
    assert.ok(e < tol, `${what}: ${k} relative error ${e}`);
  }
}

const cases: Case[] = [];
for (const affine of [true, false]) for (const relu of [false, true]) for (const residual of [false, true]) {
  cases.push({ shape: [3, 5, 4, 8], affine, relu, residual });
}
cases.push({ shape: [2, 3, 3, 7], affine: true, relu: true, residual: true }); // channels not a multiple of 4
cases.push({ shape: [1, 1, 1, 5], affine: true, relu: false, residual: false }); // n = 1: running var unbiased factor 1

describe('fused training BatchNorm', () => {
  after(() => useBackend('cpu'));

  test('wasm (native kernels) and cpu (composite) match the tf-ops formulation: values, gradients, running stats', async () => {
    for (const c of cases) {
      const d = makeData(c);
      await useBackend('cpu');
      const ref = run(c, d, 'old');
      const cpuNew = await assertNoLeak(() => run(c, d, 'new'));
      await useBackend('wasm');
      const wasmNew = await assertNoLeak(() => run(c, d, 'new'));
      const what = JSON.stringify(c);
      compare(cpuNew, ref, 1e-5, `cpu ${what}`);
      compare(wasmNew, ref, 1e-5, `wasm ${what}`);
    }
  });

  test('gradient equals central finite differences of a float64 reference (wasm)', async () => {
    await useBackend('wasm');
    const shape = [2, 3, 2, 5], C = 5, R = 12, n = R * C;
    const x = randn(n, 1, 0.5), gm = randn(C, 0.5, 1), bt = randn(C), r = randn(n), w = randn(n);
    // float64 reference of Σ relu(bn(x)·γ + β + r)·w
    const loss = (xv: Float64Array, gv: Float64Array, bv: Float64Array, rv: Float64Array) => {
      let L = 0;
      for (let c = 0; c < C; c++) {
        let s = 0, s2 = 0;
        for (let i = 0; i < R; i++) s += xv[i * C + c];
        const mu = s / R;
        for (let i = 0; i < R; i++) s2 += (xv[i * C + c] - mu) ** 2;
        const is = 1 / Math.sqrt(s2 / R + 1e-5);
        for (let i = 0; i < R; i++) {
          const k = i * C + c;
          L += Math.max(0, (xv[k] - mu) * is * gv[c] + bv[c] + rv[k]) * w[k];
        }
      }
      return L;
    };
    const f64 = (a: Float32Array) => Float64Array.from(a);
    const [dx, dg, db, dr] = tf.tidy(() => tf.grads((xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor, rr: tf.Tensor) =>
      tf.sum(tf.mul(batchNormTrain(xx, { scale: gg, offset: bb, residual: rr, relu: true, eps: 1e-5, momentum: 0.1 }), tf.tensor(w, shape))) as tf.Scalar)(
      [tf.tensor(x, shape), tf.tensor1d(gm), tf.tensor1d(bt), tf.tensor(r, shape)]).map((t) => t.dataSync()));
    const h = 1e-4;
    const check = (which: number, analytic: ArrayLike<number>) => {
      const args = [f64(x), f64(gm), f64(bt), f64(r)];
      let maxErr = 0, maxG = 0;
      for (let i = 0; i < args[which].length; i++) {
        const v = args[which][i];
        args[which][i] = v + h;
        const lp = loss(args[0], args[1], args[2], args[3]);
        args[which][i] = v - h;
        const lm = loss(args[0], args[1], args[2], args[3]);
        args[which][i] = v;
        const num = (lp - lm) / (2 * h);
        maxErr = Math.max(maxErr, Math.abs(num - analytic[i]));
        maxG = Math.max(maxG, Math.abs(num));
      }
      assert.ok(maxErr < 1e-3 * Math.max(1, maxG), `input ${which}: |fd − analytic| = ${maxErr} (max |g| ${maxG})`);
    };
    check(0, dx);
    check(1, dg);
    check(2, db);
    check(3, dr);
  });

  test('BatchNorm modules: forwardRelu(x, residual) equals relu(forward(x) + residual), train and eval, no leak', async () => {
    for (const backend of ['cpu', 'wasm'] as const) {
      await useBackend(backend);
      await assertNoLeak(() => {
        const x = tf.tensor(randn(2 * 3 * 3 * 6, 2, 1), [2, 3, 3, 6]), r = tf.tensor(randn(2 * 3 * 3 * 6), [2, 3, 3, 6]);
        for (const training of [true, false]) {
          const a = new LearnedBatchNorm(6), b = new LearnedBatchNorm(6);
          a.train(training);
          b.train(training);
          const ya = tf.tidy(() => a.forwardRelu(x, r));
          const yb = tf.tidy(() => tf.relu(tf.add(b.forward(x), r)));
          assert.ok(relErr(ya.dataSync(), yb.dataSync()) < 1e-6, `${backend} training=${training}`);
          assert.ok(relErr(a.runningVar.dataSync(), b.runningVar.dataSync()) < 1e-6);
          assert.equal(a.numBatchesTracked.value, training ? 1 : 0);
          tf.dispose([ya, yb]);
          a.dispose();
          b.dispose();
        }
        tf.dispose([x, r]);
      });
    }
  });
});
