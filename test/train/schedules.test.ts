import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { learningRate, type ScheduleOptions } from '../../src/train/schedules.js';
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
