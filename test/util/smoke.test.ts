import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../src/tf.js';
import { UserError } from '../../src/util/errors.js';

test('tf loads with gradients registered', async () => {
  await tf.setBackend('cpu');
  const g = tf.grad((x: tf.Tensor) => tf.sum(tf.square(x)))(tf.tensor1d([1, 2]));
  assert.deepEqual(Array.from(g.dataSync()), [2, 4]);
  assert.ok(new UserError('x') instanceof Error);
});
