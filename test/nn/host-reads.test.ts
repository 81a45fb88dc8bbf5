// The asynchronous read-backs that runs use (webgpu has no synchronous read in Node) return
// exactly what the synchronous ones return, and STR's host-side soft threshold equals the
// device ops bit for bit (cpu backend: sigmoid in float64 rounded to float32).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../src/tf.js';
import { createModel } from '../../src/models/registry.js';
import { GMPConv } from '../../src/nn/conv/index.js';
import { stateDict, stateDictAsync } from '../../src/nn/state-dict.js';
import { layerStats, layerStatsAsync } from '../../src/sparsity/stats.js';
import { modelSummary, modelSummaryAsync } from '../../src/sparsity/summary.js';
import { denseCompatibleStateDict, denseCompatibleStateDictAsync, softThreshold, softThresholdOnHost } from '../../src/sparsity/transfer.js';
import { SIGMOID_ZERO_AT_OR_BELOW } from '../../src/nn/conv/str.js';
import { makeRng } from '../../src/util/rng.js';
import { useBackend } from '../helpers/tf.js';

test('softThresholdOnHost equals the device ops on the cpu backend, bit for bit, around τ and at the float32 limit', async () => {
  await useBackend('cpu');
  const rng = makeRng('host-threshold');
  for (const s of [-3200, SIGMOID_ZERO_AT_OR_BELOW, Math.fround(SIGMOID_ZERO_AT_OR_BELOW + 1e-5), -20, -3, -1, 0.5]) {
    const tau = s <= SIGMOID_ZERO_AT_OR_BELOW ? 0 : Math.fround(1 / (1 + Math.exp(-s)));
    // random weights, and weights one float32 step either side of ±τ
    const near = tau > 0 ? [tau, -tau, tau * (1 + 2 ** -23), tau * (1 - 2 ** -24), -tau * (1 + 2 ** -23)] : [0, -0, 1e-45];
    const w = Float32Array.from([...Array.from({ length: 200 }, () => rng.normal() * 0.1), ...near]);
    const hw = { dtype: 'float32' as const, shape: [w.length], data: w };
    const hs = { dtype: 'float32' as const, shape: [1, 1], data: Float32Array.of(s) };
    const host = softThresholdOnHost(hw, hs);
    const device = softThreshold(hw, hs);
    assert.deepEqual(host.shape, device.shape);
    assert.deepEqual(Array.from(host.data as Float32Array, (v) => v + 0), Array.from(device.data as Float32Array, (v) => v + 0), `s = ${s}`);
  }
});

test('layerStatsAsync, modelSummaryAsync, stateDictAsync and denseCompatibleStateDictAsync equal their synchronous versions', async () => {
  for (const backend of ['cpu', 'wasm'] as const) {
    await useBackend(backend);
    for (const convType of ['STRConv', 'GMPConv'] as const) {
      const model = createModel('ResNet18', { convType, stem: 'small', widthMult: 0.125, numClasses: 10, sInitValue: -3, pruneRate: 0.4, seed: 3 });
      for (const [, c] of model.convLayers()) if (c instanceof GMPConv) c.setCurrPruneRate(0.3);
      const before = tf.memory().numTensors;
      assert.deepEqual(await layerStatsAsync(model), layerStats(model));
      assert.ok(layerStats(model).some((s) => s.zeros > 0 && s.threshold > 0), 'nothing pruned: the comparison would prove little');
      assert.deepEqual(await modelSummaryAsync(model, 16), modelSummary(model, 16));
      assert.deepEqual(await stateDictAsync(model), stateDict(model));
      assert.deepEqual(await denseCompatibleStateDictAsync(model), denseCompatibleStateDict(model));
      assert.equal(tf.memory().numTensors, before, 'tensor leak');
      model.dispose();
    }
  }
});
