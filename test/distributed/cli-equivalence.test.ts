// Issue 6, acceptance 1, through the real CLI: `--multigpu 0,1` (two worker processes on the local
// ring) with global batch B ends where one process with batch B ends, and the two workers hold
// bit-identical parameters after every step.
//
// Why BatchNorm is frozen for the comparison: in train mode BatchNorm normalises each worker's shard
// with the shard's own statistics (as the reference's DataParallel does), so N workers compute a
// different function than one process does on the whole batch. With fixed statistics (the
// frozenBatchNorm test hook keeps every BatchNorm layer in eval mode: running mean 0, variance 1,
// affine weight and bias still trained) the loss is a mean of per-sample losses, and the mean of
// the shards' mean gradients, weighted by shard size, is exactly the whole batch's mean gradient;
// only float summation order differs. The data (permutation, crops, flips) are drawn per sample
// from (seed, epoch, index), identical in both runs. The learning rate is small because an
// unnormalised ResNet starts with large logits.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import {
  TINY_MODEL, assertBitIdenticalSteps, assertRunsClose, checkpointOf, epochLines, runCli, runDirOf, stepLines, tempDir, tinyData,
} from './cli-common.js';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

// 32 train images, global batch 8: 4 steps per epoch, 2 epochs
const STEPS = 8;
/** Allowed difference between the runs, relative to how far training moved each tensor (measured: ~4e-6). */
const RTOL = 1e-3;

let data: string;
before(async () => {
  data = await tinyData(tempDir('str-cli-eq-data-', dirs), 8);
});

const common = (conv: string) => [
  '--data', data, ...TINY_MODEL, '--batch-size', '8', '--epochs', '2', '--lr', '0.001', '--momentum', '0.9',
  '--weight-decay', '0.0005', '--conv-type', conv, ...(conv === 'STRConv' ? ['--sinit-value', '-4'] : []),
];

async function compare(conv: string, opts: { seeded: boolean }) {
  const root = tempDir(`str-cli-eq-${conv}-`, dirs);
  const hashes = join(root, 'hashes');
  const two = join(root, 'two');
  const r2 = await runCli([...common(conv), ...(opts.seeded ? ['--seed', '3'] : []), '--multigpu', '0,1', '--log-dir', two], {
    hooks: { frozenBatchNorm: true, hashDir: hashes },
  });
  // an unseeded data-parallel run shares rank 0's seed with all workers and records it
  const settings = yaml.load(readFileSync(join(runDirOf(two), 'settings.yaml'), 'utf8')) as { seed: number | null };
  if (opts.seeded) assert.equal(settings.seed, 3);
  else {
    assert.ok(Number.isInteger(settings.seed), `settings.yaml records the drawn seed, got ${settings.seed}`);
    assert.match(r2.stdout, new RegExp(`^=> unseeded run: seed ${settings.seed}, drawn by rank 0 for all 2 workers$`, 'm'));
  }
  const one = join(root, 'one');
  const r1 = await runCli([...common(conv), '--seed', String(settings.seed), '--log-dir', one], { hooks: { frozenBatchNorm: true } });

  assertBitIdenticalSteps(hashes, STEPS);
  const [init1, init2, last1, last2] = await Promise.all([checkpointOf(one, 'initial'), checkpointOf(two, 'initial'), checkpointOf(one), checkpointOf(two)]);
  assertRunsClose(init2, init1, init1, 0, `${conv}: initial weights`);
  assert.equal(last2.optimizer?.steps, STEPS);
  assertRunsClose(last2, last1, init1, RTOL, `${conv}: 2 workers vs 1 process after ${STEPS} steps`);
  // rank 0 reports whole-batch metrics: the train metrics combined over workers, validation over both shards
  const [e1, e2] = [epochLines(r1.stdout), epochLines(r2.stdout)];
  assert.equal(e2.length, 2);
  for (let e = 0; e < 2; e++) {
    assert.equal(e2[e].trainTop1, e1[e].trainTop1);
    assert.equal(e2[e].valTop1, e1[e].valTop1);
    assert.ok(Math.abs(e2[e].trainLoss - e1[e].trainLoss) <= 0.002 + 1e-3 * e1[e].trainLoss, `epoch ${e} train loss ${e2[e].trainLoss} vs ${e1[e].trainLoss}`);
  }
  // …and so do its per-step progress lines: the global batch's accuracy, not its own shard's
  const [s1, s2] = [stepLines(r1.stdout), stepLines(r2.stdout)];
  assert.equal(s2.length, s1.length);
  assert.ok(s1.length >= 2 * (STEPS / 2 + 1), `progress lines, got ${s1.length}`);
  for (let k = 0; k < s1.length; k++) {
    assert.equal(s2[k].line, s1[k].line);
    assert.equal(s2[k].acc, s1[k].acc, `${s1[k].line}: accuracy of the global batch`);
    assert.ok(Math.abs(s2[k].loss - s1[k].loss) <= 0.002 + 1e-3 * s1[k].loss, `${s1[k].line}: loss ${s2[k].loss} vs ${s1[k].loss}`);
  }
}

describe('--multigpu 0,1 (local ring) through the CLI', () => {
  test('DenseConv, unseeded: 2 workers reach the parameters of 1 process with the same global batch; workers bit-identical after every step', async () => {
    await compare('DenseConv', { seeded: false });
  });

  test('STRConv: 2 workers reach the parameters (thresholds included) of 1 process; workers bit-identical after every step', async () => {
    await compare('STRConv', { seeded: true });
  });

  test('train-mode BatchNorm (per-worker statistics, the real setting): workers still bit-identical after every step', async () => {
    const root = tempDir('str-cli-eq-bn-', dirs);
    const hashes = join(root, 'hashes');
    await runCli([...common('STRConv'), '--lr', '0.1', '--seed', '5', '--multigpu', '0,1', '--log-dir', join(root, 'run')], { hooks: { hashDir: hashes } });
    assertBitIdenticalSteps(hashes, STEPS);
    const last = await checkpointOf(join(root, 'run'));
    // BatchNorm buffers are rank 0's (DataParallel keeps replica 0's): they moved from (0, 1)
    const rv = last.stateDict.get('module.bn1.running_var')!.data as Float32Array;
    assert.ok(rv.some((v) => Math.abs(v - 1) > 1e-3), 'running statistics were updated in train mode');
  });
});
