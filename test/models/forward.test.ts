import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../src/tf.js';
import { createModel, listModels } from '../../src/models/registry.js';
import { useBackend } from '../helpers/tf.js';

describe('forward pass of every architecture (wasm)', () => {
  before(() => useBackend('wasm'));

  for (const arch of listModels()) {
    test(`${arch}: 224×224 and small stem 32×32, train and eval, no tensor leak`, () => {
      const before = tf.memory().numTensors;
      for (const [stem, size, batch] of [['imagenet', 224, 1], ['small', 32, 2]] as const) {
        const m = createModel(arch, { convType: 'STRConv', sInitValue: -5, stem, numClasses: 10, seed: 1, widthMult: stem === 'small' ? 0.25 : 1 });
        const x = tf.randomNormal([batch, size, size, 3], 0, 1, 'float32', 2);
        const yt = tf.tidy(() => m.train().forward(x));
        const ye = tf.tidy(() => m.eval().forward(x));
        const ye2 = tf.tidy(() => m.eval().forward(x));
        assert.deepEqual(yt.shape, [batch, 10]);
        assert.deepEqual(ye.shape, [batch, 10]);
        assert.ok(Array.from(ye.dataSync()).every(Number.isFinite));
        assert.deepEqual(Array.from(ye.dataSync()), Array.from(ye2.dataSync()), 'eval is deterministic');
        assert.notDeepEqual(Array.from(yt.dataSync()), Array.from(ye.dataSync()), 'train mode uses batch statistics');
        tf.dispose([x, yt, ye, ye2]);
        m.dispose();
      }
      assert.equal(tf.memory().numTensors, before);
    });
  }
});
