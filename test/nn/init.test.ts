import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fanOf, initConvWeight, torchDefaultUniform, type InitOptions } from '../../src/nn/init.js';
import { makeRng } from '../../src/util/rng.js';

const G = { inChannels: 64, outChannels: 128, kernelSize: 3, groups: 1 };
const BASE: InitOptions = { init: 'kaiming_normal', mode: 'fan_in', nonlinearity: 'relu', scaleFan: false, pruneRate: 0 };
const N = 64 * 128 * 9;

function moments(a: Float32Array) {
  let s = 0;
  let s2 = 0;
  for (const v of a) {
    s += v;
    s2 += v * v;
  }
  const mean = s / a.length;
  return { mean, std: Math.sqrt(s2 / a.length - mean * mean), max: Math.max(...a.map(Math.abs)) };
}

describe('initialisers (STR-SPEC §4)', () => {
  test('fan_in = in/groups·k·k, fan_out = out·k·k (depthwise: fan_in = k·k)', () => {
    assert.equal(fanOf(G, 'fan_in'), 576);
    assert.equal(fanOf(G, 'fan_out'), 1152);
    assert.equal(fanOf({ inChannels: 32, outChannels: 32, kernelSize: 3, groups: 32 }, 'fan_in'), 9);
  });

  test('kaiming_normal: N(0, 2/fan); §4 examples: stem σ 0.11664, 3×3/64 σ 0.058926, fc σ 0.03125', () => {
    const m = moments(initConvWeight(N, G, BASE, 'a'));
    assert.ok(Math.abs(m.mean) < 1e-3);
    assert.ok(Math.abs(m.std / 0.058926 - 1) < 0.01, `std ${m.std}`);
    assert.ok(Math.abs(Math.SQRT2 / Math.sqrt(147) - 0.11664) < 1e-5);
    assert.ok(Math.abs(Math.SQRT2 / Math.sqrt(2048) - 0.03125) < 1e-12);
    const out = moments(initConvWeight(N, G, { ...BASE, mode: 'fan_out' }, 'b'));
    assert.ok(Math.abs(out.std / (Math.SQRT2 / Math.sqrt(1152)) - 1) < 0.01);
  });

  test('--scale-fan: fan·(1 − prune rate)', () => {
    const m = moments(initConvWeight(N, G, { ...BASE, scaleFan: true, pruneRate: 0.75 }, 'c'));
    assert.ok(Math.abs(m.std / (Math.SQRT2 / Math.sqrt(576 * 0.25)) - 1) < 0.01, `std ${m.std}`);
  });

  test('signed_constant is ±gain/√fan with balanced signs; unsigned_constant all +gain/√fan', () => {
    const c = Math.fround(Math.SQRT2 / Math.sqrt(576));
    const s = initConvWeight(N, G, { ...BASE, init: 'signed_constant' }, 'd');
    assert.ok(s.every((v) => v === c || v === -c));
    const pos = s.filter((v) => v > 0).length / N;
    assert.ok(Math.abs(pos - 0.5) < 0.02, `positive fraction ${pos}`);
    assert.ok(initConvWeight(N, G, { ...BASE, init: 'unsigned_constant' }, 'e').every((v) => v === c));
  });

  test("standard = PyTorch's default U(±1/√fan_in) (no fan scaling); kaiming_uniform U(±√(6/fan))", () => {
    const st = moments(initConvWeight(N, G, { ...BASE, init: 'standard', scaleFan: true, pruneRate: 0.9 }, 'f'));
    assert.ok(st.max <= 1 / 24 && st.max > 0.99 / 24);
    assert.ok(Math.abs(st.std / (1 / 24 / Math.sqrt(3)) - 1) < 0.01);
    const ku = moments(initConvWeight(N, G, { ...BASE, init: 'kaiming_uniform' }, 'g'));
    assert.ok(ku.max <= Math.sqrt(6 / 576) && ku.max > 0.99 * Math.sqrt(6 / 576));
    const d = moments(torchDefaultUniform(N, G, makeRng('h')));
    assert.ok(d.max <= 1 / 24);
  });

  test('seeded: the same seed gives the same weights, another seed different ones', () => {
    assert.deepEqual(initConvWeight(100, G, BASE, 'x'), initConvWeight(100, G, BASE, 'x'));
    assert.notDeepEqual(initConvWeight(100, G, BASE, 'x'), initConvWeight(100, G, BASE, 'y'));
  });
});
