/**
 * --lr-schedule-granularity step end to end (tiny synthetic data, 4 steps per epoch, 3 epochs,
 * 1 warm-up epoch, wasm): every optimizer step runs at the per-step schedule's lr (TensorBoard
 * train/lr at each step), the epoch line shows the epoch's first→last lr, and a run resumed at an
 * epoch boundary continues the schedule at the right global step (same lrs, same numbers).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { stepLearningRate, type ScheduleOptions } from '../../src/train/schedules.js';
import { useBackend } from '../helpers/tf.js';
import { f32, readTensorboard, runInProcess, series, tinyConfig, tinyDataset, tmpDir, writeYaml } from '../helpers/run.js';

const STEPS = 4; // 32 train images / batch 8
const BATCH = 8;
const EPOCHS = 3;
const O: ScheduleOptions = { lr: 0.1, warmupLength: 1, epochs: EPOCHS, multistepGamma: 0.1, multistepAdjust: 30 };

/** `=> epoch N: lr TEXT  train top-1 A loss L … val top-1 V` → N → [lr text, rest of the numbers]. */
function epochSummaries(lines: string[]): Map<number, { lr: string; numbers: string }> {
  const out = new Map<number, { lr: string; numbers: string }>();
  for (const l of lines) {
    const m = /^=> epoch (\d+): lr (\S+) +train top-1 (\S+) loss (\S+) .*val top-1 (\S+) top-5 (\S+) +sparsity (\S+) %/.exec(l);
    if (m) out.set(Number(m[1]), { lr: m[2], numbers: m.slice(3).join(' ') });
  }
  return out;
}

describe('--lr-schedule-granularity step (wasm, in process)', () => {
  let root: string;
  let config: string;

  before(async () => {
    root = tmpDir('lr-per-step');
    const data = await tinyDataset(root);
    config = writeYaml(
      path.join(root, 'tiny.yaml'),
      tinyConfig(data, {
        name: 'STR', conv_type: 'STRConv', sInit_value: -4, epochs: EPOCHS, warmup_length: 1, print_freq: 1, save_every: 1,
        lr_schedule_granularity: 'step',
      }),
    );
    await useBackend('wasm');
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  test('every step at its own lr; the epoch line shows first→last; resume at an epoch boundary continues the step count', async () => {
    const full = await runInProcess(['--config', config, '--log-dir', path.join(root, 'runs')], root);
    const runDir = full.result.runDir!;
    const tb = readTensorboard(runDir);
    const lr = series(tb, 'train/lr');
    const steps = Array.from({ length: EPOCHS * STEPS }, (_, s) => s);
    assert.deepEqual(lr.map((p) => p.step), steps.map((s) => s * BATCH));
    assert.deepEqual(lr.map((p) => p.value), steps.map((s) => f32(stepLearningRate('cosine_lr', s, STEPS, O))));
    // warm-up 0.025, 0.05, 0.075, 0.1, then cosine over 8 steps down to 0.1·(1−cos(π/8))/2
    assert.equal(lr[0].value, f32(0.025));
    assert.equal(lr[3].value, f32(0.1));
    assert.equal(lr[11].value, f32((0.1 * (1 - Math.cos(Math.PI / 8))) / 2));
    // test/lr stays once per epoch: the epoch's first step
    assert.deepEqual(series(tb, 'test/lr').map((p) => p.value), [0, 4, 8].map((s) => f32(stepLearningRate('cosine_lr', s, STEPS, O))));

    const printed = epochSummaries(full.lines);
    assert.deepEqual([...printed.keys()], [0, 1, 2]);
    assert.equal(printed.get(0)!.lr, '0.02500→0.1000');
    assert.equal(printed.get(1)!.lr, '0.1000→0.06913');
    assert.equal(printed.get(2)!.lr, '0.05000→0.003806');

    // resume from the checkpoint written after epoch 0, in a folder of its own
    const resumedDir = path.join(root, 'resumed');
    fs.mkdirSync(path.join(resumedDir, 'checkpoints'), { recursive: true });
    const ck = path.join(resumedDir, 'checkpoints', 'epoch_0.safetensors');
    fs.copyFileSync(path.join(runDir, 'checkpoints', 'epoch_0.safetensors'), ck);
    const resumed = await runInProcess(['--config', config, '--log-dir', path.join(root, 'runs'), '--resume', ck], root);
    assert.equal(resumed.result.runDir, resumedDir);
    const again = epochSummaries(resumed.lines);
    assert.deepEqual([...again.keys()], [1, 2]);
    for (const e of [1, 2]) assert.deepEqual(again.get(e), printed.get(e), `epoch ${e}: same lrs and numbers as the uninterrupted run`);
    const lr2 = series(readTensorboard(resumedDir), 'train/lr');
    assert.deepEqual(lr2.map((p) => [p.step, p.value]), lr.slice(STEPS).map((p) => [p.step, p.value]));
  });
});
