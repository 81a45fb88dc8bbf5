/**
 * Round trip (issue 5 acceptance): STR model → dense-compatible state dict (in memory and through
 * an exported .pth) → the same architecture with DenseConv → identical logits in eval mode, and
 * the same per-layer non-zeros and effective MACs. Bit-identical: both models run the same
 * convolution on the same float32 weights (Ŵ is computed once per forward in the STR model and
 * stored as the weight in the dense one; layout transposes are exact).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '../../src/tf.js';
import { useBackend } from '../helpers/tf.js';
import { denseCompatibleStateDict, loadPretrained } from '../../src/sparsity/transfer.js';
import { loadStateDict } from '../../src/nn/state-dict.js';
import { saveCheckpoint, readCheckpoint } from '../../src/train/checkpoint.js';
import { exportCheckpoint } from '../../src/cli/export.js';
import { modelSummary } from '../../src/sparsity/summary.js';
import { modelFromCheckpoint } from '../../src/report/checkpoint-model.js';
import { GMPConv } from '../../src/nn/conv/gmp.js';
import { buildModel, randomizeState, fixedInput, logitsOf, tmpDir, META, zerosOf } from './helpers.js';

const dir = tmpDir('roundtrip');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const CASES = [
  { arch: 'ResNet18', argv: ['--arch', 'ResNet18', '--width-mult', '0.125'], size: 32 },
  { arch: 'MobileNetV1', argv: ['--arch', 'MobileNetV1', '--width-mult', '0.125'], size: 32 },
  { arch: 'ResNet50', argv: ['--arch', 'ResNet50', '--width-mult', '0.0625', '--stem', 'small'], size: 16 },
];

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`STR → dense-compatible → DenseConv (${backend} backend)`, () => {
    before(async () => {
      await useBackend(backend);
    });

    for (const c of CASES) {
      test(`${c.arch}: bit-identical logits, same non-zeros and effective MACs`, async () => {
        const x = fixedInput(3, c.size, `rt-${c.arch}`);
        const { model: str, config } = buildModel([...c.argv, '--conv-type', 'STRConv', '--num-classes', '10', '--seed', '7']);
        randomizeState(str, `rt-${c.arch}`);
        const strLogits = logitsOf(str, x);
        const strSummary = modelSummary(str, c.size);
        assert.ok(strSummary.sparsity > 5, `the thresholds prune (${strSummary.sparsity} %)`);
        const before = tf.memory().numTensors;
        const sd = denseCompatibleStateDict(str);
        assert.equal(tf.memory().numTensors, before, 'no tensor leak');

        // in memory: strict load into the DenseConv model
        const { model: dense } = buildModel([...c.argv, '--conv-type', 'DenseConv', '--num-classes', '10']);
        loadStateDict(dense, sd);
        assert.deepEqual(logitsOf(dense, x), strLogits, 'logits bit-identical');
        const denseSummary = modelSummary(dense, c.size);
        assert.deepEqual(denseSummary.rows.map((r) => r.nonzeros), strSummary.rows.map((r) => r.nonzeros));
        assert.equal(denseSummary.effectiveMacs, strSummary.effectiveMacs);
        assert.equal(denseSummary.sparsity, strSummary.sparsity);
        dense.dispose();

        // through files: our checkpoint → export --dense (.pth) → --pretrained into DenseConv
        const ckpt = path.join(dir, `${c.arch}-${backend}.safetensors`);
        await saveCheckpoint(ckpt, { model: str, meta: { ...META, arch: c.arch }, config });
        str.dispose();
        const pth = path.join(dir, `${c.arch}-${backend}-dense.pth`);
        await exportCheckpoint({ checkpoint: ckpt, out: pth, dense: true, log: () => {} });
        const { model: dense2 } = buildModel([...c.argv, '--conv-type', 'DenseConv', '--num-classes', '10', '--seed', '99']);
        const r = loadPretrained(dense2, (await readCheckpoint(pth)).stateDict, pth);
        assert.equal(r.thresholded.length, 0);
        assert.deepEqual(logitsOf(dense2, x), strLogits, 'logits bit-identical after .pth');
        dense2.dispose();
      });
    }
  });
}

describe('DNW/GMP → dense-compatible (masks folded into the weights)', () => {
  before(async () => {
    await useBackend('cpu');
  });

  for (const conv of ['DNWConv', 'GMPConv'] as const) {
    test(`${conv}: export --dense zeroes ⌊rate·numel⌋ weights per layer and keeps the logits`, async () => {
      const argv = ['--arch', 'ResNet18', '--width-mult', '0.125', '--num-classes', '10'];
      const { model, config } = buildModel([...argv, '--conv-type', conv, '--prune-rate', '0.7', '--seed', '8']);
      randomizeState(model, conv);
      // GMP's current rate is metadata of our checkpoints (not a state_dict entry): mid-schedule here
      if (conv === 'GMPConv') for (const [, c] of model.convLayers()) (c as GMPConv).setCurrPruneRate(0.35);
      const rate = conv === 'GMPConv' ? 0.35 : 0.7;
      const x = fixedInput(2, 32, conv);
      const want = logitsOf(model, x);
      const ckpt = path.join(dir, `${conv}.safetensors`);
      await saveCheckpoint(ckpt, { model, meta: { ...META, arch: 'ResNet18' }, config });
      model.dispose();
      const out = path.join(dir, `${conv}_dense.safetensors`);
      const r = await exportCheckpoint({ checkpoint: ckpt, out, dense: true, log: () => {} });
      for (const [k, v] of r.stateDict) {
        if (v.shape.length !== 4) continue;
        assert.equal(zerosOf(v), Math.floor(rate * v.data.length), k);
      }
      const { model: dense, spec } = modelFromCheckpoint(await readCheckpoint(out));
      assert.equal(spec.options.convType, 'DenseConv');
      assert.deepEqual(logitsOf(dense, x), want);
      dense.dispose();

      // the same weights as a reference DNW/GMP .pth (no rates inside): --conv-type/--prune-rate say them
      const bare = path.join(dir, `${conv}_bare.pth`);
      await exportCheckpoint({ checkpoint: ckpt, out: bare, log: () => {} });
      const { model: again } = modelFromCheckpoint(await readCheckpoint(bare), { convType: conv, pruneRate: rate });
      assert.equal(again.options.convType, conv);
      assert.deepEqual(logitsOf(again, x), want);
      again.dispose();
    });
  }
});
