/**
 * --evaluate with --pretrained (STR-SPEC §13.5) through runTraining on a tiny synthetic
 * ImageFolder: top-1/top-5, the per-layer table, total sparsity, non-zeros and effective MACs;
 * STR and dense-compatible models evaluate identically; --use-budget / --budget reach the model.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { useBackend } from '../helpers/tf.js';
import { runTraining } from '../../src/train/run.js';
import { writeSyntheticImageFolder } from '../../src/data/synthetic.js';
import { saveCheckpoint, readCheckpoint } from '../../src/train/checkpoint.js';
import { exportCheckpoint } from '../../src/cli/export.js';
import { modelFromCheckpoint } from '../../src/report/checkpoint-model.js';
import { modelSummary, formatSummary } from '../../src/sparsity/summary.js';
import { layerStats } from '../../src/sparsity/stats.js';
import { strDensities } from '../../src/sparsity/transfer.js';
import { stateDict } from '../../src/nn/state-dict.js';
import type { Model } from '../../src/models/model.js';
import { buildModel, configOf, randomizeState, tmpDir, fixture, BUDGETS, META } from './helpers.js';

const dir = tmpDir('evaluate');
const data = path.join(dir, 'data');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const SMALL = ['--arch', 'ResNet18', '--width-mult', '0.125', '--num-classes', '10'];
let strCkpt: string;
let densePth: string;

before(async () => {
  await useBackend('cpu');
  await writeSyntheticImageFolder({ out: data, classes: 10, perClass: 1, valPerClass: 2, size: [40, 40], seed: 3, log: () => {} });
  const { model, config } = buildModel([...SMALL, '--conv-type', 'STRConv', '--seed', '11']);
  randomizeState(model, 'evaluate');
  strCkpt = path.join(dir, 'str.safetensors');
  await saveCheckpoint(strCkpt, { model, meta: { ...META, arch: 'ResNet18' }, config });
  model.dispose();
  densePth = path.join(dir, 'str_dense.pth');
  await exportCheckpoint({ checkpoint: strCkpt, out: densePth, dense: true, log: () => {} });
});

async function evaluate(argv: string[], onModel?: (m: Model) => void): Promise<{ lines: string[]; evalLine: string }> {
  const lines: string[] = [];
  const config = configOf([
    ...argv,
    '--evaluate', '--data', data, '--set', 'ImageFolder', '--image-size', '32', '--batch-size', '8', '--workers', '0',
    '--log-dir', path.join(dir, 'runs'), '--progress', 'none',
  ]);
  await runTraining({ config, log: (l) => lines.push(...l.split('\n')), onModel: async (m) => onModel?.(m) });
  const evalLine = lines.find((l) => l.startsWith('=> evaluation: '));
  assert.ok(evalLine, lines.join('\n'));
  assert.match(evalLine, /^=> evaluation: top-1 \d+\.\d\d {2}top-5 \d+\.\d\d {2}loss \d+\.\d{4}$/);
  return { lines, evalLine };
}

/** The printed table: from the "<arch> @ 32x32" line to the MACs line. */
function printedSummary(lines: string[]): string {
  const a = lines.findIndex((l) => / @ 32x32$/.test(l));
  const b = lines.findIndex((l) => l.startsWith('multiply-accumulates: '));
  assert.ok(a >= 0 && b > a, lines.join('\n'));
  return lines.slice(a, b + 1).join('\n');
}

describe('--evaluate --pretrained', () => {
  test('an STR checkpoint: top-1/top-5 and the full sparsity table of the loaded model', async () => {
    const { lines } = await evaluate([...SMALL, '--conv-type', 'STRConv', '--pretrained', strCkpt, '--name', 'str']);
    assert.ok(lines.some((l) => /^=> loaded 142 entries from .*str\.safetensors$/.test(l)), lines.join('\n'));
    const { model } = modelFromCheckpoint(await readCheckpoint(strCkpt));
    const want = modelSummary(model, 32);
    model.dispose();
    assert.equal(printedSummary(lines), formatSummary(want));
    const text = printedSummary(lines);
    assert.equal(text.split('\n').filter((l) => /^\s*\d+ {2}module\./.test(l)).length, 21, 'one row per conv');
    assert.match(text, new RegExp(`non-zero conv/fc weights: ${want.nonzeros.toLocaleString('en-US')} .*sparsity ${want.sparsity.toFixed(2)} %`));
    assert.ok(want.sparsity > 5 && want.effectiveMacs < want.macs);
  });

  test('its dense-compatible .pth in a DenseConv model evaluates identically (accuracy, loss, non-zeros, MACs)', async () => {
    const str = await evaluate([...SMALL, '--conv-type', 'STRConv', '--pretrained', strCkpt, '--name', 'str2']);
    const dense = await evaluate([...SMALL, '--conv-type', 'DenseConv', '--pretrained', densePth, '--name', 'dense']);
    assert.equal(dense.evalLine, str.evalLine);
    // every column but the conv type and the threshold (τ for STR, 0 for dense)
    const rows = (t: string) =>
      t.split('\n').filter((l) => /^\s*\d+ {2}module\./.test(l)).map((l) => l.trim().split(/\s+/).filter((_, i) => i !== 2 && i !== 9));
    const s = printedSummary(str.lines);
    const d = printedSummary(dense.lines);
    assert.equal(rows(s).length, 21);
    assert.deepEqual(rows(d), rows(s));
    for (const key of ['non-zero conv/fc weights: ', 'multiply-accumulates: ']) {
      assert.equal(d.split('\n').find((l) => l.startsWith(key)), s.split('\n').find((l) => l.startsWith(key)), key);
    }
  });

  test('the torch-made reference checkpoint and its torch-made dense form evaluate identically', async () => {
    const ref = ['--arch', 'ResNet18', '--width-mult', String(1 / 64), '--num-classes', '10'];
    const str = await evaluate([...ref, '--conv-type', 'STRConv', '--pretrained', fixture('epoch_1.state'), '--name', 'fx-str']);
    const dense = await evaluate([...ref, '--conv-type', 'DenseConv', '--pretrained', fixture('model_best.pth'), '--name', 'fx-dense']);
    const acc = (l: string) => l.replace(/ {2}loss .*$/, '');
    assert.equal(acc(dense.evalLine), acc(str.evalLine));
    const nz = (lines: string[]) => printedSummary(lines).split('\n').find((l) => l.startsWith('non-zero conv/fc weights: '));
    assert.equal(nz(dense.lines), nz(str.lines));
  });
});

describe('budgets through runTraining', () => {
  test('--use-budget --ignore-pretrained-weights: fresh DNW weights, prune rates 1 − STR density', async () => {
    const densities = strDensities((await readCheckpoint(strCkpt)).stateDict);
    const fresh = buildModel([...SMALL, '--conv-type', 'DNWConv', '--seed', '21']).model;
    const freshSd = stateDict(fresh);
    fresh.dispose();
    let checked = false;
    const { lines } = await evaluate([...SMALL, '--conv-type', 'DNWConv', '--seed', '21', '--pretrained', strCkpt, '--use-budget', '--ignore-pretrained-weights', '--name', 'budget'], (m) => {
      for (const [k, v] of stateDict(m)) assert.deepEqual(v.data, freshSd.get(k)!.data, `${k}: not loaded`);
      for (const s of layerStats(m)) assert.equal(s.zeros, Math.floor((1 - densities.get(`${s.name}.weight`)!) * s.numel), s.name);
      checked = true;
    });
    assert.ok(checked);
    assert.ok(lines.includes(`=> budget from ${strCkpt}: 21 layers`), lines.join('\n'));
    assert.ok(!lines.some((l) => l.startsWith('=> loaded ')), 'no weights loaded');
  });

  test('--budget STR_Budgets_ResNet50.csv --budget-column 90.23 on a small ResNet50 DNW', async () => {
    const csv = path.join(BUDGETS, 'STR_Budgets_ResNet50.csv');
    const rows = fs.readFileSync(csv, 'utf8').replace(/^\uFEFF/, '').split('\r\n').map((l) => l.split(','));
    const j = rows.find((r) => r[0] === 'Overall')!.indexOf('90.23');
    const percent = new Map(rows.filter((r) => r[0].startsWith('Layer ')).map((r) => [`module.${r[0].replace(/^Layer \d+ - /, '')}`, Number(r[j])]));
    let n = 0;
    const { lines } = await evaluate(['--arch', 'ResNet50', '--width-mult', '0.0625', '--stem', 'small', '--num-classes', '10', '--conv-type', 'DNWConv', '--budget', csv, '--budget-column', '90.23', '--name', 'r50'], (m) => {
      for (const s of layerStats(m)) {
        assert.equal(s.zeros, Math.floor((percent.get(s.name)! / 100) * s.numel), s.name);
        n++;
      }
    });
    assert.equal(n, 54);
    assert.ok(lines.includes(`=> budget column 90.23 of ${csv}: 54 layers`), lines.join('\n'));
  });
});
