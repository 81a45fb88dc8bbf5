import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { learningRate, stepLearningRate, lrSchedule, formatEpochLr, type ScheduleOptions } from '../../src/train/schedules.js';
import { gmpRateAt, gmpRateInForce } from '../../src/sparsity/gmp-schedule.js';
import { repoPath } from '../helpers/paths.js';

const SHIPPED: ScheduleOptions = { lr: 0.256, warmupLength: 5, epochs: 100, multistepGamma: 0.1, multistepAdjust: 30 };

describe('learning-rate schedules (STR-SPEC §7)', () => {
  test('Appendix B: cosine with 5 warm-up epochs, every epoch to 10 decimals', () => {
    const rows = readFileSync(repoPath('test/fixtures/reference/cosine-lr.tsv'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
    assert.equal(rows.length, 100);
    for (const row of rows) {
      const [e, lr] = row.split('\t');
      assert.equal(learningRate('cosine_lr', Number(e), SHIPPED).toFixed(10), lr, `epoch ${e}`);
    }
  });

  test('§17.4 spot values and the 100-epoch sum 13.056', () => {
    const want: Record<number, number> = { 0: 0.0512, 1: 0.1024, 4: 0.256, 5: 0.256, 6: 0.2559300169, 53: 0.1258836551, 99: 0.0000699831 };
    for (const [e, v] of Object.entries(want)) assert.ok(Math.abs(learningRate('cosine_lr', Number(e), SHIPPED) - v) < 5e-11, `epoch ${e}`);
    let sum = 0;
    for (let e = 0; e < 100; e++) sum += learningRate('cosine_lr', e, SHIPPED);
    assert.ok(Math.abs(sum - 13.056) < 1e-9, `sum ${sum}`);
  });

  test('constant, efficientnet (from epoch 0) and multistep (no warm-up, working flags: quirk 4)', () => {
    assert.equal(learningRate('constant_lr', 2, SHIPPED), 0.256 * 3 / 5);
    assert.equal(learningRate('constant_lr', 50, SHIPPED), 0.256);
    assert.equal(learningRate('efficientnet_lr', 12, SHIPPED), 0.256 * Math.pow(0.97, 12 / 2.4));
    assert.equal(learningRate('multistep_lr', 0, SHIPPED), 0.256);
    assert.equal(learningRate('multistep_lr', 29, SHIPPED), 0.256);
    assert.ok(Math.abs(learningRate('multistep_lr', 30, SHIPPED) - 0.0256) < 1e-15);
    assert.ok(Math.abs(learningRate('multistep_lr', 65, { ...SHIPPED, multistepGamma: 0.5, multistepAdjust: 20 }) - 0.256 / 8) < 1e-15);
  });
});

describe('per-step schedules (--lr-schedule-granularity step)', () => {
  // 3 epochs of 4 steps, 1 warm-up epoch, base 0.1: hand-computed values
  const O: ScheduleOptions = { lr: 0.1, warmupLength: 1, epochs: 3, multistepGamma: 0.5, multistepAdjust: 2 };
  const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-15, `${what}: ${a} vs ${b}`);

  test('warm-up is linear in steps: 0.1·(s+1)/4 over the first epoch', () => {
    for (let s = 0; s < 4; s++) close(stepLearningRate('cosine_lr', s, 4, O), [0.025, 0.05, 0.075, 0.1][s], `step ${s}`);
    // the last warm-up step reaches base, as the per-epoch warm-up's last epoch does
    close(stepLearningRate('constant_lr', 3, 4, O), 0.1, 'constant, step 3');
    close(stepLearningRate('constant_lr', 9, 4, O), 0.1, 'constant, step 9');
  });

  test('cosine over the 8 steps after warm-up: ½(1+cos(π·k/8))·0.1, last step 0.1·(1−cos(π/8))/2', () => {
    const want = [0.1, 0.0961939766255643, 0.0853553390593274, 0.0691341716182545, 0.05, 0.0308658283817455, 0.0146446609406726, 0.0038060233744357];
    for (let k = 0; k < 8; k++) assert.ok(Math.abs(stepLearningRate('cosine_lr', 4 + k, 4, O) - want[k]) < 1e-15, `step ${4 + k}`);
    close(stepLearningRate('cosine_lr', 11, 4, O), (0.1 * (1 - Math.cos(Math.PI / 8))) / 2, 'last step');
    // the per-epoch schedule runs its whole last epoch at 0.05
    close(learningRate('cosine_lr', 2, O), 0.05, 'per-epoch epoch 2');
  });

  test('epoch starts after warm-up agree with the per-epoch schedule (shipped config, 5005 steps/epoch)', () => {
    for (const e of [5, 6, 20, 53, 99]) {
      assert.ok(Math.abs(stepLearningRate('cosine_lr', e * 5005, 5005, SHIPPED) - learningRate('cosine_lr', e, SHIPPED)) < 1e-15, `epoch ${e}`);
      assert.ok(Math.abs(stepLearningRate('efficientnet_lr', e * 5005, 5005, SHIPPED) - learningRate('efficientnet_lr', e, SHIPPED)) < 1e-15, `epoch ${e}`);
    }
    // warm-up reaches base at its last step, (5·5005)/(5·5005)
    assert.equal(stepLearningRate('cosine_lr', 5 * 5005 - 1, 5005, SHIPPED), 0.256);
    assert.ok(stepLearningRate('cosine_lr', 100 * 5005 - 1, 5005, SHIPPED) < 1e-9);
  });

  test('efficientnet decays within the epoch; multistep still steps at epoch boundaries', () => {
    const noWarm = { ...O, warmupLength: 0 };
    close(stepLearningRate('efficientnet_lr', 6, 4, noWarm), 0.1 * Math.pow(0.97, 1.5 / 2.4), 'efficientnet step 6');
    close(stepLearningRate('multistep_lr', 7, 4, O), 0.1, 'multistep step 7');
    close(stepLearningRate('multistep_lr', 8, 4, O), 0.05, 'multistep step 8');
  });

  test('lrSchedule: epoch granularity ignores the iteration; step granularity counts epoch·steps + iteration (resume-safe)', () => {
    const perEpoch = lrSchedule('cosine_lr', O, 'epoch', 4);
    assert.equal(perEpoch(2, 0), perEpoch(2, 3));
    close(perEpoch(2, 3), 0.05, 'epoch 2');
    const perStep = lrSchedule('cosine_lr', O, 'step', 4);
    // a schedule built afresh (as after --resume) gives the same values: nothing is carried in it
    const resumed = lrSchedule('cosine_lr', O, 'step', 4);
    for (let e = 0; e < 3; e++) for (let i = 0; i < 4; i++) assert.equal(resumed(e, i), stepLearningRate('cosine_lr', 4 * e + i, 4, O));
    close(perStep(1, 2), 0.0853553390593274, 'epoch 1 iteration 2');
    assert.equal(formatEpochLr(perEpoch, 2, 4), '0.05000');
    assert.equal(formatEpochLr(perStep, 2, 4), '0.05000→0.003806');
  });
});

describe('GMP cubic schedule (STR-SPEC §9, §17.5)', () => {
  const want: Record<number, number> = {
    0: 0, 20: 0, 21: 0.0442541667, 25: 0.2067708333, 30: 0.3791666667, 35: 0.5203125, 40: 0.6333333333,
    50: 0.7875, 60: 0.8666666667, 70: 0.8958333333, 78: 0.8999666667, 79: 0.8999958333, 99: 0.8999958333,
  };
  test('rate in force at the start of each epoch (p 0.9, window 20–79)', () => {
    for (const [e, v] of Object.entries(want)) {
      const got = gmpRateInForce(Number(e), 0.9, 20, 79);
      assert.ok(Math.abs(got - v) < 5e-11, `epoch ${e}: ${got} vs ${v}`);
    }
    assert.equal(Math.floor(gmpRateInForce(99, 0.9, 20, 79) * 2359296), 2123356);
  });
  test('updates happen only inside the window; the default window (0, −100) never prunes', () => {
    assert.equal(gmpRateAt(19, 0.9, 20, 79), null);
    assert.equal(gmpRateAt(80, 0.9, 20, 79), null);
    assert.equal(gmpRateAt(20, 0.9, 20, 79), 0);
    assert.equal(gmpRateInForce(50, 0.9, 0, -100), 0);
  });
});
