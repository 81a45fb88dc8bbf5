/**
 * Budgets (STR-SPEC §13.3, §14, §17.11): --budget CSV columns on a full-size ResNet50, the
 * index-keyed SparsityDistributions file, --use-budget from an STR checkpoint, and clear errors
 * for layers a budget lacks. Expected values are re-derived here from the raw CSV text.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '../../src/tf.js';
import { useBackend } from '../helpers/tf.js';
import { createModel } from '../../src/models/registry.js';
import type { Model } from '../../src/models/model.js';
import { parseBudgetCsv, budgetColumn } from '../../src/sparsity/budgets.js';
import { applyBudget, budgetFromStr, strDensities, denseCompatibleStateDict } from '../../src/sparsity/transfer.js';
import { modelSummary, type ModelSummary } from '../../src/sparsity/summary.js';
import { layerStats, reportedLayers } from '../../src/sparsity/stats.js';
import { GMPConv } from '../../src/nn/conv/gmp.js';
import { stateDict } from '../../src/nn/state-dict.js';
import type { StateDict } from '../../src/io/host-tensor.js';
import { UserError } from '../../src/util/errors.js';
import { BUDGETS, buildModel, randomizeState, tmpDir } from './helpers.js';

const STR_BUDGETS = path.join(BUDGETS, 'STR_Budgets_ResNet50.csv');
const DISTRIBUTIONS = path.join(BUDGETS, 'SparsityDistributions_90_ResNet50.csv');

/** The raw CSV: rows of cells, BOM and CRLF removed. */
function rawCsv(file: string): string[][] {
  return fs.readFileSync(file, 'utf8').replace(/^\uFEFF/, '').split('\r\n').filter(Boolean).map((l) => l.split(','));
}

/** Per-layer sparsity % of the named column of STR_Budgets_ResNet50.csv, by module name. */
function strBudgetColumn(column: string): Map<string, number> {
  const rows = rawCsv(STR_BUDGETS);
  const j = rows.find((r) => r[0] === 'Overall')!.indexOf(column);
  assert.ok(j >= 3, `column ${column}`);
  return new Map(rows.filter((r) => r[0].startsWith('Layer ')).map((r) => [r[0].replace(/^Layer \d+ - /, ''), Number(r[j])]));
}

function userError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof UserError, `expected a UserError, got ${String(e)}`);
    assert.ok(!e.message.includes('\n'), 'one line');
    return e.message;
  }
  assert.fail('expected an error');
}

/** Every layer has exactly ⌊(sparsity/100)·numel⌋ zeros (float64, like Python's int(p*n)). */
function assertZeros(s: ModelSummary, percentByLayer: Map<string, number>): void {
  assert.equal(s.rows.length, percentByLayer.size);
  for (const r of s.rows) {
    const p = percentByLayer.get(r.name.replace(/^module\./, ''));
    assert.ok(p !== undefined, r.name);
    assert.equal(r.weights - r.nonzeros, Math.floor((p / 100) * r.weights), `${r.name} at ${p} %`);
  }
}

const dir = tmpDir('budget');
after(() => fs.rmSync(dir, { recursive: true, force: true }));
before(async () => {
  await useBackend('cpu');
});

describe('STR_Budgets_ResNet50.csv on a full-size ResNet50', () => {
  test('DNW, column 90.23: ⌊rate·numel⌋ zeros per layer, total 90.23 %, 2.49M non-zeros, 342.6M effective MACs (§17.11)', (t) => {
    const model = createModel('ResNet50', { convType: 'DNWConv', seed: 1 });
    try {
      const table = parseBudgetCsv(STR_BUDGETS, reportedLayers(model).map(([n]) => n));
      const applied = applyBudget(model, budgetColumn(table, '90.23', STR_BUDGETS), `--budget ${STR_BUDGETS}`);
      assert.equal(applied.length, 54);
      const s = modelSummary(model, 224);
      assertZeros(s, strBudgetColumn('90.23'));
      t.diagnostic(`total sparsity ${s.sparsity.toFixed(4)} %, non-zeros ${s.nonzeros}, effective MACs ${s.effectiveMacs}, dense MACs ${s.macs}`);
      assert.equal(s.convWeights, 25_502_912);
      assert.equal(s.macs, 4_089_184_256);
      assert.equal(s.sparsity.toFixed(2), '90.23');
      assert.equal((s.nonzeros / 1e6).toFixed(2), '2.49');
      assert.equal((s.effectiveMacs / 1e6).toFixed(1), '342.6');
    } finally {
      model.dispose();
    }
  });
});

describe('SparsityDistributions_90_ResNet50.csv (layers by index) on a full-size ResNet50 GMP at its full rate', () => {
  let model: Model;
  before(() => {
    model = createModel('ResNet50', { convType: 'GMPConv', seed: 2 });
  });
  after(() => model.dispose());

  const rows = rawCsv(DISTRIBUTIONS);
  // spec §14.2: overall sparsity / effective FLOPs (conv + fc) of each column
  const expected: Record<string, [string, string]> = { STR: ['90.23', '342.6'], Uniform: ['90.00', '408.9'], ERK: ['90.07', '990.5'] };
  for (const column of Object.keys(expected)) {
    test(`--budget-column ${column}`, () => {
      const names = reportedLayers(model).map(([n]) => n);
      const table = parseBudgetCsv(DISTRIBUTIONS, names);
      applyBudget(model, budgetColumn(table, column, DISTRIBUTIONS), `--budget ${DISTRIBUTIONS}`);
      for (const [, c] of model.convLayers()) {
        const g = c as GMPConv;
        assert.equal(g.currPruneRate, 0, 'setting a budget resets GMP to 0, like the reference');
        g.setCurrPruneRate(g.pruneRate); // where the schedule ends
      }
      const j = rows[0].indexOf(column);
      const percent = new Map(rows.slice(1).map((r) => [names[Number(r[0]) - 1], Number(r[j].replace('%', ''))]));
      const s = modelSummary(model, 224);
      assertZeros(s, percent);
      assert.equal(s.sparsity.toFixed(2), expected[column][0]);
      assert.equal((s.effectiveMacs / 1e6).toFixed(1), expected[column][1]);
      if (column === 'STR') assert.deepEqual(percent, strBudgetColumn('90.23'), 'STR column = 90.23 column of STR_Budgets');
    });
  }
});

describe('budget errors', () => {
  test('a layer missing from the budget is one line naming it', () => {
    const lines = fs.readFileSync(STR_BUDGETS, 'utf8').split('\r\n');
    const cut = path.join(dir, 'cut.csv');
    fs.writeFileSync(cut, lines.filter((l) => !l.startsWith('Layer 7 - ')).join('\r\n'));
    const { model } = buildModel(['--arch', 'ResNet50', '--width-mult', '0.0625', '--conv-type', 'DNWConv', '--num-classes', '10']);
    const table = parseBudgetCsv(cut, reportedLayers(model).map(([n]) => n));
    const m = userError(() => applyBudget(model, budgetColumn(table, '90.23', cut), `--budget ${cut}`));
    assert.match(m, /^--budget .*cut\.csv: no budget for layer layer1\.1\.conv2 \(the budget has 53 layers: conv1, layer1\.0\.conv1, layer1\.0\.conv2, …\)$/);
    model.dispose();
  });

  test('a ResNet50 budget on a MobileNetV1 names the first layer it lacks; STR models take no budget', () => {
    const { model } = buildModel(['--arch', 'MobileNetV1', '--width-mult', '0.125', '--conv-type', 'DNWConv', '--num-classes', '10']);
    const m = userError(() => applyBudget(model, budgetColumn(parseBudgetCsv(STR_BUDGETS), '90.23'), '--budget b.csv'));
    assert.match(m, /^--budget b\.csv: no budget for layer model\.0\.0 /);
    model.dispose();
    const { model: str } = buildModel(['--arch', 'ResNet18', '--width-mult', '0.125', '--conv-type', 'STRConv', '--num-classes', '10']);
    assert.match(userError(() => applyBudget(str, new Map(), '--budget b.csv')), /has none$/);
    str.dispose();
  });
});

describe('--use-budget from an STR checkpoint (§13.3)', () => {
  let strSd: StateDict;
  let denseCompat: StateDict;
  /** nz/numel of each layer's effective weight, computed here in float32 without tf. */
  const density = new Map<string, number>();

  before(() => {
    const { model } = buildModel(['--arch', 'ResNet18', '--width-mult', '0.125', '--conv-type', 'STRConv', '--num-classes', '10', '--seed', '4']);
    randomizeState(model, 'budget-source');
    strSd = stateDict(model);
    denseCompat = denseCompatibleStateDict(model);
    model.dispose();
    for (const [k, s] of strSd) {
      if (!k.endsWith('.sparseThreshold')) continue;
      const w = strSd.get(k.replace(/sparseThreshold$/, 'weight'))!.data as Float32Array;
      const tau = Math.fround(1 / (1 + Math.exp(-(s.data[0] as number))));
      let nz = 0;
      for (const v of w) if (Math.fround(Math.abs(v) - tau) > 0) nz++;
      density.set(k.replace(/^module\./, '').replace(/\.sparseThreshold$/, ''), nz / w.length);
    }
    assert.equal(density.size, 21);
  });

  for (const conv of ['DNWConv', 'GMPConv'] as const) {
    test(`${conv}: every layer gets exactly ⌊(1 − density)·numel⌋ zeros`, () => {
      const { model } = buildModel(['--arch', 'ResNet18', '--width-mult', '0.125', '--conv-type', conv, '--num-classes', '10', '--seed', '5']);
      const applied = applyBudget(model, budgetFromStr(strSd, 'str.pth'), '--use-budget str.pth');
      assert.equal(applied.length, 21);
      for (const [name, rate] of applied) assert.equal(rate, 1 - density.get(name)!, name);
      if (conv === 'GMPConv') for (const [, c] of model.convLayers()) (c as GMPConv).setCurrPruneRate((c as GMPConv).pruneRate);
      for (const st of layerStats(model)) {
        const d = density.get(st.name.replace(/^module\./, ''))!;
        assert.equal(st.zeros, Math.floor((1 - d) * st.numel), st.name);
      }
      model.dispose();
    });
  }

  test('the dense-compatible form of the checkpoint gives the same budget (its zeros are the pruned weights)', () => {
    assert.ok(![...denseCompat.keys()].some((k) => k.endsWith('.sparseThreshold')));
    assert.deepEqual(strDensities(denseCompat), strDensities(strSd));
    assert.deepEqual(budgetFromStr(denseCompat), budgetFromStr(strSd));
  });

  test('a checkpoint with neither thresholds nor zero weights is refused', () => {
    const { model } = buildModel(['--arch', 'ResNet18', '--width-mult', '0.125', '--conv-type', 'DenseConv', '--num-classes', '10']);
    const sd = stateDict(model);
    model.dispose();
    assert.match(userError(() => budgetFromStr(sd, 'dense.pth')), /^--use-budget dense\.pth: no sparseThreshold entries and no zero conv weights/);
  });

  test('an STR checkpoint lacking a DNW layer (its stem was dense) is one line naming the layer', () => {
    const partial = new Map([...strSd].filter(([k]) => k !== 'module.conv1.sparseThreshold'));
    const { model } = buildModel(['--arch', 'ResNet18', '--width-mult', '0.125', '--conv-type', 'DNWConv', '--num-classes', '10']);
    assert.match(userError(() => applyBudget(model, budgetFromStr(partial), '--use-budget s.pth')), /^--use-budget s\.pth: no budget for layer conv1 \(the budget has 20 layers/);
    model.dispose();
  });
});
