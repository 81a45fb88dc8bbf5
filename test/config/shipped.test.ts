import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { loadConfig } from '../../src/config/load.js';
import type { OptionKey } from '../../src/config/schema.js';
import { projectRoot } from './helpers.js';

const ROOT = projectRoot();
const shipped = (sub: string) =>
  readdirSync(join(ROOT, 'configs', sub))
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => `configs/${sub}/${f}`);

/** STR-SPEC §2: what every shipped largescale file sets, then the per-file differences. */
const COMMON = {
  data: '/mnt/data/', set: 'ImageNet', optimizer: 'sgd', lr: 0.256, lr_policy: 'cosine_lr', warmup_length: 5,
  epochs: 100, momentum: 0.875, batch_size: 256, label_smoothing: 0.1, bn_type: 'LearnedBatchNorm',
  init: 'kaiming_normal', mode: 'fan_in', nonlinearity: 'relu', workers: 20,
};
const REFERENCE: Record<string, Record<string, unknown>> = {
  'resnet50-dense': { arch: 'ResNet50', name: 'baseline', weight_decay: 0.000030517578125, conv_type: 'DenseConv' },
  'resnet50-str': {
    arch: 'ResNet50', name: 'STR_90.23', weight_decay: 0.00002251757813, conv_type: 'STRConv',
    sparse_function: 'sigmoid', sInit_value: -3200,
  },
  'resnet50-dnw': { arch: 'ResNet50', name: 'DNW_90', weight_decay: 0.00003051757813, conv_type: 'DNWConv', prune_rate: 0.9 },
  'resnet50-gmp': {
    arch: 'ResNet50', name: 'GMP_90', weight_decay: 0.00003051757813, conv_type: 'GMPConv', prune_rate: 0.9,
    init_prune_epoch: 20, final_prune_epoch: 79,
  },
  'mobilenetv1-dense': { arch: 'MobileNetV1', name: 'baseline', weight_decay: 0.00003051757813, conv_type: 'DenseConv' },
  'mobilenetv1-str': {
    arch: 'MobileNetV1', name: 'MobileNetV1_89.01', weight_decay: 0.00003751757813, conv_type: 'STRConv',
    sparse_function: 'sigmoid', sInit_value: -12800,
  },
};

describe('shipped configs', () => {
  const all = [...shipped('largescale'), ...shipped('smallscale')];

  test('the expected files exist', () => {
    assert.deepEqual(shipped('largescale'), [
      'configs/largescale/mobilenetv1-dense.yaml', 'configs/largescale/mobilenetv1-str.yaml',
      'configs/largescale/resnet18-dense.yaml', 'configs/largescale/resnet18-dnw.yaml',
      'configs/largescale/resnet18-gmp.yaml', 'configs/largescale/resnet18-str.yaml',
      'configs/largescale/resnet50-dense.yaml', 'configs/largescale/resnet50-dnw.yaml',
      'configs/largescale/resnet50-gmp.yaml', 'configs/largescale/resnet50-str.yaml',
    ]);
    assert.deepEqual(shipped('smallscale'), [
      'configs/smallscale/fmnist-full-recipe-dense.yaml', 'configs/smallscale/fmnist-full-recipe-str.yaml',
      'configs/smallscale/fmnist-recipe-dense.yaml', 'configs/smallscale/fmnist-recipe-str.yaml',
      'configs/smallscale/fmnist-resnet18-dense.yaml', 'configs/smallscale/fmnist-resnet18-dnw.yaml',
      'configs/smallscale/fmnist-resnet18-gmp.yaml', 'configs/smallscale/fmnist-resnet18-str.yaml',
    ]);
  });

  for (const file of all) {
    test(`${file} loads, validates and warns about nothing`, () => {
      const r = loadConfig(['--config', file], { cwd: ROOT });
      assert.deepEqual(r.warnings, []);
      assert.equal(r.config.config, file);
      // Every key the file writes is one of our canonical keys (the reference's snake_case spelling).
      const doc = yaml.load(readFileSync(join(ROOT, file), 'utf8')) as Record<string, unknown>;
      assert.deepEqual(Object.keys(doc).sort(), [...r.yamlKeys].sort());
    });
  }

  for (const [stem, diff] of Object.entries(REFERENCE)) {
    test(`${stem}.yaml holds exactly the reference values (STR-SPEC §2)`, () => {
      const file = `configs/largescale/${stem}.yaml`;
      const expected = { ...COMMON, ...diff };
      const doc = yaml.load(readFileSync(join(ROOT, file), 'utf8')) as Record<string, unknown>;
      assert.deepEqual(Object.keys(doc).sort(), Object.keys(expected).sort());
      for (const [k, v] of Object.entries(expected)) assert.equal(doc[k], v, `${stem}: ${k}`);
      const { config } = loadConfig(['--config', file], { cwd: ROOT });
      for (const [k, v] of Object.entries(expected)) assert.equal(config[k as OptionKey], v, `${stem}: ${k}`);
      // Keys the reference leaves out take their defaults (e.g. prune_rate 0.0 for dense/STR).
      if (!('prune_rate' in diff)) assert.equal(config.prune_rate, 0);
    });
  }

  test('resnet18 largescale configs: the ResNet50 recipe on ResNet18', () => {
    for (const v of ['dense', 'str', 'dnw', 'gmp']) {
      const r18 = loadConfig(['--config', `configs/largescale/resnet18-${v}.yaml`], { cwd: ROOT }).config;
      const r50 = loadConfig(['--config', `configs/largescale/resnet50-${v}.yaml`], { cwd: ROOT }).config;
      assert.equal(r18.arch, 'ResNet18');
      for (const k of ['lr', 'epochs', 'batch_size', 'momentum', 'weight_decay', 'conv_type', 'prune_rate', 'sInit_value',
        'init_prune_epoch', 'final_prune_epoch', 'label_smoothing'] as const) {
        assert.equal(r18[k], r50[k], `${v}: ${k}`);
      }
    }
  });

  test('smallscale configs: the embedded Fashion-MNIST subset with the small stem', () => {
    for (const v of ['dense', 'str', 'dnw', 'gmp']) {
      const c = loadConfig(['--config', `configs/smallscale/fmnist-resnet18-${v}.yaml`], { cwd: ROOT }).config;
      assert.equal(c.data, 'data/fashion-mnist');
      assert.equal(c.set, 'ImageFolder');
      assert.equal(c.arch, 'ResNet18');
      assert.equal(c.stem, 'small');
      assert.equal(c.width_mult, 0.25);
      assert.equal(c.image_size, 28);
      assert.equal(c.val_resize, 28);
      assert.equal(c.crop_scale, 0.25);
      assert.equal(c.num_classes, 10);
      assert.ok(c.epochs >= 1 && c.epochs <= 5, 'the quickstart must stay short');
    }
    const str = loadConfig(['--config', 'configs/smallscale/fmnist-resnet18-str.yaml'], { cwd: ROOT }).config;
    assert.equal(str.conv_type, 'STRConv');
    // A short run needs thresholds that are already active: sigmoid(sInit) well above float32 underflow.
    assert.ok(str.sInit_value > -20 && str.sInit_value < 0);
    assert.ok(str.weight_decay >= 1e-4);
    const gmp = loadConfig(['--config', 'configs/smallscale/fmnist-resnet18-gmp.yaml'], { cwd: ROOT }).config;
    assert.ok(gmp.final_prune_epoch >= gmp.init_prune_epoch && gmp.final_prune_epoch < gmp.epochs);
  });

  test('recipes: each STR recipe and its dense twin differ only in the conv type and the STR-only keys', () => {
    const recipes = shipped('smallscale').filter((f) => f.endsWith('-recipe-str.yaml'));
    assert.deepEqual(recipes, ['configs/smallscale/fmnist-full-recipe-str.yaml', 'configs/smallscale/fmnist-recipe-str.yaml']);
    const strOnly = new Set(['conv_type', 'name', 'sparse_function', 'sInit_value', 'sInit_type', 'st_decay', 'target_sparsity']);
    for (const file of recipes) {
      const str = loadConfig(['--config', file], { cwd: ROOT }).config;
      const dense = loadConfig(['--config', file.replace('-recipe-str.yaml', '-recipe-dense.yaml')], { cwd: ROOT }).config;
      assert.equal(str.conv_type, 'STRConv', file);
      assert.equal(dense.conv_type, 'DenseConv', file);
      assert.equal(str.lr_schedule_granularity, 'step', `${file}: the recipes anneal every step`);
      for (const k of Object.keys(str) as OptionKey[]) {
        if (!strOnly.has(k) && k !== 'config') assert.deepEqual(dense[k], str[k], `${file}: ${k} differs from the dense twin`);
      }
    }
  });
});
