// Every kernel the model zoo trains with, forward and gradient, on the webgpu backend (Dawn's
// software adapter in CI) against tfjs' cpu backend, with the geometries of ResNet and
// MobileNetV1. Tolerance: max |webgpu − cpu| / max |cpu| ≤ 1e-5 per output (float32 sums in
// another order), and exact equality where the maths is exact (masks, STR's zero threshold).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../src/tf.js';
import { initBackend, releaseBackend } from '../../src/backend/select.js';
import { createConv, type ConvTypeName } from '../../src/nn/conv/index.js';
import { STRConv, softThresholdWeight, strSigmoid } from '../../src/nn/conv/str.js';
import { TopKConv } from '../../src/nn/conv/masked.js';
import { createBatchNorm } from '../../src/nn/batchnorm.js';
import { GlobalAvgPool, MaxPool2d } from '../../src/nn/layers.js';
import { crossEntropy } from '../../src/train/loss.js';
import { pruneMaskDevice, pruneMaskHost } from '../../src/sparsity/topk-mask.js';
import { makeRng } from '../../src/util/rng.js';
import { relErr } from '../helpers/tf.js';
import { webgpuSkipReason } from '../helpers/webgpu.js';

const skip = await webgpuSkipReason();
const TOL = 1e-5;
after(() => releaseBackend());

type Outputs = Record<string, Float32Array>;

function randn(n: number, seed: string, scale = 1): Float32Array {
  const rng = makeRng(seed);
  return Float32Array.from({ length: n }, () => scale * rng.normal());
}
function variable(t: tf.Tensor): tf.Variable {
  const v = tf.variable(t);
  t.dispose();
  return v;
}

/** Reads every tensor (asynchronously: webgpu has no synchronous read in Node) and disposes it. */
async function read(ts: Record<string, tf.Tensor>): Promise<Outputs> {
  const out: Outputs = {};
  for (const [k, t] of Object.entries(ts)) out[k] = Float32Array.from(await t.data());
  tf.dispose(Object.values(ts));
  return out;
}

/**
 * y = forward(), and the gradients of Σ y·r (r a fixed pseudo-random weighting, so no gradient
 * is trivially uniform) with respect to `vars`.
 */
async function forwardAndGrads(forward: () => tf.Tensor, vars: Record<string, tf.Variable>): Promise<Outputs> {
  const y = tf.tidy(forward);
  const r = tf.tensor(randn(y.size, 'weighting'), y.shape);
  const names = Object.keys(vars);
  const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(forward(), r)) as tf.Scalar, names.map((n) => vars[n]));
  // (not the loss: Σ y·r cancels, so its relative error says little; y and the gradients do)
  const out: Record<string, tf.Tensor> = { y };
  value.dispose();
  for (const n of names) out[`d${n}`] = grads[vars[n].name];
  r.dispose();
  return read(out);
}

async function compare(run: () => Promise<Outputs>, tol = TOL, exact: string[] = []): Promise<void> {
  await initBackend('cpu', () => {});
  const before = tf.memory().numTensors;
  const want = await run();
  assert.equal(tf.memory().numTensors, before, 'cpu run leaked tensors');
  await initBackend('webgpu', () => {});
  const before2 = tf.memory().numTensors;
  const got = await run();
  assert.equal(tf.memory().numTensors, before2, 'webgpu run leaked tensors');
  for (const k of Object.keys(want)) {
    assert.ok(want[k].some((v) => v !== 0), `${k}: all zero on cpu (the comparison would prove nothing)`);
    if (exact.includes(k)) assert.deepEqual(got[k], want[k], `${k} differs`);
    else {
      const e = relErr(got[k], want[k]);
      assert.ok(e <= tol, `${k}: relative error ${e} > ${tol}`);
    }
  }
}

interface ConvCase { k: number; s: number; p: number; cin: number; cout: number; hw: number; depthwise?: boolean; what: string }
const CONVS: ConvCase[] = [
  { what: 'ResNet stem 7x7/s2 p3', k: 7, s: 2, p: 3, cin: 3, cout: 8, hw: 16 },
  { what: '3x3/s1 p1', k: 3, s: 1, p: 1, cin: 8, cout: 8, hw: 8 },
  { what: '3x3/s2 p1', k: 3, s: 2, p: 1, cin: 8, cout: 16, hw: 8 },
  { what: '1x1/s1 (bottleneck, MobileNet pointwise)', k: 1, s: 1, p: 0, cin: 8, cout: 16, hw: 6 },
  { what: '1x1/s2 (downsample shortcut)', k: 1, s: 2, p: 0, cin: 8, cout: 16, hw: 7 },
  { what: '1x1 on 1x1 maps (the classifier: a matmul)', k: 1, s: 1, p: 0, cin: 16, cout: 10, hw: 1 },
  { what: 'depthwise 3x3/s1 p1', k: 3, s: 1, p: 1, cin: 8, cout: 8, hw: 8, depthwise: true },
  { what: 'depthwise 3x3/s2 p1', k: 3, s: 2, p: 1, cin: 8, cout: 8, hw: 9, depthwise: true },
];

for (const c of CONVS) {
  test(`conv ${c.what}: output, input gradient and weight gradient match cpu`, { skip }, async () => {
    await compare(async () => {
      const conv = createConv('DenseConv', { inChannels: c.cin, outChannels: c.cout, kernelSize: c.k, stride: c.s, padding: c.p, groups: c.depthwise ? c.cin : 1, seed: c.what });
      const x = variable(tf.tensor(randn(2 * c.hw * c.hw * c.cin, `x ${c.what}`), [2, c.hw, c.hw, c.cin]));
      const out = await forwardAndGrads(() => conv.forward(x), { x, w: conv.weight });
      conv.dispose();
      x.dispose();
      return out;
    });
  });
}

// Weights on a coarse grid so that many magnitudes tie: the masks must break ties exactly like
// the host selection (smallest |W| first, ties by ascending PyTorch OIHW index; README quirk 17).
function tiedWeights(n: number, seed: string): Float32Array {
  const rng = makeRng(seed);
  return Float32Array.from({ length: n }, () => (Math.floor(rng.uniform() * 9) - 4) / 8);
}

for (const type of ['STRConv', 'DNWConv', 'GMPConv'] as ConvTypeName[]) {
  for (const depthwise of [false, true]) {
    test(`${type}${depthwise ? ' depthwise' : ''}: effective weight, output and gradients match cpu (masks exactly)`, { skip }, async () => {
      await compare(async () => {
        const cin = 8;
        const cout = depthwise ? 8 : 12;
        const n = 3 * 3 * cin * (depthwise ? 1 : cout);
        const conv = createConv(type, { inChannels: cin, outChannels: cout, kernelSize: 3, stride: 1, padding: 1, groups: depthwise ? cin : 1, init: tiedWeights(n, type) }, { sInitValue: -2.5, pruneRate: 0.55 });
        if (conv instanceof TopKConv && type === 'GMPConv') (conv as unknown as { setCurrPruneRate(r: number): void }).setCurrPruneRate(0.55);
        const x = variable(tf.tensor(randn(2 * 6 * 6 * cin, `x ${type}`), [2, 6, 6, cin]));
        const vars: Record<string, tf.Variable> = { x, w: conv.weight };
        if (conv instanceof STRConv) vars.s = conv.sparseThreshold;
        const out = await forwardAndGrads(() => conv.forward(x), vars);
        const weff = await read({ weff: conv.effectiveWeight() });
        out.weffZero = weff.weff.map((v) => (v === 0 ? 1 : 0));
        out.weff = weff.weff;
        conv.dispose();
        x.dispose();
        return out;
      }, TOL, ['weffZero']);
    });
  }
}

test('device top-k masks equal the host selection, ties included, for every prune count', { skip }, async () => {
  await initBackend('webgpu', () => {});
  const conv = createConv('DNWConv', { inChannels: 4, outChannels: 6, kernelSize: 3, init: tiedWeights(216, 'masks') });
  const host = await conv.weight.data() as Float32Array;
  for (const k of [1, 7, 50, 108, 200, 215, 216]) {
    const m = pruneMaskDevice(conv.weight, k, (t) => conv.toTorchOrder(t), (t) => conv.fromTorchOrder(t));
    const got = Float32Array.from(await m.data());
    m.dispose();
    assert.deepEqual(got, pruneMaskHost(host, k, conv.torchIndex()), `k = ${k}`);
  }
  conv.dispose();
});

test('STR soft threshold: s = −3200 gives exactly Ŵ = W and ∂L/∂s = 0; s near the float32 limit too; s = −1 matches cpu', { skip }, async () => {
  for (const sv of [-3200, -88.75, -88.7, -1]) {
    await compare(async () => {
      const w = variable(tf.tensor(randn(3 * 3 * 4 * 5, 'str w', 0.5), [3, 3, 4, 5]));
      const s = variable(tf.tensor([[sv]]));
      const out = await forwardAndGrads(() => softThresholdWeight(w, s), { w, s });
      const tau = await read({ tau: strSigmoid(s) });
      if (sv <= -88.75) {
        assert.equal(tau.tau[0], 0, `σ(${sv}) must be exactly 0`);
        assert.equal(out.ds[0], 0, `∂L/∂s at s = ${sv} must be exactly 0`);
        assert.deepEqual(out.y, Float32Array.from(await w.data()));
        delete out.ds; // all zero: the generic non-zero check does not apply
      } else out.tau = tau.tau;
      tf.dispose([w, s]);
      return out;
    }, TOL, sv <= -88.75 ? ['y', 'dw'] : []);
  }
});

for (const [type, relu, residual] of [['LearnedBatchNorm', true, true], ['LearnedBatchNorm', false, false], ['NonAffineBatchNorm', true, false]] as const) {
  test(`${type} train mode${relu ? ' + ReLU' : ''}${residual ? ' + residual' : ''}: output, gradients and running statistics match cpu; eval mode too`, { skip }, async () => {
    await compare(async () => {
      const bn = createBatchNorm(type, 6);
      const x = variable(tf.tensor(randn(3 * 5 * 5 * 6, `bn ${type}`, 2), [3, 5, 5, 6]));
      const res = variable(tf.tensor(randn(3 * 5 * 5 * 6, 'res'), [3, 5, 5, 6]));
      const vars: Record<string, tf.Variable> = { x };
      if (residual) vars.res = res;
      if (bn.weight) Object.assign(vars, { gamma: bn.weight, beta: bn.bias! });
      const out = await forwardAndGrads(() => (relu ? bn.forwardRelu(x, residual ? res : undefined) : bn.forward(x)), vars);
      Object.assign(out, await read({ runningMean: tf.clone(bn.runningMean), runningVar: tf.clone(bn.runningVar) }));
      bn.eval();
      Object.assign(out, await read({ evalY: bn.forwardRelu(x, res) }));
      bn.dispose();
      tf.dispose([x, res]);
      return out;
    });
  });
}

test('max-pool 3x3/s2 p1, global average pool, matmul: outputs and gradients match cpu', { skip }, async () => {
  await compare(async () => {
    const x = variable(tf.tensor(randn(2 * 9 * 9 * 5, 'pool'), [2, 9, 9, 5]));
    const pool = await forwardAndGrads(() => new MaxPool2d(3, 2, 1).forward(x), { x });
    const gap = await forwardAndGrads(() => new GlobalAvgPool().forward(x), { x });
    const a = variable(tf.tensor(randn(4 * 16, 'a'), [4, 16]));
    const b = variable(tf.tensor(randn(16 * 10, 'b'), [16, 10]));
    const mm = await forwardAndGrads(() => tf.matMul(a, b), { a, b });
    tf.dispose([x, a, b]);
    const prefix = (p: string, o: Outputs) => Object.fromEntries(Object.entries(o).map(([k, v]) => [`${p}.${k}`, v]));
    return { ...prefix('maxpool', pool), ...prefix('gap', gap), ...prefix('matmul', mm) };
  });
});

test('softmax cross-entropy with label smoothing 0.1 (and without): loss and logit gradient match cpu', { skip }, async () => {
  await compare(async () => {
    const logits = variable(tf.tensor(randn(8 * 10, 'logits', 3), [8, 10]));
    const labels = tf.tensor1d([0, 3, 9, 1, 1, 5, 7, 2], 'float32');
    const out: Outputs = {};
    for (const eps of [0.1, 0]) {
      const { value, grads } = tf.variableGrads(() => crossEntropy(logits as unknown as tf.Tensor2D, labels, eps), [logits]);
      Object.assign(out, await read({ [`loss${eps}`]: value, [`dlogits${eps}`]: grads[logits.name] }));
    }
    tf.dispose([logits, labels]);
    return out;
  });
});
