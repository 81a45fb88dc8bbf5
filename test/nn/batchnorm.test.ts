import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../src/tf.js';
import { LearnedBatchNorm, NonAffineBatchNorm } from '../../src/nn/batchnorm.js';
import { stateDict } from '../../src/nn/state-dict.js';
import { useBackend, assertClose, assertNoLeak } from '../helpers/tf.js';

describe('BatchNorm (PyTorch semantics)', () => {
  before(() => useBackend('cpu'));

  // channel 0: [1, 2, 3, 6] → mean 3, biased var 3.5, unbiased 14/3; channel 1 constant 5
  const input = () => tf.tensor4d([1, 5, 2, 5, 3, 5, 6, 5], [2, 1, 2, 2]);

  test('train mode normalises with the biased variance and updates running stats (momentum 0.1, unbiased)', async () => {
    await assertNoLeak(() => {
      const bn = new LearnedBatchNorm(2);
      const x = input();
      const y = tf.tidy(() => bn.forward(x));
      const s = Math.sqrt(3.5 + 1e-5);
      assertClose(y.dataSync(), [-2 / s, 0, -1 / s, 0, 0, 0, 3 / s, 0], 1e-6);
      assertClose(bn.runningMean.dataSync(), [0.3, 0.5], 1e-7);
      assertClose(bn.runningVar.dataSync(), [0.9 + 0.1 * (14 / 3), 0.9], 1e-7);
      assert.equal(bn.numBatchesTracked.value, 1);
      tf.dispose([x, y]);
      bn.dispose();
    });
  });

  test('eval mode uses the running statistics, affine weight and bias', async () => {
    await assertNoLeak(() => {
      const bn = new LearnedBatchNorm(2);
      tf.tidy(() => {
        bn.runningMean.assign(tf.tensor1d([1, 2]));
        bn.runningVar.assign(tf.tensor1d([4, 9]));
        bn.weight!.assign(tf.tensor1d([2, 3]));
        bn.bias!.assign(tf.tensor1d([0.5, -1]));
      });
      bn.eval();
      const x = input();
      const y = tf.tidy(() => bn.forward(x));
      const f = (v: number, c: number) => (c === 0 ? ((v - 1) / Math.sqrt(4 + 1e-5)) * 2 + 0.5 : ((v - 2) / Math.sqrt(9 + 1e-5)) * 3 - 1);
      const xs = [1, 5, 2, 5, 3, 5, 6, 5];
      assertClose(y.dataSync(), xs.map((v, i) => f(v, i % 2)), 1e-6);
      assert.equal(bn.numBatchesTracked.value, 0, 'eval does not count batches');
      tf.dispose([x, y]);
      bn.dispose();
    });
  });

  test('state entries: weight, bias, running_mean, running_var, num_batches_tracked (0-dim int64)', () => {
    const bn = new LearnedBatchNorm(3);
    const sd = stateDict(bn, { prefix: '' });
    assert.deepEqual([...sd.keys()], ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']);
    const nbt = sd.get('num_batches_tracked')!;
    assert.equal(nbt.dtype, 'int64');
    assert.deepEqual(nbt.shape, []);
    const na = new NonAffineBatchNorm(3);
    assert.deepEqual([...stateDict(na, { prefix: '' }).keys()], ['running_mean', 'running_var', 'num_batches_tracked']);
    assert.equal([...na.namedParameters()].length, 0);
    bn.dispose();
    na.dispose();
  });

  test('BN parameters belong to the "bn" optimizer group', () => {
    const bn = new LearnedBatchNorm(3);
    assert.deepEqual([...bn.namedParameters()].map((p) => p.group), ['bn', 'bn']);
    bn.dispose();
  });
});
