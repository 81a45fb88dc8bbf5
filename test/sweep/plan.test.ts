/**
 * Sweep planning: the prune rates that land DNW and GMP at a target TOTAL sparsity (hand-computed
 * cases: integer floors, dense layers, GMP's p·(1 − 1/T³) end point), and what each method's run
 * configuration takes from the base config.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { OPTION_KEYS } from '../../src/config/schema.js';
import { UserError } from '../../src/util/errors.js';
import { gmpFinalRate, rateForTotal, zerosAtRate, checkGmpWindow } from '../../src/sweep/rates.js';
import { gmpWindowOf, layerSizes, parseGmpWindow, parseMethods, parseTargets, planSweep, TARGET_KEY } from '../../src/sweep/plan.js';
import { configChanges, epochSeconds } from '../../src/sweep/runner.js';
import { settingsYaml } from '../../src/config/load.js';
import { useBackend } from '../helpers/tf.js';
import { tinyConfig, tmpDir, writeYaml } from '../helpers/run.js';

describe('rates for a target total sparsity', () => {
  test('DNW: the smallest rate whose ⌊rate·n⌋ zeros reach the target; dense layers count in the total', () => {
    // one sparse layer of 10 and a dense one of 10: 40 % of 20 = 8 zeros, all in the sparse layer → 0.8
    const layers = [
      { numel: 10, sparse: true },
      { numel: 10, sparse: false },
    ];
    const r = rateForTotal(layers, 40);
    assert.equal(zerosAtRate(layers, r), 8);
    assert.ok(r <= 0.8 && r > 0.8 - 1e-12, `rate ${r}`);
    // two sparse layers of 3 and 7, 50 % → 5 zeros: ⌊3r⌋ + ⌊7r⌋ = 5 first at r = 4/7 (⌊12/7⌋ = 1 + 4)
    const two = [
      { numel: 3, sparse: true },
      { numel: 7, sparse: true },
    ];
    const r2 = rateForTotal(two, 50);
    assert.equal(zerosAtRate(two, r2), 5);
    assert.ok(Math.abs(r2 - 4 / 7) < 1e-12, `rate ${r2}, expected 4/7`);
    assert.equal(zerosAtRate(two, r2 - 1e-9), 4, 'and no smaller rate reaches it');
  });

  test('a target the sparse layers cannot carry is a UserError', () => {
    assert.throws(() => rateForTotal([{ numel: 10, sparse: true }, { numel: 10, sparse: false }], 60), UserError);
    assert.throws(() => rateForTotal([{ numel: 10, sparse: false }], 10), /no layers of this conv type/);
  });

  test('GMP ends at p·(1 − 1/T³): window 0-3 of 5 epochs → p = target·64/63', () => {
    const w = { epochs: 5, initPruneEpoch: 0, finalPruneEpoch: 3 };
    assert.equal(gmpFinalRate(1, w), 63 / 64);
    const layers = [{ numel: 1_000_000, sparse: true }];
    const p = rateForTotal(layers, 90, { rateOf: (x) => gmpFinalRate(x, w) });
    assert.ok(Math.abs(p - (0.9 * 64) / 63) < 1e-9, `p ${p}`);
    assert.equal(zerosAtRate(layers, gmpFinalRate(p, w)), 900_000);
  });

  test('GMP window reaching past the last epoch: the rate in force then counts (epochs 3, window 0-3: (1 − 2/4)³ = 1/8)', () => {
    const w = { epochs: 3, initPruneEpoch: 0, finalPruneEpoch: 3 };
    assert.equal(gmpFinalRate(1, w), 7 / 8);
    // 90 % is out of reach at 7/8 of p < 1
    assert.throws(() => rateForTotal([{ numel: 100, sparse: true }], 90, { rateOf: (x) => gmpFinalRate(x, w) }), UserError);
    assert.throws(() => checkGmpWindow({ epochs: 3, initPruneEpoch: 5, finalPruneEpoch: 6 }), /prunes nothing/);
  });

  test('flag parsing: methods, targets in (0, 100), GMP window', () => {
    assert.deepEqual(parseMethods('dense, str,gmp,str'), ['dense', 'str', 'gmp']);
    assert.throws(() => parseMethods('dense,magic'), /unknown method 'magic'/);
    assert.deepEqual(parseTargets('50,80.5,95'), [50, 80.5, 95]);
    for (const bad of ['0', '100', '-5', 'x', '', '50,,80']) assert.throws(() => parseTargets(bad), UserError, bad);
    assert.deepEqual(parseGmpWindow('1,3'), [1, 3]);
    assert.throws(() => parseGmpWindow('3,1'), UserError);
  });

  test('epoch seconds from a run log: the last line of each epoch counts (a resumed epoch once)', () => {
    const log = ['=> epoch 0: lr 0.1  train top-1 1  [2.5 s]', 'Epoch: [1][1/8]', '=> epoch 1: lr 0.1 x  [3.0 s]', '=== sweep: resume', '=> epoch 1: lr 0.1 x  [4.0 s]'].join('\n');
    assert.equal(epochSeconds(log), 6.5);
  });
});

describe('planSweep', () => {
  let root: string;
  before(async () => {
    root = tmpDir('sweep-plan');
    await useBackend('cpu');
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  const base = (extra: Record<string, unknown> = {}) => {
    const file = writeYaml(path.join(root, 'base.yaml'), tinyConfig(path.join(root, 'nodata'), { conv_type: 'STRConv', sInit_value: -4, epochs: 5, num_classes: 4, ...extra }));
    return loadConfig(['--config', file]).config;
  };

  test('per-method configs: conv type, rates for the total, GMP window, budget run after its STR run', () => {
    const hasTarget = (OPTION_KEYS as readonly string[]).includes(TARGET_KEY);
    const methods = hasTarget ? (['dense', 'str', 'gmp', 'dnw', 'dnw-str-budget'] as const) : (['dense', 'gmp', 'dnw'] as const);
    const file = writeYaml(path.join(root, 'lld.yaml'), tinyConfig(path.join(root, 'nodata'), { conv_type: 'STRConv', sInit_value: -4, epochs: 5, num_classes: 4, last_layer_dense: true }));
    const loaded = loadConfig(['--config', file, '--momentum', '0.8']);
    const baseKeys = new Set<string>([...loaded.yamlKeys, ...loaded.explicit]);
    const runs = planSweep({ base: loaded.config, methods: [...methods], targets: [50, 90], out: path.join(root, 'sw'), workers: 1, baseKeys });
    assert.deepEqual(
      runs.map((r) => r.id),
      ['dense', ...[50, 90].flatMap((t) => methods.filter((m) => m !== 'dense').map((m) => `${m}-${t}`))],
    );
    const dense = runs[0];
    assert.equal(dense.config.conv_type, 'DenseConv');
    assert.equal(dense.config.seed, 0);
    assert.equal(dense.config.log_dir, path.join(root, 'sw', 'dense'));
    const gmp = runs.find((r) => r.id === 'gmp-90')!;
    assert.equal(gmp.config.conv_type, 'GMPConv');
    // the base (an STR config) has no GMP window: 0 … epochs − 2
    assert.deepEqual([gmp.config.init_prune_epoch, gmp.config.final_prune_epoch], [0, 3]);
    // the classifier stays dense (last_layer_dense): the sparse layers prune more than 90 %
    const sizes = layerSizes(gmp.config);
    assert.ok(sizes.some((l) => !l.sparse) && sizes.filter((l) => !l.sparse).length === 1);
    const all = sizes.reduce((a, l) => a + l.numel, 0);
    const final = gmpFinalRate(gmp.config.prune_rate, { epochs: 5, initPruneEpoch: 0, finalPruneEpoch: 3 });
    // the smallest uniform rate reaching 90 %: layers of equal size step together, so it may pass
    // the target by less than one weight per layer, never more
    const want = Math.round(0.9 * all);
    const layersPruned = sizes.filter((l) => l.sparse).length;
    const z = zerosAtRate(sizes, final);
    assert.ok(z >= want && z - want < layersPruned, `${z} zeros for ${want}`);
    assert.ok(zerosAtRate(sizes, gmpFinalRate(gmp.config.prune_rate - 1e-9, { epochs: 5, initPruneEpoch: 0, finalPruneEpoch: 3 })) < want, 'minimal');
    assert.ok(final > 0.9 && gmp.config.prune_rate > final);
    const dnw = runs.find((r) => r.id === 'dnw-90')!;
    assert.equal(dnw.config.conv_type, 'DNWConv');
    assert.equal(zerosAtRate(layerSizes(dnw.config), dnw.config.prune_rate), z);
    assert.ok(Math.abs(dnw.config.prune_rate - final) < 1e-6, 'DNW and GMP end at the same per-layer rate');
    if (hasTarget) {
      const str = runs.find((r) => r.id === 'str-90')!;
      assert.equal(str.config.conv_type, 'STRConv');
      assert.equal(str.config.sInit_value, -4);
      const strSizes = layerSizes(str.config);
      const t = (str.config as Record<string, unknown>)[TARGET_KEY] as number;
      const strWeights = strSizes.filter((l) => l.sparse).reduce((a, l) => a + l.numel, 0);
      assert.ok(Math.abs((t * strWeights) / all - 90) < 1e-9, 'STR target scaled to its layers so the model total is 90 %');
      const b = runs.find((r) => r.id === 'dnw-str-budget-90')!;
      assert.equal(b.after, 'str-90');
      assert.equal(b.config.use_budget, true);
      assert.equal(b.config.ignore_pretrained_weights, true);
      assert.equal(b.config.pretrained, path.join(str.runDir, 'checkpoints', 'last.safetensors'));
    }
    // each run's file: the base's options, the flags' and the sweep's, nothing else; it reloads as the run's config
    for (const r of runs) {
      const f = path.join(root, `${r.id}.yaml`);
      fs.writeFileSync(f, r.yaml);
      const back = loadConfig(['--config', f]);
      assert.equal(back.config.conv_type, r.config.conv_type);
      assert.equal(back.config.prune_rate, r.config.prune_rate);
      assert.equal(back.config.momentum, 0.8, 'flags after -- reach every run');
      assert.equal(back.config.last_layer_dense, true);
      assert.ok(!back.yamlKeys.has('nesterov') && back.yamlKeys.has('lr_policy'), 'options the base left unset stay unset');
    }
  });

  test('GMP window: the base config\'s when it prunes within the run, --gmp-window over both', () => {
    assert.deepEqual(gmpWindowOf(base({ init_prune_epoch: 1, final_prune_epoch: 2 })), [1, 2]);
    assert.deepEqual(gmpWindowOf(base()), [0, 3]);
    assert.deepEqual(gmpWindowOf(base({ init_prune_epoch: 1, final_prune_epoch: 2 }), [0, 1]), [0, 1]);
  });

  test('a restarted sweep accepts the same settings and options new since (at their defaults), not changed ones', () => {
    const c = base();
    const text = settingsYaml(c);
    assert.deepEqual(configChanges(text, settingsYaml({ ...c, workers: 7 })), []);
    assert.deepEqual(configChanges(text.replace(/^nesterov: .*\n/m, ''), text), [], 'an option missing earlier, now at its default');
    assert.deepEqual(configChanges(text, settingsYaml({ ...c, lr: 0.5 })), ['lr: 0.1 → 0.5']);
  });
});
