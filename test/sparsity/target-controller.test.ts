/**
 * --target-sparsity's controller: the schedule, the control law and the landing against
 * hand-computed values, a closed loop on a simulated plant that answers more weakly than the
 * measured sensitivity predicts, and the device-side probe and landing on real STR layers.
 */
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../src/tf.js';
import { STRConv } from '../../src/nn/conv/str.js';
import {
  RHO_MAX,
  controlInterval,
  correctionGain,
  decayForShrink,
  horizon,
  initialState,
  landingFactor,
  parseState,
  rampEnd,
  scheduledSparsity,
  update,
  type TargetControllerOptions,
  type TargetControllerState,
} from '../../src/sparsity/target-controller.js';
import { land, probeSparsity } from '../../src/train/target-sparsity.js';
import { useBackend, assertNoLeak } from '../helpers/tf.js';

const OPTS: TargetControllerOptions = { target: 90, totalSteps: 1000, ramp: 0.5, momentum: 0.9 };

describe('target schedule', () => {
  const s = initialState(OPTS, 0, 40);
  test('cubic ramp from the starting sparsity to P over the ramp, then P', () => {
    assert.equal(rampEnd(s), 500);
    assert.equal(scheduledSparsity(0, s), 40);
    // f = 0.5: 90 + (40 − 90)·0.5³
    assert.equal(scheduledSparsity(250, s), 90 - 50 * 0.125);
    assert.equal(scheduledSparsity(500, s), 90);
    assert.equal(scheduledSparsity(999, s), 90);
  });
  test('a run resumed from a checkpoint without a controller ramps over its own remaining steps', () => {
    const r = initialState({ ...OPTS, totalSteps: 1000 }, 600, 95);
    assert.equal(rampEnd(r), 800);
    assert.equal(scheduledSparsity(700, r), 90 + 5 * 0.125, 'starting above P, it ramps down');
  });
  test('interval and horizon', () => {
    assert.equal(controlInterval(64), 1);
    assert.equal(controlInterval(940), 5);
    assert.equal(controlInterval(450_000), 100);
    assert.equal(horizon(64), 20);
    assert.equal(horizon(940), 47);
    assert.equal(horizon(450_000), 22_500);
  });
});

describe('control law', () => {
  test('λ_s = ρ(1 − μ)/lr; lr 0 keeps the decay in force', () => {
    assert.ok(Math.abs(decayForShrink(0.01, 0.1, 0.9, 7) - 0.01) < 1e-15);
    assert.ok(Math.abs(decayForShrink(-0.002, 0.025, 0.9, 7) - -0.002 * 0.1 / 0.025) < 1e-15);
    assert.equal(decayForShrink(0.01, 0, 0.9, 7), 7);
  });

  test('first update: ρ = (target(H) − S)/H / G, the decay from it', () => {
    const s0 = initialState(OPTS, 0, 40);
    const h = horizon(1000); // 50
    const want = (scheduledSparsity(h, s0) - 40) / h;
    const u = update(s0, OPTS, { step: 0, sparsity: 40, gain: 200, lr: 0.1 });
    assert.ok(Math.abs(u.rho - want / 200) < 1e-15);
    assert.ok(Math.abs(u.decay - (u.rho * 0.1) / 0.1) < 1e-15);
    assert.equal(u.last_target, 40);
  });

  test('later updates move ρ by β·(wanted − observed)/G', () => {
    const prev: TargetControllerState = { ...initialState(OPTS, 0, 40), last_step: 100, last_sparsity: 60, rho: 0.004, gain: 150 };
    const u = update(prev, OPTS, { step: 105, sparsity: 61, gain: 100, lr: 0.05 });
    const wanted = (scheduledSparsity(155, prev) - 61) / 50;
    const observed = 1 / 5;
    const beta = correctionGain(5, 0.9);
    assert.ok(Math.abs(beta - 0.25) < 1e-15);
    assert.ok(Math.abs(u.rho - (0.004 + (beta * (wanted - observed)) / 100)) < 1e-15);
    assert.ok(Math.abs(u.decay - (u.rho * 0.1) / 0.05) < 1e-12);
    assert.equal(u.rate, observed);
    assert.equal(u.last_step, 105);
  });

  test('overshoot makes the decay negative (thresholds shrink); ρ is clamped', () => {
    const over: TargetControllerState = { ...initialState(OPTS, 0, 40), last_step: 800, last_sparsity: 93, rho: 0 };
    assert.ok(update(over, OPTS, { step: 805, sparsity: 94, gain: 100, lr: 0.1 }).decay < 0);
    const far = update(initialState(OPTS, 0, 0), OPTS, { step: 0, sparsity: 0, gain: 0, lr: 0.1 });
    assert.equal(far.rho, RHO_MAX, 'no sensitivity (thresholds far below the weights): the largest push');
  });

  test('closed loop on a plant with lag, resistance and drift: tracks the ramp and holds P', () => {
    // plant: S moves by G_true·ρ_eff + drift per step, ρ_eff follows ρ through the momentum
    // buffer, and G_true is half the measured G (the loss pulls thresholds back)
    for (const target of [50, 80, 90, 95]) {
      const o = { ...OPTS, target };
      let S = 45;
      let rhoEff = 0;
      let st = update(initialState(o, 0, S), o, { step: 0, sparsity: S, gain: 120, lr: 0.1 });
      const every = controlInterval(o.totalSteps);
      let worst = 0;
      for (let step = 1; step <= o.totalSteps; step++) {
        rhoEff = 0.9 * rhoEff + 0.1 * st.rho;
        const room = (100 - S) / 55; // fewer weights left to prune near 100 %
        S = Math.min(99.9, Math.max(0, S + room * (60 * rhoEff + 0.05)));
        if (step % every === 0) st = update(st, o, { step, sparsity: S, gain: 120 * room, lr: 0.1 });
        if (step > 600) worst = Math.max(worst, Math.abs(S - target));
      }
      assert.ok(worst < 1, `target ${target}: in the hold phase within 1 point of P, worst ${worst.toFixed(3)}`);
    }
  });
});

describe('landing', () => {
  test('bisection finds the factor that puts a decreasing sparsity curve on the target', async () => {
    const k = await landingFactor(90, (f) => 100 * (1 - f / 4));
    assert.ok(Math.abs(k - 0.4) < 1e-6, `k ${k}`);
    // a step function: the closest reachable value
    const stepwise = (f: number) => (f < 1 ? 91 : 89.8);
    assert.equal(stepwise(await landingFactor(90, stepwise)), 89.8);
  });

  test('state round-trips through JSON; malformed states are rejected', () => {
    const s = update(initialState(OPTS, 0, 40), OPTS, { step: 0, sparsity: 40, gain: 100, lr: 0.1 });
    assert.deepEqual(parseState(JSON.parse(JSON.stringify(s))), s);
    assert.equal(parseState({ ...s, decay: 'x' }), undefined);
    assert.equal(parseState(null), undefined);
    const { landing: _, ...old } = s;
    assert.equal(parseState(old), undefined);
  });
});

describe('probe and landing on STR layers (wasm)', () => {
  before(() => useBackend('wasm'));

  function layers(): STRConv[] {
    return [
      new STRConv({ inChannels: 8, outChannels: 16, kernelSize: 3, sInitValue: -2, seed: 'p1' }),
      new STRConv({ inChannels: 16, outChannels: 32, kernelSize: 3, sInitValue: -4, seed: 'p2' }),
      new STRConv({ inChannels: 32, outChannels: 10, kernelSize: 1, sInitValue: -3, seed: 'p3' }),
    ];
  }
  const hostSparsity = (ls: STRConv[], scale = 1) => {
    let z = 0;
    let n = 0;
    for (const c of ls) {
      const w = c.weight.dataSync();
      const tau = 1 / (1 + Math.exp(-c.sparseThreshold.dataSync()[0] * scale));
      for (const v of w) if (Math.abs(v) <= Math.fround(tau)) z++;
      n += w.length;
    }
    return (100 * z) / n;
  };

  test('probeSparsity: the total of the layers, and G from counting under sigmoid(s·0.98)', async () => {
    const ls = layers();
    await assertNoLeak(async () => {
      const p = await probeSparsity(ls);
      const zeros = ls.reduce((a, c) => a + c.sparsity().zeros, 0);
      const numel = ls.reduce((a, c) => a + c.numel, 0);
      assert.equal(p.sparsity, (100 * zeros) / numel);
      const g = (hostSparsity(ls, 0.98) - hostSparsity(ls)) / 0.02;
      assert.ok(Math.abs(p.gain - g) < 100 * (2 / numel) / 0.02, `G ${p.gain} vs host ${g}`);
      assert.ok(p.gain > 0);
    });
    for (const c of ls) c.dispose();
  });

  test('land: one common factor on every s, total on the target, layers stay different', async () => {
    const ls = layers();
    const s0 = ls.map((c) => c.sparseThreshold.dataSync()[0]);
    const before = ls.map((c) => c.sparsity().sparsity);
    for (const target of [30, 60]) {
      const k = await assertNoLeak(() => land(ls, target));
      const p = (await probeSparsity(ls)).sparsity;
      assert.ok(Math.abs(p - target) < 0.5, `landed at ${p} for ${target}`);
      const s1 = ls.map((c) => c.sparseThreshold.dataSync()[0]);
      s1.forEach((v, i) => assert.ok(Math.abs(v / s0[i] - s1[0] / s0[0]) < 1e-5, 'the same factor for every layer'));
      assert.ok(k > 0);
      const per = ls.map((c) => c.sparsity().sparsity);
      assert.ok(Math.max(...per) - Math.min(...per) > 5, `per-layer sparsities stay non-uniform: ${per}`);
      ls.forEach((c, i) => c.sparseThreshold.assign(tf.fill([1, 1], s0[i])));
    }
    assert.deepEqual(ls.map((c) => c.sparsity().sparsity), before);
    for (const c of ls) c.dispose();
  });
});
