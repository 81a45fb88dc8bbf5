import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../src/tf.js';
import { DenseConv } from '../../src/nn/conv/dense.js';
import { createModel } from '../../src/models/registry.js';
import { loadStateDict, stateDict } from '../../src/nn/state-dict.js';
import type { StateDict } from '../../src/io/host-tensor.js';
import { useBackend, assertNoLeak } from '../helpers/tf.js';

const small = (seed: number, extra = {}) =>
  createModel('ResNet18', { convType: 'STRConv', widthMult: 0.125, stem: 'small', numClasses: 10, sInitValue: -2, seed, ...extra });

describe('state_dict: PyTorch names, order and layouts', () => {
  before(() => useBackend('cpu'));

  test('conv weights are OIHW at the boundary: torch[o,i,h,w] = internal[h,w,i,o]', () => {
    const c = new DenseConv({ inChannels: 2, outChannels: 3, kernelSize: 3 });
    const n = 3 * 3 * 2 * 3;
    tf.tidy(() => c.weight.assign(tf.range(0, n).reshape([3, 3, 2, 3])));
    const t = stateDict(c, { prefix: '' }).get('weight')!;
    assert.deepEqual(t.shape, [3, 2, 3, 3]);
    const at = (o: number, i: number, h: number, w: number) => t.data[((o * 2 + i) * 3 + h) * 3 + w];
    for (const [o, i, h, w] of [[0, 0, 0, 0], [2, 1, 0, 2], [1, 0, 2, 1]]) assert.equal(at(o, i, h, w), ((h * 3 + w) * 2 + i) * 3 + o);
    c.dispose();
  });

  test('depthwise weights are [C, 1, kh, kw] at the boundary', () => {
    const c = new DenseConv({ inChannels: 4, outChannels: 4, kernelSize: 3, groups: 4 });
    tf.tidy(() => c.weight.assign(tf.range(0, 36).reshape([3, 3, 4, 1])));
    const t = stateDict(c, { prefix: '' }).get('weight')!;
    assert.deepEqual(t.shape, [4, 1, 3, 3]);
    assert.equal(t.data[(2 * 3 + 1) * 3 + 2], (1 * 3 + 2) * 4 + 2); // [c=2,0,h=1,w=2]
    c.dispose();
  });

  test('round trip into a differently-initialised model gives identical state and outputs', async () => {
    await assertNoLeak(() => {
      const a = small(1);
      tf.tidy(() => {
        a.forward(tf.randomNormal([4, 16, 16, 3])); // moves the BN running statistics
      });
      const sd = stateDict(a);
      assert.ok([...sd.keys()].every((k) => k.startsWith('module.')));
      assert.equal(sd.get('module.bn1.num_batches_tracked')!.data[0], 1n);
      const b = small(2);
      const report = loadStateDict(b, sd);
      assert.equal(report.loaded.length, sd.size);
      const sd2 = stateDict(b);
      for (const [k, v] of sd) assert.deepEqual(sd2.get(k), v, k);
      a.eval();
      b.eval();
      const x = tf.randomNormal([2, 16, 16, 3], 0, 1, 'float32', 9);
      const [ya, yb] = tf.tidy(() => [a.forward(x), b.forward(x)]);
      assert.deepEqual(Array.from(ya.dataSync()), Array.from(yb.dataSync()));
      tf.dispose([x, ya, yb]);
      a.dispose();
      b.dispose();
    });
  });

  test('keys without the module. prefix load too', () => {
    const a = small(3);
    const b = small(4);
    const bare: StateDict = new Map([...stateDict(a)].map(([k, v]) => [k.slice('module.'.length), v]));
    loadStateDict(b, bare);
    assert.deepEqual(stateDict(b).get('module.fc.weight'), stateDict(a).get('module.fc.weight'));
    a.dispose();
    b.dispose();
  });

  test('mismatches: strict is a one-line error naming the first keys; non-strict loads the rest', () => {
    const a = small(5);
    const wider = small(6, { widthMult: 0.25 });
    assert.throws(() => loadStateDict(wider, stateDict(a), { source: 'x.pth' }), (e: Error) => {
      assert.match(e.message, /^x\.pth does not match the model \(shape mismatch: conv1\.weight: file \[8, 3, 3, 3\] vs model \[16, 3, 3, 3\]/);
      assert.ok(!e.message.includes('\n'));
      return e.name === 'UserError';
    });
    const dense = createModel('ResNet18', { widthMult: 0.125, stem: 'small', numClasses: 10 });
    const r = loadStateDict(dense, stateDict(a), { strict: false });
    assert.equal(r.unexpected.length, 21, 'the 21 sparseThresholds');
    assert.equal(r.missing.length, 0);
    a.dispose();
    wider.dispose();
    dense.dispose();
  });
});
