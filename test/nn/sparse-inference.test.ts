// Sparse inference: BN folding and CSR packing by hand, the native sparse conv against tf.conv2d
// on random shapes, and whole prepared models against the plain eval forward.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../src/tf.js';
import { SparseConv2D } from '../../src/backend/fused-kernels.js';
import { createModel } from '../../src/models/registry.js';
import { foldBatchNorm, packCsr, SPARSE_TILE } from '../../src/nn/sparse/pack.js';
import { prepareSparseInference } from '../../src/nn/sparse/inference.js';
import { BatchNormBase } from '../../src/nn/batchnorm.js';
import { TopKConv } from '../../src/nn/conv/index.js';
import type { Model } from '../../src/models/model.js';
import { startNativeWorkers } from '../../src/backend/wasm/native/workers.js';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { validate } from '../../src/train/loop.js';
import { makeCriterion } from '../../src/train/loss.js';
import { makeRng } from '../../src/util/rng.js';
import { relErr, useBackend } from '../helpers/tf.js';

const rng = makeRng(1301);
const randn = (n: number) => Float32Array.from({ length: n }, () => rng.normal());

describe('sparse inference packing', () => {
  test('foldBatchNorm scales each output channel and keeps zeros', () => {
    // [1,1,2,2] weight: w[ci][co]; channel 0: γ=2, var=3 (eps 1), mean 1, β 0.5; channel 1: non-affine var 0
    const w = new Float32Array([1, 0, -2, 4]);
    const f = foldBatchNorm(w, 2, { mean: new Float32Array([1, -1]), variance: new Float32Array([3, 0]), gamma: new Float32Array([2, 1]), beta: new Float32Array([0.5, 0]), eps: 1 },
      new Float32Array([3, 0]));
    // s0 = 2/√4 = 1, s1 = 1/√1 = 1 → weights unchanged; b0 = (3 − 1)·1 + 0.5, b1 = (0 + 1)·1
    assert.deepEqual([...f.weight], [1, 0, -2, 4]);
    assert.deepEqual([...f.bias], [2.5, 1]);
    const g = foldBatchNorm(w, 2, { mean: new Float32Array([0, 0]), variance: new Float32Array([0.25, 4]), eps: 0 });
    assert.deepEqual([...g.weight], [2, 0, -4, 2]); // s = 2, 0.5
    assert.ok(Object.is(g.weight[1], 0));
  });

  test('packCsr lists each output channel\'s non-zeros in im2col order, groups absolute', () => {
    // KH=1, KW=2, CI=2, CO=2, groups=2: w[kw][ci_g][co], one input channel per group
    const w = new Float32Array([1, 0, 0, 2, 3, 4]).subarray(0, 4); // [kw0: co0=1, co1=0], [kw1: co0=0, co1=2]
    const c = packCsr(w, 1, 2, 2, 2, 2);
    assert.deepEqual([...c.rowptr], [0, 1, 2]);
    // co0 (group 0, c=0) tap 0 → k=0; co1 (group 1, c=1) tap 1 → k = 1·2 + 1 = 3
    assert.deepEqual([c.nz[0], c.nz[2]], [0, 3 * SPARSE_TILE]);
    assert.deepEqual([...new Float32Array(c.nz.buffer)].filter((_, i) => i % 2 === 1), [1, 2]);
  });
});

/** The dense reference: conv (groups as a block-diagonal full weight) + bias [+ residual] [→ ReLU]. */
function reference(x: tf.Tensor4D, w: Float32Array, K: number, CI: number, CO: number, groups: number, S: number, P: number,
  bias: Float32Array, relu: boolean, residual?: tf.Tensor): tf.Tensor {
  const CIg = CI / groups, COg = CO / groups;
  const full = new Float32Array(K * K * CI * CO);
  for (let t = 0; t < K * K; t++) for (let ci = 0; ci < CIg; ci++) for (let o = 0; o < CO; o++) {
    const c = Math.floor(o / COg) * CIg + ci;
    full[(t * CI + c) * CO + o] = w[(t * CIg + ci) * CO + o];
  }
  return tf.tidy(() => {
    let y: tf.Tensor = tf.add(tf.conv2d(x, tf.tensor4d(full, [K, K, CI, CO]), S, P === 0 ? 'valid' : P), tf.tensor1d(bias));
    if (residual) y = tf.add(y, residual);
    return relu ? tf.relu(y) : y;
  });
}

describe('sparse conv kernel (wasm) vs tf.conv2d', () => {
  before(async () => {
    await useBackend('wasm');
    // the kernel's worker threads (one per wasm thread), as prepareSparseInference starts them
    const pool = await startNativeWorkers(tf.backend() as never, getThreadsCount());
    assert.equal(pool.threads, getThreadsCount());
  });

  // [N, H, W, CI, CO, K, S, P, groups]
  const shapes: Array<[number, number, number, number, number, number, number, number, number]> = [
    [1, 7, 9, 5, 7, 3, 1, 1, 1],
    [2, 8, 8, 16, 12, 1, 1, 0, 1],
    [3, 9, 7, 6, 10, 1, 2, 0, 1],
    [1, 11, 13, 3, 9, 7, 2, 3, 1],
    [2, 10, 10, 13, 17, 3, 2, 1, 1],
    [1, 6, 6, 8, 12, 3, 1, 1, 4],
    [2, 5, 7, 6, 6, 3, 1, 1, 6],
    [1, 4, 4, 20, 33, 3, 1, 2, 1],
    [2, 3, 3, 4, 8, 3, 2, 0, 2],
  ];
  for (const [N, H, W, CI, CO, K, S, P, groups] of shapes) {
    for (const density of [0, 0.1, 0.5, 1]) {
      test(`N${N} ${H}x${W} ${CI}→${CO} k${K} s${S} p${P} g${groups} density ${density}`, () => {
        const n = K * K * (CI / groups) * CO;
        const w = randn(n).map((v) => (rng.uniform() < density ? v : 0));
        const bias = randn(CO);
        const x = tf.tensor4d(randn(N * H * W * CI), [N, H, W, CI]);
        const csr = packCsr(w, K, K, CI, CO, groups);
        const rowptr = tf.tensor1d(csr.rowptr, 'int32'), nz = tf.tensor1d(csr.nz, 'int32'), b = tf.tensor1d(bias);
        const OH = Math.floor((H + 2 * P - K) / S) + 1, OW = Math.floor((W + 2 * P - K) / S) + 1;
        const res = tf.tensor4d(randn(N * OH * OW * CO), [N, OH, OW, CO]);
        const before = tf.memory().numTensors;
        for (const [relu, residual] of [[false, undefined], [true, undefined], [true, res], [false, res]] as const) {
          const inputs: tf.NamedTensorMap = { x, rowptr, nz, bias: b };
          if (residual) inputs.residual = residual;
          const got = tf.engine().runKernel(SparseConv2D, inputs, { kernelSize: K, stride: S, padding: P, outChannels: CO, relu } as never) as tf.Tensor;
          const want = reference(x, w, K, CI, CO, groups, S, P, bias, relu, residual);
          assert.deepEqual(got.shape, want.shape);
          const e = relErr(got.dataSync(), want.dataSync());
          assert.ok(e <= 1e-5, `relu ${relu} residual ${residual != null}: relative error ${e}`);
          tf.dispose([got, want]);
        }
        assert.equal(tf.memory().numTensors, before);
        tf.dispose([x, rowptr, nz, b, res]);
      });
    }
  }
});

/** Random BN statistics and affine parameters, so folding is exercised. */
function randomizeBatchNorms(m: Model): void {
  for (const [, mod] of m.namedModules()) {
    if (!(mod instanceof BatchNormBase)) continue;
    const C = mod.numFeatures;
    mod.runningMean.assign(tf.tensor1d(randn(C).map((v) => 0.1 * v)));
    mod.runningVar.assign(tf.tensor1d(Float32Array.from({ length: C }, () => 0.5 + rng.uniform())));
    mod.weight?.assign(tf.tensor1d(Float32Array.from({ length: C }, () => 0.5 + rng.uniform())));
    mod.bias?.assign(tf.tensor1d(randn(C).map((v) => 0.1 * v)));
  }
}

describe('prepared models: logits equal the plain eval forward', () => {
  before(() => useBackend('wasm'));

  const cases: Array<[string, number, number, number]> = [
    // arch, image size, batch, sparsity
    ['ResNet18', 32, 2, 0.9],
    ['ResNet18', 32, 1, 0.5],
    ['ResNet50', 32, 2, 0.95],
    ['ResNet50', 40, 1, 0.8],
    ['MobileNetV1', 32, 2, 0.9],
    ['MobileNetV1', 32, 1, 0],
  ];
  for (const [arch, size, batch, sparsity] of cases) {
    test(`${arch} ${size}px batch ${batch}, ${sparsity * 100}% sparse`, async () => {
      const m = createModel(arch, { convType: 'DNWConv', pruneRate: sparsity, widthMult: arch === 'ResNet50' ? 0.5 : 1, numClasses: 10, seed: 7 });
      for (const [, c] of m.convLayers()) if (c instanceof TopKConv) c.setPruneRate(sparsity);
      randomizeBatchNorms(m);
      m.eval();
      const x = tf.tensor4d(randn(batch * size * size * 3), [batch, size, size, 3]);
      const want = tf.tidy(() => m.forward(x));
      const before = tf.memory().numTensors;
      for (const mode of ['auto', 'sparse', 'dense'] as const) {
        const p = await prepareSparseInference(m, { mode });
        const sparseLayers = p.layers.filter((l) => l.kind === 'sparse').length;
        if (mode === 'sparse') assert.ok(sparseLayers > 0);
        if (mode === 'dense') assert.equal(sparseLayers, 0);
        const got = tf.tidy(() => m.forward(x));
        const e = relErr(got.dataSync(), want.dataSync());
        assert.ok(e <= 1e-4, `${mode}: logits relative error ${e}`);
        got.dispose();
        p.dispose();
        assert.equal(tf.memory().numTensors, before, `${mode}: tensors left behind`);
      }
      // disposed: the model computes as before
      const again = tf.tidy(() => m.forward(x));
      assert.deepEqual(again.dataSync(), want.dataSync());
      tf.dispose([again, want, x]);
      m.dispose();
    });
  }
});

describe('validation runs on the prepared model (wasm)', () => {
  before(() => useBackend('wasm'));

  test('validate(): same loss and accuracy as the plain forward, sparse kernels used, nothing left behind', async () => {
    const m = createModel('ResNet18', { convType: 'DNWConv', pruneRate: 0.9, numClasses: 10, seed: 3 });
    randomizeBatchNorms(m);
    m.eval();
    const batches = [0, 1].map(() => ({ size: 3, images: tf.tensor4d(randn(3 * 32 * 32 * 3), [3, 32, 32, 3]), labels: tf.tensor1d([1, 4, 7], 'int32') }));
    const criterion = makeCriterion(0.1);
    const want = batches.map((b) => tf.tidy(() => criterion(m.forward(b.images) as tf.Tensor2D, b.labels).dataSync()[0]));
    let sparseCalls = 0;
    const engine = tf.engine();
    const runKernel = engine.runKernel.bind(engine);
    engine.runKernel = ((name: string, ...rest: unknown[]) => {
      if (name === SparseConv2D) sparseCalls++;
      return (runKernel as (...a: unknown[]) => unknown)(name, ...rest);
    }) as typeof engine.runKernel;
    const before = tf.memory().numTensors;
    let r;
    try {
      const loader = {
        numBatches: batches.length,
        stats: { skipped: 0 },
        // the loader hands out fresh tensors that validate() disposes
        async *epoch() { for (const b of batches) yield { size: b.size, images: tf.clone(b.images), labels: tf.clone(b.labels) }; },
      };
      r = await validate(loader as never, { model: m, criterion, printFreq: 100, progress: 'none', log: () => {} });
    } finally {
      engine.runKernel = runKernel;
    }
    assert.ok(sparseCalls > 0, 'the sparse kernel ran');
    assert.ok(Math.abs(r.loss - (want[0] + want[1]) / 2) <= 1e-4 * Math.abs(r.loss), `loss ${r.loss} vs ${want}`);
    assert.equal(tf.memory().numTensors, before);
    for (const [, c] of m.convLayers()) assert.equal(c.fusedEval, undefined);
    tf.dispose(batches.flatMap((b) => [b.images, b.labels]));
    m.dispose();
  });
});
