import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../src/tf.js';
import { crossEntropy } from '../../src/train/loss.js';
import { topkCorrect, AverageMeter } from '../../src/train/metrics.js';
import { Optimizer, type OptimizerOptions } from '../../src/train/optimizer.js';
import { Module, type ParamGroup } from '../../src/nn/module.js';
import { createModel } from '../../src/models/registry.js';
import { useBackend, assertClose, assertNoLeak } from '../helpers/tf.js';

class OneParam extends Module {
  readonly p: tf.Variable;
  constructor(v: number, group: ParamGroup = 'rest') {
    super();
    this.p = this.registerParameter('p', tf.scalar(v), 'plain', group);
  }
  forward(x: tf.Tensor) {
    return x;
  }
  inferShape(s: [number, number, number]): [number, number, number] {
    return s;
  }
}

const SGD: OptimizerOptions = { optimizer: 'sgd', lr: 0.1, momentum: 0.875, nesterov: false, weightDecay: 0.01, noBnDecay: false };

function run(o: OptimizerOptions, steps: number) {
  const m = new OneParam(1);
  const opt = new Optimizer(m, o);
  const ws: number[] = [];
  const bufs: number[] = [];
  for (let i = 0; i < steps; i++) {
    const g = tf.scalar(0.5);
    opt.step({ [m.p.name]: g });
    g.dispose();
    ws.push(m.p.dataSync()[0]);
    bufs.push(opt.slots[0].buf!.dataSync()[0]);
  }
  opt.dispose();
  m.dispose();
  return { ws, bufs };
}

describe('loss and metrics', () => {
  before(() => useBackend('cpu'));

  test('§17.7 label smoothing 0.1: single sample, batch of two, uniform logits', () => {
    const one = tf.tidy(() => crossEntropy(tf.tensor2d([[2.0, 1.0, 0.1]]), tf.tensor1d([0], 'int32'), 0.1).dataSync()[0]);
    assertClose([one], [0.51369668], 1e-6);
    const plain = tf.tidy(() => crossEntropy(tf.tensor2d([[2.0, 1.0, 0.1]]), tf.tensor1d([0], 'int32')).dataSync()[0]);
    assertClose([plain], [0.41703002], 1e-6);
    const two = tf.tidy(() => crossEntropy(tf.tensor2d([[2.0, 1.0, 0.1], [0.5, 2.5, -1.0]]), tf.tensor1d([0, 2], 'int32'), 0.1).dataSync()[0]);
    assertClose([two], [2.00010411], 1e-6);
    const uni = tf.tidy(() => crossEntropy(tf.zeros([3, 4]) as tf.Tensor2D, tf.tensor1d([0, 3, 1], 'int32'), 0.1).dataSync()[0]);
    assertClose([uni], [Math.log(4)], 1e-6);
  });

  test('top-1 / top-5 counts and the weighted meter', async () => {
    await assertNoLeak(() => {
      const logits = tf.tensor2d([
        [0, 1, 2, 3, 4, 5, 6],
        [6, 5, 4, 3, 2, 1, 0],
        [0, 0, 9, 0, 0, 0, 0],
      ]);
      const labels = tf.tensor1d([6, 6, 2], 'int32');
      const [c1, c5] = topkCorrect(logits, labels);
      assert.equal(c1.dataSync()[0], 2);
      assert.equal(c5.dataSync()[0], 2, 'row 1: label 6 has the smallest logit');
      tf.dispose([logits, labels, c1, c5]);
    });
    const m = new AverageMeter('Acc@1', (v) => v.toFixed(2));
    m.update(50, 2);
    m.update(100, 6);
    assert.equal(m.avg, 87.5);
    assert.equal(String(m), 'Acc@1 100.00 (87.50)');
  });
});

describe('SGD (STR-SPEC §6, §17.8)', () => {
  before(() => useBackend('cpu'));

  test('§17.8 plain momentum with coupled decay', () => {
    const { ws, bufs } = run(SGD, 3);
    assertClose(ws, [0.949, 0.853426, 0.718945324], 1e-6);
    assertClose(bufs, [0.51, 0.95574, 1.34480676], 1e-6);
  });

  test('§17.8 Nesterov', () => {
    const { ws, bufs } = run({ ...SGD, nesterov: true }, 3);
    assertClose(ws, [0.904375, 0.769882421875, 0.6015492146], 1e-6);
    assertClose(bufs, [0.51, 0.95529375, 1.34358085546875], 1e-6);
  });

  test('groups by module type: every BN (downsample and MobileNetV1 too) is in "bn" (quirk 14 fixed)', () => {
    const r = createModel('ResNet50', { convType: 'STRConv', sInitValue: -3200, widthMult: 0.125 });
    const g = new Optimizer(r, SGD).groups();
    assert.equal(g.bn.length, 106, '53 BN layers × (weight, bias)');
    assert.ok(g.bn.includes('layer1.0.downsample.1.weight'));
    assert.equal(g.threshold.length, 54);
    assert.equal(g.rest.length, 54);
    const mb = createModel('MobileNetV1', { convType: 'STRConv', sInitValue: -3200, widthMult: 0.125 });
    const gm = new Optimizer(mb, SGD).groups();
    assert.deepEqual([gm.bn.length, gm.threshold.length, gm.rest.length], [54, 28, 28]);
    r.dispose();
    mb.dispose();
  });

  test('--no-bn-decay and --st-decay set the group decays; thresholds move by decay alone', () => {
    const bn = new OneParam(1, 'bn');
    const th = new OneParam(-3200, 'threshold');
    const o1 = new Optimizer(bn, { ...SGD, momentum: 0, noBnDecay: true });
    const o2 = new Optimizer(th, { ...SGD, momentum: 0, stDecay: 1e-3 });
    assert.deepEqual(o1.decay, { bn: 0, threshold: 0.01, rest: 0.01 });
    const zero = tf.scalar(0);
    o1.step({ [bn.p.name]: zero });
    o2.step({ [th.p.name]: zero });
    assert.equal(bn.p.dataSync()[0], 1, 'no decay, no gradient: unchanged');
    assertClose(th.p.dataSync(), [-3200 * (1 - 0.1 * 1e-3)], 1e-7);
    zero.dispose();
    bn.dispose();
    th.dispose();
  });

  test('Adam applies weight decay too (quirk 15 fixed) and matches the closed form of its first step', () => {
    const m = new OneParam(1);
    const opt = new Optimizer(m, { ...SGD, optimizer: 'adam', lr: 0.001 });
    const g = tf.scalar(0);
    opt.step({ [m.p.name]: g }); // gradient 0: the update comes from decay alone: sign(d)·lr
    assertClose(m.p.dataSync(), [1 - 0.001], 1e-6);
    g.dispose();
    opt.dispose();
    m.dispose();
  });
});
