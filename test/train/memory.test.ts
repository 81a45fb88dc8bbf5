/**
 * No tensor leaks (issue 3, item 5): `tf.memory().numTensors` is flat across training steps
 * (after the first, which creates the momentum buffers) and across epochs of train + validate,
 * and a whole runTraining call — training, --evaluate with --resume, --summary, an error — ends
 * with exactly the tensors it started with.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '../../src/tf.js';
import { createDatasets } from '../../src/data/datasets.js';
import { createModel } from '../../src/models/registry.js';
import type { ConvTypeName } from '../../src/nn/conv/index.js';
import { GMPConv } from '../../src/nn/conv/gmp.js';
import { Optimizer } from '../../src/train/optimizer.js';
import { makeCriterion } from '../../src/train/loss.js';
import { trainOneEpoch, validate, type LoopContext } from '../../src/train/loop.js';
import { isUserError } from '../../src/util/errors.js';
import { useBackend } from '../helpers/tf.js';
import { runInProcess, tinyConfig, tinyDataset, tmpDir, writeYaml } from '../helpers/run.js';

describe('tensor memory (wasm)', () => {
  let root: string;
  let data: string;
  let logDir: string;

  before(async () => {
    root = tmpDir('memory');
    data = await tinyDataset(root);
    logDir = path.join(root, 'runs');
    writeYaml(path.join(root, 'str.yaml'), tinyConfig(data, { name: 'STR', conv_type: 'STRConv', sInit_value: -4 }));
    writeYaml(path.join(root, 'gmp.yaml'), tinyConfig(data, { name: 'GMP', conv_type: 'GMPConv', prune_rate: 0.5, init_prune_epoch: 0, final_prune_epoch: 2, epochs: 3 }));
    await useBackend('wasm');
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  for (const [convType, optimizerName] of [['STRConv', 'sgd'], ['GMPConv', 'sgd'], ['DNWConv', 'adam']] as Array<[ConvTypeName, 'sgd' | 'adam']>) {
    test(`${convType} + ${optimizerName}: flat across steps and epochs of trainOneEpoch + validate`, async () => {
      const start = tf.memory().numTensors;
      const ds = await createDatasets({ data, set: 'ImageFolder', batchSize: 8, workers: 1, seed: 0, imageSize: 16, valResize: 18, strictData: true, log: () => {} });
      const model = createModel('ResNet18', { numClasses: 4, convType, widthMult: 0.125, stem: 'small', sInitValue: -4, pruneRate: 0.5, seed: 0 });
      const optimizer = new Optimizer(model, { optimizer: optimizerName, lr: 0.05, momentum: 0.9, nesterov: false, weightDecay: 5e-4, noBnDecay: false });
      const perStep: number[] = [];
      const scalars: string[] = [];
      const ctx: LoopContext = {
        model,
        criterion: makeCriterion(0.1),
        printFreq: 1,
        progress: 'none',
        log: () => {},
        writer: { addScalar: (tag) => void scalars.push(tag) },
        afterStep: () => void perStep.push(tf.memory().numTensors),
      };
      const perEpoch: number[] = [];
      const bytes: number[] = [];
      try {
        for (let epoch = 0; epoch < 3; epoch++) {
          // GMP's rate changes between epochs (its cached mask must not pile up)
          for (const [, c] of model.convLayers()) if (c instanceof GMPConv) c.setCurrPruneRate(0.2 * epoch);
          const tr = await trainOneEpoch(ds.train, optimizer, epoch, ctx);
          const va = await validate(ds.val, ctx, epoch);
          assert.equal(tr.images, 32);
          assert.equal(va.images, 16);
          perEpoch.push(tf.memory().numTensors);
          bytes.push(tf.memory().numBytes);
        }
        assert.equal(perStep.length, 12, '4 steps × 3 epochs');
        assert.ok(perStep[0] > start, 'the first step creates the optimizer buffers');
        assert.deepEqual(perStep.slice(1), perStep.slice(1).map(() => perStep[1]), `numTensors after each step: ${perStep.join(' ')}`);
        assert.deepEqual(perEpoch, [perEpoch[0], perEpoch[0], perEpoch[0]], `numTensors after each epoch: ${perEpoch.join(' ')}`);
        assert.deepEqual(bytes, [bytes[0], bytes[0], bytes[0]], 'numBytes after each epoch');
        assert.ok(scalars.includes('train/Loss_val') && scalars.includes('test/Acc@1_avg'), 'the logging path ran');
      } finally {
        optimizer.dispose();
        model.dispose();
        await ds.train.close();
        await ds.val.close();
      }
      assert.equal(tf.memory().numTensors, start, 'everything released');
    });
  }

  test('runTraining leaves exactly the tensors it found: train, evaluate + resume, summary, errors', async () => {
    const cases: Array<[string, string[]]> = [
      ['STR training', ['--config', 'str.yaml', '--log-dir', logDir]],
      ['GMP training', ['--config', 'gmp.yaml', '--log-dir', logDir]],
      ['--summary', ['--config', 'str.yaml', '--summary']],
    ];
    const runDirs: string[] = [];
    for (const [what, argv] of cases) {
      const before = tf.memory().numTensors;
      const r = await runInProcess(argv, root);
      if (r.result.runDir) runDirs.push(r.result.runDir);
      assert.equal(tf.memory().numTensors, before, `${what}: numTensors before = after`);
    }
    // resume restores momentum buffers: --evaluate must release them too
    for (const [what, extra] of [
      ['--evaluate --resume', ['--evaluate']],
      ['--resume of a finished run (no epoch left)', []],
    ] as Array<[string, string[]]>) {
      const before = tf.memory().numTensors;
      await runInProcess(['--config', 'str.yaml', '--log-dir', logDir, '--resume', path.join(runDirs[0], 'checkpoints', 'last.safetensors'), ...extra], root);
      assert.equal(tf.memory().numTensors, before, `${what}: numTensors before = after`);
    }
    const before = tf.memory().numTensors;
    await assert.rejects(
      runInProcess(['--config', 'str.yaml', '--log-dir', logDir, '--resume', path.join(root, 'missing.safetensors')], root),
      (e) => isUserError(e) && /missing\.safetensors: no such file/.test(e.message),
    );
    // fails after the optimizer exists: a GMP checkpoint has no STR thresholds
    await assert.rejects(
      runInProcess(['--config', 'str.yaml', '--log-dir', logDir, '--resume', path.join(runDirs[1], 'checkpoints', 'last.safetensors')], root),
      (e) => isUserError(e) && /does not match the model/.test(e.message),
    );
    assert.equal(tf.memory().numTensors, before, 'errors: numTensors before = after');
  });
});
