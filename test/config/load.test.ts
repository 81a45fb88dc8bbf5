import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { configStem, loadConfig, renderHelp, settingsYaml, wantsHelp } from '../../src/config/load.js';
import {
  OPTIONS,
  OPTION_GROUPS,
  OPTION_KEYS,
  QUIRK_FIXES,
  longSpellings,
  optionSpec,
  type OptionKey,
  type RunConfig,
} from '../../src/config/schema.js';
import { tempTree, userError } from './helpers.js';

const load = (argv: string[], cwd?: string) => loadConfig(argv, { cwd });

describe('defaults', () => {
  test('no arguments: every option has its table default; derived ones are resolved', () => {
    const { config, explicit, yamlKeys, configPath } = load([]);
    assert.equal(configPath, undefined);
    assert.equal(explicit.size, 0);
    assert.equal(yamlKeys.size, 0);
    for (const key of OPTION_KEYS) {
      if (key === 'name' || key === 'val_resize') continue; // derived
      assert.deepEqual(config[key], optionSpec(key).default, key);
    }
    assert.equal(config.name, 'ResNet18_DenseConv');
    // The reference's defaults (§1.2), spot-checked against the spec rather than the table.
    assert.equal(config.epochs, 90);
    assert.equal(config.batch_size, 256);
    assert.equal(config.lr, 0.1);
    assert.equal(config.momentum, 0.9);
    assert.equal(config.weight_decay, 1e-4);
    assert.equal(config.final_prune_epoch, -100);
    assert.equal(config.multistep_lr_adjust, 30);
    assert.equal(config.multistep_lr_gamma, 0.1);
    assert.equal(config.save_every, -1);
    assert.equal(config.workers, 20);
    assert.equal(config.data, '/mnt/disk1/datasets');
    // Deliberate changes (quirks 3, 8, 13).
    assert.equal(config.conv_type, 'DenseConv');
    assert.equal(config.bn_type, 'LearnedBatchNorm');
    assert.equal(config.num_classes, undefined);
    assert.equal(config.sInit_value, -3200);
    assert.equal(config.multigpu, undefined);
  });

  test('val_resize follows image_size (256 for 224) unless set', () => {
    assert.equal(load([]).config.val_resize, 256);
    assert.equal(load(['--image-size', '32']).config.val_resize, 37);
    assert.equal(load(['--image-size', '64']).config.val_resize, 73);
    assert.equal(load(['--image-size', '32', '--val-resize', '32']).config.val_resize, 32);
  });

  test('name defaults to <arch>_<conv_type>', () => {
    assert.equal(load(['--arch', 'ResNet50', '--conv-type', 'STRConv']).config.name, 'ResNet50_STRConv');
  });
});

describe('precedence: CLI present > YAML > default', () => {
  const dir = tempTree({
    'configs/p.yaml': 'lr: 0.5\nepochs: 7\nnesterov: true\nname: fromyaml\n',
  });

  test('YAML overrides defaults, CLI overrides YAML', () => {
    const r = load(['--config', 'configs/p.yaml', '--epochs', '3'], dir);
    assert.equal(r.configPath, 'configs/p.yaml');
    assert.equal(r.config.config, 'configs/p.yaml');
    assert.equal(r.config.lr, 0.5); // YAML
    assert.equal(r.config.epochs, 3); // CLI beats YAML
    assert.equal(r.config.nesterov, true); // YAML
    assert.equal(r.config.momentum, 0.9); // default
    assert.equal(r.config.name, 'fromyaml');
    assert.deepEqual([...r.explicit].sort(), ['config', 'epochs']);
    assert.deepEqual([...r.yamlKeys].sort(), ['epochs', 'lr', 'name', 'nesterov']);
  });

  test('presence decides: a flag equal to the default still beats the YAML', () => {
    const r = load(['--config', 'configs/p.yaml', '--lr', '0.1', '--nesterov=false'], dir);
    assert.equal(r.config.lr, 0.1);
    assert.equal(r.config.nesterov, false);
  });

  test('the config may come anywhere on the command line, flags before it still win', () => {
    const r = load(['--lr=0.3', '--config=configs/p.yaml'], dir);
    assert.equal(r.config.lr, 0.3);
    assert.equal(r.config.epochs, 7);
  });

  test('a repeated flag: the last one wins, whatever its spelling', () => {
    assert.equal(load(['--lr', '0.2', '--learning-rate', '0.4']).config.lr, 0.4);
    assert.equal(load(['-b', '8', '--batch-size', '16']).config.batch_size, 16);
  });
});

/** A valid non-default value for an option, as a CLI token and the parsed value. */
function sample(key: OptionKey): { token: string; value: unknown } {
  const spec = optionSpec(key);
  switch (spec.kind) {
    case 'bool':
      return { token: '', value: !(spec.default as boolean) };
    case 'int':
      if (key === 'image_size') return { token: '64', value: 64 };
      if (key === 'val_resize') return { token: '300', value: 300 };
      return { token: '3', value: 3 };
    case 'float':
      return { token: '0.25', value: 0.25 };
    case 'enum': {
      const c = spec.choices!.find((x) => x !== spec.default) ?? spec.choices![0]!;
      return { token: c, value: c };
    }
    case 'int-list':
      return { token: '0,1', value: [0, 1] };
    case 'string':
      return { token: 'some/thing', value: 'some/thing' };
  }
}

// Options whose sample value needs companions to pass the cross-option checks.
const COMPANIONS: Partial<Record<OptionKey, string[]>> = {
  budget: ['--budget-column', '90.23', '--conv-type', 'DNWConv'],
  budget_column: ['--budget', 'b.csv', '--conv-type', 'DNWConv'],
  use_budget: ['--pretrained', 'x.pth', '--conv-type', 'GMPConv'],
  dense_conv_model: ['--pretrained', 'x.pth'],
  first_layer_dense: [],
  warmup_length: ['--lr-schedule-granularity', 'step'],
  target_sparsity: ['--conv-type', 'STRConv'],
};

describe('every spelling of every option', () => {
  for (const key of OPTION_KEYS) {
    if (key === 'config') continue;
    test(key, () => {
      const { token, value } = sample(key);
      const spec = optionSpec(key);
      const extra = COMPANIONS[key] ?? [];
      const spellings = [...longSpellings(key).map((s) => `--${s}`), ...(spec.aliases ?? []).filter((s) => s.length === 1).map((s) => `-${s}`)];
      assert.ok(spellings.includes(`--${spec.flag}`));
      for (const s of spellings) {
        // A bare boolean flag means true; save_last (default true) is turned off with =false.
        const argv = spec.kind !== 'bool' ? [s, token, ...extra] : value ? [s, ...extra] : [`${s}=false`, ...extra];
        const r = load(argv);
        if (key === 'first_layer_dense') assert.equal(r.config.first_layer_type, 'DenseConv');
        assert.deepEqual(r.config[key], value, `${argv.join(' ')}`);
        assert.ok(r.explicit.has(key), s);
        if (spec.kind !== 'bool') {
          assert.deepEqual(load([`${s}=${token}`, ...extra]).config[key], value, `${s}=${token}`);
        }
      }
      // Same option through YAML, under every long spelling.
      for (const s of longSpellings(key)) {
        const dir = tempTree({ 'c.yaml': `${s}: ${spec.kind === 'bool' ? String(value) : spec.kind === 'int-list' ? '[0, 1]' : token}\n` });
        const r = load(['--config', 'c.yaml', ...extra], dir);
        assert.deepEqual(r.config[key], value, `YAML ${s}`);
        assert.ok(r.yamlKeys.has(key));
      }
    });
  }

  test("the reference's spellings", () => {
    const r = load([
      '--sInit-value', '-5', '--sInit-type', 'constant', '--warmup_length', '2', '--save_every', '4',
      '--init_prune_epoch', '1', '--final_prune_epoch', '9', '--learning-rate', '0.3', '--wd', '5e-4',
    ]);
    assert.equal(r.config.sInit_value, -5);
    assert.equal(r.config.warmup_length, 2);
    assert.equal(r.config.save_every, 4);
    assert.equal(r.config.init_prune_epoch, 1);
    assert.equal(r.config.final_prune_epoch, 9);
    assert.equal(r.config.lr, 0.3);
    assert.equal(r.config.weight_decay, 5e-4);
  });

  test('short flags -a -j -b -p -e, separate, attached and grouped (quirk 1)', () => {
    const r = load(['-a', 'ResNet50', '-j', '4', '-b', '32', '-p', '5', '-e']);
    assert.deepEqual(
      [r.config.arch, r.config.workers, r.config.batch_size, r.config.print_freq, r.config.evaluate],
      ['ResNet50', 4, 32, 5, true],
    );
    const g = load(['-j2', '-eb64']);
    assert.deepEqual([g.config.workers, g.config.evaluate, g.config.batch_size], [2, true, 64]);
    assert.deepEqual([...g.explicit].sort(), ['batch_size', 'evaluate', 'workers']);
  });

  test('enum values are matched case-insensitively and stored canonically', () => {
    const r = load(['--arch', 'mobilenetv1', '--conv-type', 'strconv', '--lr-policy', 'COSINE_LR']);
    assert.equal(r.config.arch, 'MobileNetV1');
    assert.equal(r.config.conv_type, 'STRConv');
    assert.equal(r.config.lr_policy, 'cosine_lr');
  });
});

describe('negative numbers and booleans', () => {
  test('negative numbers as separate tokens (quirk 2)', () => {
    assert.equal(load(['--sInit-value', '-100']).config.sInit_value, -100);
    assert.equal(load(['--sinit-value', '-1e-4']).config.sInit_value, -1e-4);
    assert.equal(load(['--sInit-value', '-.5']).config.sInit_value, -0.5);
    assert.equal(load(['--sInit-value', '-12800', '--lr', '0.2']).config.lr, 0.2);
    assert.equal(load(['--final-prune-epoch', '-5']).config.final_prune_epoch, -5);
    assert.equal(load(['--save-every', '-1']).config.save_every, -1);
    assert.equal(load(['--sInit-value=-5']).config.sInit_value, -5);
  });

  test('--no-bn-decay is the reference flag no_bn_decay, not a negation', () => {
    const r = load(['--no-bn-decay']);
    assert.equal(r.config.no_bn_decay, true);
    assert.deepEqual([...r.explicit], ['no_bn_decay']);
    assert.equal(load(['--no_bn_decay']).config.no_bn_decay, true);
    assert.equal(load(['--no-bn-decay=false']).config.no_bn_decay, false);
  });

  test('--no-save-last turns save_last off; other --no-X flags are errors', () => {
    assert.equal(load([]).config.save_last, true);
    assert.equal(load(['--no-save-last']).config.save_last, false);
    assert.equal(load(['--save-last=false']).config.save_last, false);
    userError(() => load(['--no-save-last', '--save-last']), '--save-last', '--no-save-last');
    userError(() => load(['--no-nesterov']), 'unknown flag --no-nesterov', '--nesterov=false');
  });

  test('boolean values: bare, =true/false, a separate true/false token', () => {
    assert.equal(load(['--nesterov']).config.nesterov, true);
    assert.equal(load(['--nesterov=true']).config.nesterov, true);
    assert.equal(load(['--nesterov=no']).config.nesterov, false);
    assert.equal(load(['--nesterov', 'false']).config.nesterov, false);
    assert.equal(load(['--nesterov', '--lr', '0.2']).config.lr, 0.2);
    assert.equal(load(['-e=false']).config.evaluate, false);
    assert.equal(load(['-e=1']).config.evaluate, true);
  });
});

describe('multistep flags and the YAML keys lr_gamma / lr_adjust (quirk 4)', () => {
  test('flags work; gamma is a float', () => {
    const r = load(['--multistep-lr-gamma', '0.5', '--multistep-lr-adjust', '10']);
    assert.equal(r.config.multistep_lr_gamma, 0.5);
    assert.equal(r.config.multistep_lr_adjust, 10);
  });

  test('YAML lr_gamma / lr_adjust set the same options', () => {
    const dir = tempTree({ 'm.yaml': 'lr_policy: multistep_lr\nlr_gamma: 0.2\nlr_adjust: 15\n' });
    const r = load(['--config', 'm.yaml'], dir);
    assert.equal(r.config.multistep_lr_gamma, 0.2);
    assert.equal(r.config.multistep_lr_adjust, 15);
    assert.ok(r.yamlKeys.has('multistep_lr_gamma') && r.yamlKeys.has('multistep_lr_adjust'));
    assert.equal(load(['--config', 'm.yaml', '--multistep-lr-gamma', '0.3'], dir).config.multistep_lr_gamma, 0.3);
  });

  test('both spellings in one YAML is an error', () => {
    const dir = tempTree({ 'm.yaml': 'lr_gamma: 0.2\nmultistep_lr_gamma: 0.3\n' });
    userError(() => load(['--config', 'm.yaml'], dir), 'm.yaml', "'lr_gamma'", "'multistep_lr_gamma'");
  });
});

describe('YAML typing (quirk 32)', () => {
  test('1e-4 is a number; numeric strings work for numeric keys; yes/no for booleans; numbers for strings', () => {
    const dir = tempTree({
      't.yaml': [
        'weight_decay: 1e-4', "lr: '0.2'", 'epochs: "12"', 'nesterov: yes', 'no_bn_decay: Off',
        'budget: b.csv', 'budget_column: 90.23', 'conv_type: DNWConv', 'name: 7', 'multigpu: "0,1"',
        'label_smoothing: null', 'st_decay:', '',
      ].join('\n'),
    });
    const { config } = load(['--config', 't.yaml'], dir);
    assert.equal(config.weight_decay, 1e-4);
    assert.equal(config.lr, 0.2);
    assert.equal(config.epochs, 12);
    assert.equal(config.nesterov, true);
    assert.equal(config.no_bn_decay, false);
    assert.equal(config.budget_column, '90.23');
    assert.equal(config.name, '7');
    assert.deepEqual(config.multigpu, [0, 1]);
    assert.equal(config.label_smoothing, undefined);
    assert.equal(config.st_decay, undefined);
  });

  test('multigpu as a YAML list or a single number', () => {
    const dir = tempTree({ 'a.yaml': 'multigpu: [2, 3]\nbatch_size: 8\n', 'b.yaml': 'multigpu: 1\n' });
    assert.deepEqual(load(['--config', 'a.yaml'], dir).config.multigpu, [2, 3]);
    assert.deepEqual(load(['--config', 'b.yaml'], dir).config.multigpu, [1]);
  });

  test('empty YAML file and a comment-only file are empty configs', () => {
    const dir = tempTree({ 'e.yaml': '', 'c.yaml': '# nothing\n' });
    assert.equal(load(['--config', 'e.yaml'], dir).config.epochs, 90);
    assert.equal(load(['--config', 'c.yaml'], dir).yamlKeys.size, 0);
  });

  test('a UTF-8 BOM and CRLF line endings are fine', () => {
    const dir = tempTree({ 'w.yaml': '\ufeffepochs: 5\r\nlr: 0.3\r\n' });
    const { config } = load(['--config', 'w.yaml'], dir);
    assert.deepEqual([config.epochs, config.lr], [5, 0.3]);
  });
});

describe('errors: one line naming the flag, or the file and the key', () => {
  const dir = tempTree({
    'configs/x.yaml': 'lrr: 0.1\n',
    'configs/ten.yaml': 'epochs: ten\n',
    'configs/frac.yaml': 'epochs: 2.5\n',
    'configs/range.yaml': 'prune_rate: 1.5\n',
    'configs/neg.yaml': 'batch_size: 0\n',
    'configs/enum.yaml': 'arch: ResNet99\n',
    'configs/bool.yaml': 'nesterov: maybe\n',
    'configs/nullreq.yaml': 'epochs:\n',
    'configs/syntax.yaml': 'epochs: 5\nlr: [0.1\nname: x\n',
    'configs/dup.yaml': 'epochs: 5\nepochs: 6\n',
    'configs/list.yaml': '- epochs\n- 5\n',
    'configs/scalar.yaml': 'just text\n',
    'configs/nested.yaml': 'lr:\n  base: 0.1\n',
    'configs/far.yaml': 'zzzzzzzz: 1\n',
    'configs/gpu.yaml': 'multigpu: [0, -1]\n',
    'configs/empty-name.yaml': "name: ''\n",
    'configs/sinit.yaml': 'sInit_value: .inf\n',
  });
  const cfg = (f: string) => () => load(['--config', `configs/${f}.yaml`], dir);

  test('unknown YAML key, with and without a suggestion', () => {
    const m = userError(cfg('x'), 'configs/x.yaml', "unknown key 'lrr'", "did you mean 'lr'?");
    assert.equal(m, "configs/x.yaml: unknown key 'lrr' (did you mean 'lr'?)");
    userError(cfg('far'), 'configs/far.yaml', "unknown key 'zzzzzzzz'");
  });

  test('unknown flags, with and without a suggestion', () => {
    assert.equal(userError(() => load(['--lrr', '0.1'])), 'unknown flag --lrr (did you mean --lr?)');
    userError(() => load(['--batchsize', '3']), 'unknown flag --batchsize', '--batch-size');
    userError(() => load(['--sInit-valeu', '3']), '--sInit-valeu', '--sinit-value');
    userError(() => load(['-x']), 'unknown flag -x');
    userError(() => load(['--frobnicate']), 'unknown flag --frobnicate');
    userError(() => load(['--help']), 'unknown flag --help');
  });

  test('wrong types in YAML', () => {
    assert.equal(userError(cfg('ten')), `configs/ten.yaml: 'epochs' must be an integer, got "ten"`);
    userError(cfg('frac'), 'configs/frac.yaml', "'epochs'", 'must be an integer', '2.5');
    userError(cfg('enum'), 'configs/enum.yaml', "'arch'", 'must be one of ResNet18', 'ResNet99');
    userError(cfg('bool'), 'configs/bool.yaml', "'nesterov'", 'true or false', 'maybe');
    userError(cfg('nullreq'), 'configs/nullreq.yaml', "'epochs'", 'must be an integer', 'null');
    userError(cfg('nested'), 'configs/nested.yaml', "'lr'", 'must be a number');
    userError(cfg('gpu'), 'configs/gpu.yaml', "'multigpu'", 'must be ≥ 0', '[0,-1]');
  });

  test('wrong types on the CLI', () => {
    assert.equal(userError(() => load(['--epochs', 'ten'])), '--epochs must be an integer, got "ten"');
    userError(() => load(['--lr', '0.1x']), '--lr', 'must be a number');
    userError(() => load(['-b', '1.5']), '-b', 'must be an integer');
    userError(() => load(['--arch', 'VGG']), '--arch', 'must be one of', '"VGG"');
    userError(() => load(['--nesterov=maybe']), '--nesterov', 'true/false', '"maybe"');
    userError(() => load(['-e=maybe']), '-e takes no value or true/false', '"maybe"');
    userError(() => load(['--multigpu', '0,x']), '--multigpu', 'device ids');
    userError(() => load(['--sparse-function', 'tanh']), '--sparse-function', 'sigmoid');
    userError(() => load(['--sInit-type', 'uniform']), '--sInit-type', 'constant');
  });

  test('out of range, in YAML and on the CLI', () => {
    assert.equal(userError(cfg('range')), "configs/range.yaml: 'prune_rate' must be in [0, 1), got 1.5");
    userError(cfg('neg'), 'configs/neg.yaml', "'batch_size'", 'must be ≥ 1', 'got 0');
    userError(cfg('empty-name'), 'configs/empty-name.yaml', "'name'", 'must not be empty');
    userError(cfg('sinit'), 'configs/sinit.yaml', "'sInit_value'", 'finite');
    userError(() => load(['--prune-rate', '1']), '--prune-rate', '[0, 1)');
    userError(() => load(['--momentum', '1.0']), '--momentum', '[0, 1)');
    userError(() => load(['--label-smoothing', '-0.1']), '--label-smoothing', '[0, 1)');
    userError(() => load(['--lr', '0']), '--lr', '> 0');
    userError(() => load(['--epochs', '-1']), '--epochs', '≥ 0');
    userError(() => load(['--workers', '-2']), '--workers', '≥ 0');
    userError(() => load(['--width-mult', '0']), '--width-mult', '> 0');
    userError(() => load(['--image-size', '4']), '--image-size', '≥ 8');
    userError(() => load(['--weight-decay', '-1e-4']), '--weight-decay', '≥ 0');
    userError(() => load(['--multigpu', '0,1,1']), '--multigpu', 'repeat');
  });

  test('missing, unreadable and malformed config files', () => {
    assert.equal(userError(cfg('missing')), '--config configs/missing.yaml: file not found');
    mkdirSync(join(dir, 'configs/adir.yaml'), { recursive: true });
    userError(cfg('adir'), '--config configs/adir.yaml', 'directory');
    if (process.getuid?.() !== 0) {
      writeFileSync(join(dir, 'configs/locked.yaml'), 'epochs: 1\n');
      chmodSync(join(dir, 'configs/locked.yaml'), 0o000);
      userError(cfg('locked'), '--config configs/locked.yaml', 'cannot be read');
    }
    userError(() => load(['--config', 'configs/x.yaml/inner.yaml'], dir), '--config configs/x.yaml/inner.yaml', 'cannot be read');
    userError(cfg('syntax'), 'configs/syntax.yaml', 'YAML syntax error', 'line 3');
    userError(cfg('dup'), 'configs/dup.yaml', 'YAML syntax error', 'line 2', 'duplicated');
    userError(cfg('list'), 'configs/list.yaml', 'a list');
    userError(cfg('scalar'), 'configs/scalar.yaml', 'key: value');
    userError(() => load(['--config']), '--config', 'file name');
  });

  test('stray arguments and missing values', () => {
    userError(() => load(['train']), 'unexpected argument "train"');
    userError(() => load(['--multigpu', '0', '1']), 'unexpected argument "1"');
    userError(() => load(['--epochs']), '--epochs needs a value');
    userError(() => load(['--name', '--lr', '0.1']), '--name needs a value');
  });

  test('combinations of options', () => {
    userError(() => load(['--budget-column', '90.23']), '--budget-column', '--budget');
    userError(() => load(['--budget', 'b.csv', '--conv-type', 'DNWConv']), '--budget', '--budget-column');
    userError(() => load(['--budget', 'b.csv', '--budget-column', '90', '--conv-type', 'STRConv']), '--budget', 'STRConv');
    userError(
      () => load(['--budget', 'b.csv', '--budget-column', '90', '--use-budget', '--pretrained', 'p', '--conv-type', 'GMPConv']),
      '--use-budget',
      'keep one',
    );
    userError(() => load(['--use-budget', '--conv-type', 'DNWConv']), '--use-budget', '--pretrained');
    userError(() => load(['--dense-conv-model']), '--dense-conv-model', '--pretrained');
    userError(() => load(['--warmup-length', '0.5']), '--warmup-length', 'whole number', 'got 0.5', '--lr-schedule-granularity step');
    assert.equal(load(['--warmup-length', '0.5', '--lr-schedule-granularity', 'step']).config.warmup_length, 0.5);
    userError(() => load(['--image-size', '64', '--val-resize', '32']), '--val-resize', 'image size 64', 'got 32');
    userError(() => load(['--multigpu', '0,1,2']), '--multigpu lists 3 devices', 'default batch size 256', '--batch-size');
    userError(() => load(['--multigpu', '0,1,2', '-b', '64']), '-b (64)', 'divisible', '3 devices');
    userError(() => load(['--first-layer-dense', '--first-layer-type', 'STRConv']), '--first-layer-type', '--first-layer-dense');
    const yamlDir = tempTree({ 'g.yaml': 'batch_size: 10\n' });
    userError(() => load(['--config', 'g.yaml', '--multigpu', '0,1,2'], yamlDir), "g.yaml: 'batch_size'", 'divisible');
  });
});

describe('warnings', () => {
  test('flags without effect and settings that disable a feature', () => {
    assert.deepEqual(load([]).warnings, []);
    const w = load(['--random-mask', '--one-batch', '--freeze-weights', '--ignore-pretrained-weights']).warnings;
    assert.equal(w.length, 4);
    assert.ok(w[0]!.includes('--random-mask'));
    assert.ok(load(['--conv-type', 'DNWConv']).warnings.some((s) => s.includes('prune_rate') && s.includes('DNWConv')));
    assert.ok(load(['--conv-type', 'GMPConv', '--prune-rate', '0.5']).warnings.some((s) => s.includes('window is empty')));
    assert.deepEqual(
      load(['--conv-type', 'GMPConv', '--prune-rate', '0.5', '--init-prune-epoch', '0', '--final-prune-epoch', '3']).warnings,
      [],
    );
  });
});

describe('settings.yaml, stem, help', () => {
  test('settingsYaml: sorted keys, every option, reloads to the same config', () => {
    const dir = tempTree({ 'configs/s.yaml': 'conv_type: STRConv\nsInit_value: -4\nweight_decay: 1.0e-7\nmultigpu: [0, 1]\nbatch_size: 64\n' });
    const first = load(['--config', 'configs/s.yaml', '--seed', '3', '--label-smoothing', '0.1'], dir);
    const text = settingsYaml(first.config);
    const doc = yaml.load(text) as Record<string, unknown>;
    const keys = Object.keys(doc);
    assert.deepEqual(keys, [...OPTION_KEYS].sort());
    assert.equal(doc['config'], 'configs/s.yaml');
    assert.equal(doc['num_classes'], null);
    writeFileSync(join(dir, 'settings.yaml'), text);
    const again = load(['--config', 'settings.yaml'], dir);
    const expected: RunConfig = { ...first.config, config: 'settings.yaml' };
    assert.deepEqual(again.config, expected);
    assert.equal(again.config.weight_decay, 1e-7);
  });

  test('configStem', () => {
    assert.equal(configStem('configs/largescale/resnet50-str.yaml'), 'resnet50-str');
    assert.equal(configStem('x.yml'), 'x');
    assert.equal(configStem('/abs/dir/fmnist.v2.yaml'), 'fmnist.v2');
    assert.equal(configStem(undefined), 'default');
  });

  test('wantsHelp', () => {
    assert.equal(wantsHelp(['--lr', '1', '--help']), true);
    assert.equal(wantsHelp(['-h']), true);
    assert.equal(wantsHelp(['--', '--help']), false);
    assert.equal(wantsHelp(['--lr', '1']), false);
  });

  test('help lists every group and every visible option with its aliases and defaults', async () => {
    const help = await renderHelp();
    for (const g of OPTION_GROUPS) assert.ok(help.includes(`${g}:`), g);
    for (const key of OPTION_KEYS) {
      const spec = optionSpec(key);
      assert.ok(help.includes(`--${spec.flag}`), key);
      for (const a of spec.aliases ?? []) assert.ok(help.includes(a.length === 1 ? `-${a},` : `--${a}`), `${key}: ${a}`);
    }
    assert.ok(help.includes('[default: -3200]'));
    assert.ok(help.includes('[default: <arch>_<conv_type>]'));
  });
});

describe('schema table', () => {
  test('keys are the reference dest names plus the project options', () => {
    const reference = [
      'data', 'optimizer', 'set', 'arch', 'config', 'log_dir', 'workers', 'epochs', 'start_epoch', 'batch_size', 'lr',
      'warmup_length', 'init_prune_epoch', 'final_prune_epoch', 'momentum', 'weight_decay', 'print_freq', 'num_classes',
      'resume', 'evaluate', 'pretrained', 'seed', 'multigpu', 'lr_policy', 'multistep_lr_adjust', 'multistep_lr_gamma',
      'name', 'save_every', 'prune_rate', 'width_mult', 'nesterov', 'random_mask', 'one_batch', 'conv_type',
      'freeze_weights', 'mode', 'nonlinearity', 'bn_type', 'init', 'no_bn_decay', 'dense_conv_model', 'st_decay',
      'scale_fan', 'first_layer_dense', 'last_layer_dense', 'label_smoothing', 'first_layer_type', 'sInit_type',
      'sInit_value', 'sparse_function', 'use_budget', 'ignore_pretrained_weights',
    ];
    const project = [
      'backend', 'image_size', 'val_resize', 'stem', 'strict_data', 'budget', 'budget_column', 'summary',
      'distributed', 'stats_every', 'progress', 'save_last', 'save_sparse', 'crop_scale', 'decode_cache_mb', 'lr_schedule_granularity',
      'target_sparsity', 'target_sparsity_ramp',
    ];
    assert.deepEqual([...OPTION_KEYS].sort(), [...reference, ...project].sort());
  });

  test('no two options share a spelling; flags are kebab-case', () => {
    const seen = new Map<string, string>();
    for (const key of OPTION_KEYS) {
      assert.match(optionSpec(key).flag, /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/, key);
      for (const s of [...longSpellings(key), ...(OPTIONS[key].aliases ?? [])]) {
        const n = s.replace(/-/g, '_').toLowerCase();
        assert.ok(!seen.has(n) || seen.get(n) === key, `${s} used by ${seen.get(n)} and ${key}`);
        seen.set(n, key);
      }
    }
  });

  test('every default passes its own validation', () => {
    for (const key of OPTION_KEYS) {
      const spec = optionSpec(key);
      if (spec.default === undefined && !spec.schema.isOptional()) continue; // derived (name)
      assert.ok(spec.schema.safeParse(spec.default).success, key);
    }
  });

  test('QUIRK_FIXES names real options, and every "quirk N fixed" help text is listed there', () => {
    const listed = new Set(QUIRK_FIXES.map((q) => q.quirk));
    for (const q of QUIRK_FIXES) for (const k of q.keys) assert.ok(OPTION_KEYS.includes(k), `${q.quirk}: ${k}`);
    for (const key of OPTION_KEYS) {
      for (const m of optionSpec(key).help.matchAll(/quirk (\d+)/g)) {
        assert.ok(listed.has(Number(m[1])) || [16].includes(Number(m[1])), `${key} mentions quirk ${m[1]}`);
        if (optionSpec(key).help.includes(`quirk ${m[1]} fixed`)) {
          assert.ok(QUIRK_FIXES.some((q) => q.quirk === Number(m[1]) && q.keys.includes(key)), `${key}: quirk ${m[1]}`);
        }
      }
    }
  });
});

// Compile-time check of the inferred RunConfig type (tsc fails if the inference drifts).
export function _runConfigTypes(c: RunConfig): void {
  const arch: 'ResNet18' | 'ResNet34' | 'ResNet50' | 'ResNet101' | 'MobileNetV1' = c.arch;
  const classes: number | undefined = c.num_classes;
  const name: string = c.name;
  const gpus: number[] | undefined = c.multigpu;
  const sInit: number = c.sInit_value;
  const valResize: number = c.val_resize;
  void [arch, classes, name, gpus, sInit, valResize];
}
