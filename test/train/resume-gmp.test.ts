/**
 * GMP resume keeps its pruning (quirk 16 fixed): the current prune rate travels in the
 * checkpoint, so a run killed after its pruning window and resumed from `last` stays exactly as
 * sparse as it was, instead of the reference's dense model.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { modelOptionsOfConfig } from '../../src/config/model-options.js';
import { createModel } from '../../src/models/registry.js';
import { readCheckpoint, restoreCheckpoint } from '../../src/train/checkpoint.js';
import { layerStats, totalSparsity } from '../../src/sparsity/stats.js';
import { useBackend, assertNoLeak } from '../helpers/tf.js';
import {
  RESNET18_LAYERS,
  epochLines,
  parseAllCheckpoints,
  readEpochCsv,
  readResults,
  readTensorboard,
  runCli,
  series,
  startCli,
  tinyConfig,
  tinyDataset,
  tmpDir,
  writeYaml,
} from '../helpers/run.js';

describe('GMP --resume after SIGKILL keeps the pruning (quirk 16)', () => {
  let root: string;
  let logDir: string;

  before(async () => {
    root = tmpDir('resume-gmp');
    const data = await tinyDataset(root, { perClass: 16 });
    logDir = path.join(root, 'runs');
    // window [0, 1] (T = 2): rate 0 in epoch 0, 0.5·(1 − 0.5³) = 0.4375 from epoch 1 on
    writeYaml(
      path.join(root, 'gmp.yaml'),
      tinyConfig(data, { name: 'GMP', conv_type: 'GMPConv', prune_rate: 0.5, init_prune_epoch: 0, final_prune_epoch: 1, epochs: 3, print_freq: 1, progress: 'plain' }),
    );
    await useBackend('wasm');
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  test('killed in epoch 2 (after the window): the restored model and the resumed epoch keep the sparsity of epoch 1', async () => {
    const args = ['--config', 'gmp.yaml', '--log-dir', logDir];
    const runDir = path.join(logDir, 'gmp', 'GMP', 'prune_rate=0.5', 'width_mult=0.125');
    const ckDir = path.join(runDir, 'checkpoints');
    const p = startCli(args, root);
    await p.waitForLine(/^Epoch: \[2\]\[2\/8\]/);
    p.child.kill('SIGKILL');
    const killed = await p.done;
    assert.equal(killed.signal, 'SIGKILL');
    parseAllCheckpoints(ckDir);
    const before = readEpochCsv(path.join(runDir, 'layerwise_sparsity.csv'));
    assert.deepEqual(before.rows.map((r) => r[0]), [0, 1]);
    const sparsityBefore = before.rows[1];
    assert.equal(sparsityBefore.at(-1)!.toFixed(2), epochLines(killed.stdout).get(1)!.sparsity!.toFixed(2));
    assert.ok(sparsityBefore.at(-1)! > 43 && sparsityBefore.at(-1)! < 43.75, `≈ 43.75 % pruned, got ${sparsityBefore.at(-1)}`);

    // right after restoring `last` into a fresh model: the sparsity before the kill, per layer
    const config = loadConfig(args, { cwd: root }).config;
    const ck = await readCheckpoint(path.join(ckDir, 'last.safetensors'));
    assert.equal(ck.meta.epoch, 2);
    assert.equal(ck.pruneRates?.['module.layer1.0.conv1']?.curr_prune_rate, 0.5 - 0.5 * 0.125);
    await assertNoLeak(() => {
      const model = createModel(config.arch, modelOptionsOfConfig(config, 4));
      try {
        assert.equal(totalSparsity(layerStats(model)).sparsity, 0, 'a fresh GMP model is dense (rate 0)');
        restoreCheckpoint(ck, model);
        const stats = layerStats(model);
        assert.deepEqual(stats.map((s) => s.name), RESNET18_LAYERS);
        assert.deepEqual([...stats.map((s) => s.sparsity), totalSparsity(stats).sparsity], sparsityBefore.slice(1));
      } finally {
        model.dispose();
      }
    });

    // the resumed run: epoch 2 has exactly the pruning of epoch 1 (outside the window nothing changes)
    const r = runCli([...args, '--resume', path.join(ckDir, 'last.safetensors')], root);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([...epochLines(r.stdout).keys()], [2]);
    const after = readEpochCsv(path.join(runDir, 'layerwise_sparsity.csv'));
    assert.deepEqual(after.rows.map((x) => x[0]), [0, 1, 2]);
    assert.deepEqual(after.rows[2].slice(1), sparsityBefore.slice(1), 'every layer as sparse as before the kill');
    const tb = readTensorboard(runDir, { allowTruncated: true });
    const total = series(tb, 'sparsity/total');
    assert.deepEqual(total.map((x) => x.step), [0, 1, 2]);
    assert.deepEqual(total.map((x) => x.value), [0, Math.fround(sparsityBefore.at(-1)!), Math.fround(sparsityBefore.at(-1)!)]);
    assert.equal(readResults(path.join(logDir, 'results.csv')).rows.length, 1);
    assert.ok(fs.readdirSync(ckDir).every((f) => !f.startsWith('.')), 'no temp files');
    assert.ok(fs.existsSync(path.join(ckDir, 'epoch_2.safetensors')));
  });
});
