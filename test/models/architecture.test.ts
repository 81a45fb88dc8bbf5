import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createModel } from '../../src/models/registry.js';
import { torchShapeOf, MODULE_PREFIX } from '../../src/nn/state-dict.js';
import { modelSummary } from '../../src/sparsity/summary.js';
import { parseBudgetCsv } from '../../src/sparsity/budgets.js';
import type { Model } from '../../src/models/model.js';
import type { ConvTypeName } from '../../src/nn/conv/index.js';
import { useBackend } from '../helpers/tf.js';
import { repoPath } from '../helpers/paths.js';

/** state_dict keys and PyTorch shapes, computed without reading any tensor data. */
function keysAndShapes(m: Model): string[] {
  return [...m.stateEntries()].map((e) => {
    const shape = e.kind === 'counter' ? [] : torchShapeOf(e.spec.variable.shape, e.spec.layout);
    return `${MODULE_PREFIX}${e.name}\t[${shape.join(', ')}]`;
  });
}

function fixtureLines(name: string): string[] {
  return readFileSync(repoPath('test/fixtures/reference', name), 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('#'));
}

const TABLE_17_2: Record<string, { dense: number; str: number; convWeights: number; bn: number; thresholds: number; entries: [number, number]; macs: number }> = {
  ResNet50: { dense: 25556032, str: 25556086, convWeights: 25502912, bn: 53120, thresholds: 54, entries: [319, 373], macs: 4089184256 },
  ResNet18: { dense: 11688512, str: 11688533, convWeights: 11678912, bn: 9600, thresholds: 21, entries: [121, 142], macs: 1814073344 },
  MobileNetV1: { dense: 4230976, str: 4231004, convWeights: 4209088, bn: 21888, thresholds: 28, entries: [163, 191], macs: 568740352 },
};

describe('architectures match the reference (STR-SPEC §3, §17.2, Appendix A)', () => {
  before(() => useBackend('cpu'));

  for (const [arch, want] of Object.entries(TABLE_17_2)) {
    for (const convType of ['DenseConv', 'STRConv'] as ConvTypeName[]) {
      test(`§17.2 ${arch} ${convType}: parameters, state_dict entries, MACs`, () => {
        const m = createModel(arch, { convType, sInitValue: -3200, seed: 0 });
        const s = modelSummary(m, 224);
        const str = convType === 'STRConv';
        assert.equal(s.totalParams, str ? want.str : want.dense);
        assert.equal(s.convWeights, want.convWeights);
        assert.equal(s.bnParams, want.bn);
        assert.equal(s.thresholds, str ? want.thresholds : 0);
        assert.equal([...m.stateEntries()].length, want.entries[str ? 1 : 0]);
        assert.equal(s.macs, want.macs);
        assert.equal(s.effectiveMacs, want.macs, 'STR at sInit −3200 is exactly dense');
        m.dispose();
      });
    }
  }

  test('Appendix A.1: ResNet50-STR state_dict keys, order and PyTorch shapes', () => {
    const m = createModel('ResNet50', { convType: 'STRConv', sInitValue: -3200 });
    assert.deepEqual(keysAndShapes(m), fixtureLines('resnet50-str.state_dict.txt'));
    m.dispose();
  });

  test('Appendix A.2: MobileNetV1-STR state_dict keys, order and PyTorch shapes', () => {
    const m = createModel('MobileNetV1', { convType: 'STRConv', sInitValue: -12800 });
    assert.deepEqual(keysAndShapes(m), fixtureLines('mobilenetv1-str.state_dict.txt'));
    m.dispose();
  });

  test('ResNet50 per-layer weights and MACs equal the budget CSV (columns 2–3)', () => {
    const budget = parseBudgetCsv(repoPath('budgets/STR_Budgets_ResNet50.csv'));
    const m = createModel('ResNet50', { convType: 'STRConv', sInitValue: -3200 });
    const s = modelSummary(m, 224);
    assert.equal(budget.layers.length, 54);
    assert.deepEqual(
      s.rows.map((r) => [r.name, r.weights, r.macs]),
      budget.layers.map((l) => [MODULE_PREFIX + l.name, l.params, l.flops]),
    );
    // the CSV's Overall FLOPs add 2048·7·7 for the average pool
    assert.equal(s.macs + 2048 * 7 * 7, budget.overall!.flops);
    assert.equal(s.convWeights, budget.overall!.params);
    m.dispose();
  });

  for (const [arch, file] of [
    ['ResNet18', 'resnet18.layers.tsv'],
    ['MobileNetV1', 'mobilenetv1.layers.tsv'],
  ]) {
    test(`Appendix A.${arch === 'ResNet18' ? 4 : 3}: ${arch} per-conv geometry, weights and MACs`, () => {
      const m = createModel(arch, { convType: 'STRConv', sInitValue: -3200 });
      const s = modelSummary(m, 224);
      const got = s.rows.map((r) => [r.name.slice(MODULE_PREFIX.length), r.kernel, r.stride, r.groups, ...r.outHW, r.weights, r.macs].join('\t'));
      assert.deepEqual(got, fixtureLines(file));
      m.dispose();
    });
  }

  test('width multiplier and small stem change widths and geometry (not a no-op, quirk 7)', () => {
    const m = createModel('ResNet18', { convType: 'STRConv', widthMult: 0.25, stem: 'small', numClasses: 10, sInitValue: -4 });
    const s = modelSummary(m, 32);
    assert.equal(s.rows[0].name, 'module.conv1');
    assert.deepEqual(s.rows[0].shape, [16, 3, 3, 3]);
    assert.deepEqual(s.rows[0].outHW, [32, 32]);
    assert.deepEqual(s.rows.at(-1)!.shape, [10, 128, 1, 1]);
    assert.ok(!keysAndShapes(m).some((k) => k.includes('maxpool')));
    const mb = createModel('MobileNetV1', { widthMult: 0.5, numClasses: 10 });
    assert.deepEqual(modelSummary(mb, 224).rows.at(-1)!.shape, [10, 512, 1, 1]);
    m.dispose();
    mb.dispose();
  });

  test('first/last-layer-dense: stem without threshold, classifier with bias (quirk 8: num_classes honoured)', () => {
    const m = createModel('ResNet18', { convType: 'STRConv', firstLayerDense: true, lastLayerDense: true, numClasses: 7, sInitValue: -100 });
    const keys = keysAndShapes(m);
    assert.ok(keys.includes('module.conv1.weight\t[64, 3, 7, 7]'));
    assert.ok(!keys.some((k) => k.startsWith('module.conv1.sparseThreshold')));
    assert.ok(keys.includes('module.fc.weight\t[7, 512, 1, 1]'));
    assert.ok(keys.includes('module.fc.bias\t[7]'));
    m.dispose();
  });

  test('unknown architecture is a one-line user error', () => {
    assert.throws(() => createModel('ResNet9'), /--arch ResNet9: unknown architecture \(expected one of ResNet18, ResNet34, ResNet50, ResNet101, MobileNetV1\)/);
  });
});
