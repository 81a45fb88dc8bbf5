/**
 * --pretrained (STR-SPEC §13.1): STR → STR, dense → STR, STR → DNW/GMP/Dense, key prefixes,
 * architecture mismatches, the torch-made reference checkpoint, and hostile pickles.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '../../src/tf.js';
import { useBackend } from '../helpers/tf.js';
import { loadPretrained, denseCompatibleStateDict, softThreshold } from '../../src/sparsity/transfer.js';
import { saveCheckpoint, readCheckpoint, restoreCheckpoint } from '../../src/train/checkpoint.js';
import { stateDict, stripModulePrefix } from '../../src/nn/state-dict.js';
import { UserError } from '../../src/util/errors.js';
import type { HostTensor, StateDict } from '../../src/io/host-tensor.js';
import {
  buildModel, randomizeState, fixedInput, writeInput, logitsOf, maxAbsDiff, referenceLogits, torchSkipReason,
  tmpDir, fixture, runCli, META,
} from './helpers.js';

const SKIP_TORCH = torchSkipReason();
const SMALL = ['--arch', 'ResNet18', '--width-mult', '0.125', '--num-classes', '10'];
const bytes = (t: HostTensor) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);

function assertEntriesEqual(got: StateDict, want: StateDict, keys: Iterable<string>, what: string): void {
  for (const k of keys) {
    const a = got.get(k);
    const b = want.get(k);
    assert.ok(a && b, `${what}: ${k} present in both`);
    assert.deepEqual(a.shape, b.shape, `${what}: ${k} shape`);
    assert.ok(bytes(a).equals(bytes(b)), `${what}: ${k} values`);
  }
}

/** The single-line UserError thrown by f. */
function userError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof UserError, `expected a UserError, got ${String(e)}`);
    assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
    return e.message;
  }
  assert.fail('expected an error');
}

const dir = tmpDir('pretrained');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

let strSd: StateDict;
let strLogits: Float32Array;
const x = fixedInput(2, 32, 'pretrained');

before(async () => {
  await useBackend('cpu');
  const { model } = buildModel([...SMALL, '--conv-type', 'STRConv', '--seed', '1']);
  randomizeState(model, 'str-source');
  strSd = stateDict(model);
  strLogits = logitsOf(model, x);
  model.dispose();
});

describe('loadPretrained', () => {
  test('STR → STR loads every entry, thresholds included: identical state and logits', () => {
    const { model } = buildModel([...SMALL, '--conv-type', 'STRConv', '--seed', '2']);
    const before = tf.memory().numTensors;
    const r = loadPretrained(model, strSd, 'a.pth');
    assert.equal(tf.memory().numTensors, before, 'no tensor leak');
    assert.equal(r.loaded.length, strSd.size);
    assert.deepEqual([r.thresholded, r.skipped, r.keptAtInit], [[], [], []]);
    assertEntriesEqual(stateDict(model), strSd, strSd.keys(), 'STR → STR');
    assert.deepEqual(logitsOf(model, x), strLogits);
    model.dispose();
  });

  test('keys without the module. prefix load the same', () => {
    const bare: StateDict = new Map([...strSd].map(([k, v]) => [stripModulePrefix(k), v]));
    assert.ok([...bare.keys()].every((k) => !k.startsWith('module.')));
    const { model } = buildModel([...SMALL, '--conv-type', 'STRConv', '--seed', '2']);
    loadPretrained(model, bare, 'bare.pth');
    assertEntriesEqual(stateDict(model), strSd, strSd.keys(), 'bare keys');
    model.dispose();
  });

  test('dense → STR loads the weights and leaves every threshold at sInit', () => {
    const { model: dense } = buildModel([...SMALL, '--conv-type', 'DenseConv', '--seed', '3']);
    randomizeState(dense, 'dense-source');
    const denseSd = stateDict(dense);
    dense.dispose();
    const { model } = buildModel([...SMALL, '--conv-type', 'STRConv', '--sInit-value=-3200']);
    const r = loadPretrained(model, denseSd, 'dense.pth');
    const sd = stateDict(model);
    assertEntriesEqual(sd, denseSd, denseSd.keys(), 'dense → STR');
    const thresholds = [...sd.keys()].filter((k) => k.endsWith('.sparseThreshold'));
    assert.equal(thresholds.length, 21);
    for (const k of thresholds) assert.deepEqual(Array.from(sd.get(k)!.data as Float32Array), [-3200], k);
    assert.deepEqual(r.keptAtInit, thresholds);
    model.dispose();
  });

  for (const conv of ['DNWConv', 'GMPConv', 'DenseConv'] as const) {
    test(`STR → ${conv} loads the soft-thresholded weights sign(W)·relu(|W| − σ(s))`, () => {
      const { model } = buildModel([...SMALL, '--conv-type', conv, '--prune-rate', '0']);
      const r = loadPretrained(model, strSd, 'str.pth');
      assert.equal(r.thresholded.length, 21);
      const sd = stateDict(model);
      assert.ok(![...sd.keys()].some((k) => k.endsWith('.sparseThreshold')));
      const folded = new Map<string, HostTensor>();
      for (const k of r.thresholded) folded.set(k, softThreshold(strSd.get(k)!, strSd.get(k.replace(/\.weight$/, '.sparseThreshold'))!));
      assertEntriesEqual(sd, folded, folded.keys(), `STR → ${conv} weights`);
      const others = [...sd.keys()].filter((k) => !folded.has(k));
      assertEntriesEqual(sd, strSd, others, `STR → ${conv} BN`);
      // at prune rate 0 the model computes exactly what the STR model did
      assert.ok(maxAbsDiff(logitsOf(model, x), strLogits) <= 1e-5);
      model.dispose();
    });
  }

  test('the soft-threshold values are the float32 formula (hand-computed, STR-SPEC §17.3)', () => {
    const w: HostTensor = { dtype: 'float32', shape: [5], data: Float32Array.of(0.5, -0.02, 0.003, -0.3, 0) };
    const s: HostTensor = { dtype: 'float32', shape: [1, 1], data: Float32Array.of(-3) };
    const got = Array.from(softThreshold(w, s).data as Float32Array);
    const want = [0.45257413, -0, 0, -0.25257413, 0];
    got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) < 1e-7, `${i}: ${g}`));
  });

  test('a different architecture is a one-line error naming the first mismatching keys', () => {
    const { model: r50 } = buildModel(['--arch', 'ResNet50', '--width-mult', '0.125', '--num-classes', '10', '--conv-type', 'STRConv']);
    const m1 = userError(() => loadPretrained(r50, strSd, 'r18.pth'));
    assert.match(m1, /^--pretrained r18\.pth does not fit ResNet50 \(STRConv\): shape mismatch: module\.layer1\.0\.conv1\.weight file \[8, 8, 3, 3\] vs model \[8, 8, 1, 1\]; /);
    assert.match(m1, /missing from the file: module\.layer1\.0\.conv3\.weight; /);
    r50.dispose();

    const { model: wide } = buildModel(['--arch', 'ResNet18', '--width-mult', '0.25', '--num-classes', '10', '--conv-type', 'STRConv']);
    const m2 = userError(() => loadPretrained(wide, strSd, 'r18.pth'));
    assert.match(m2, /^--pretrained r18\.pth does not fit ResNet18 \(STRConv\): shape mismatch: module\.conv1\.weight file \[8, 3, 7, 7\] vs model \[16, 3, 7, 7\]; module\.bn1\.weight file \[8\] vs model \[16\]; module\.bn1\.bias file \[8\] vs model \[16\] \(\+\d+ more\)$/);
    wide.dispose();

    const { model: mb } = buildModel(['--arch', 'MobileNetV1', '--width-mult', '0.125', '--num-classes', '10', '--conv-type', 'STRConv']);
    const m3 = userError(() => loadPretrained(mb, strSd, 'r18.pth'));
    assert.match(m3, /missing from the file: module\.model\.0\.0\.weight; module\.model\.0\.1\.weight; module\.model\.0\.1\.bias \(\+\d+ more\) \| not in the model: module\.conv1\.weight; module\.bn1\.weight; module\.bn1\.bias/);
    mb.dispose();
  });

  test('only the classifier may differ (another class count): it is skipped and reported', () => {
    const { model } = buildModel(['--arch', 'ResNet18', '--width-mult', '0.125', '--num-classes', '5', '--conv-type', 'STRConv']);
    const fcBefore = stateDict(model).get('module.fc.weight')!;
    const r = loadPretrained(model, strSd, 'r18.pth');
    assert.deepEqual(r.skipped, ['module.fc.weight file [10, 64, 1, 1] vs model [5, 64, 1, 1]']);
    const sd = stateDict(model);
    assert.ok(bytes(sd.get('module.fc.weight')!).equals(bytes(fcBefore)), 'classifier kept');
    assertEntriesEqual(sd, strSd, [...strSd.keys()].filter((k) => k !== 'module.fc.weight'), 'the rest loaded');
    // --evaluate / --dense-conv-model: a classifier that does not load is an error
    const m = userError(() => loadPretrained(model, strSd, 'r18.pth', { allowClassifierMismatch: false }));
    assert.equal(m, "--pretrained r18.pth does not fit ResNet18 (STRConv): shape mismatch: module.fc.weight file [10, 64, 1, 1] vs model [5, 64, 1, 1] (set --num-classes to the checkpoint's class count)");
    model.dispose();
  });
});

describe('the reference checkpoint written by PyTorch (test/fixtures/torch/epoch_1.state)', () => {
  // ResNet18-STR at width 1 channel, 10 classes, `module.` keys, SGD state, epoch 2
  const ARGS = ['--arch', 'ResNet18', '--width-mult', String(1 / 64), '--num-classes', '10', '--conv-type', 'STRConv'];

  test('readCheckpoint gives its metadata and state dict; loadPretrained and --resume restore all of it', async () => {
    const ck = await readCheckpoint(fixture('epoch_1.state'), '--pretrained');
    assert.deepEqual(ck.meta, { epoch: 2, arch: 'ResNet18', best_acc1: 12.5, best_acc5: 50, best_train_acc1: 10, best_train_acc5: 40, curr_acc1: 12.5, curr_acc5: 50 });
    assert.equal(ck.stateDict.size, 142);
    const { model } = buildModel(ARGS);
    const r = loadPretrained(model, ck.stateDict, 'epoch_1.state');
    assert.equal(r.loaded.length, 142);
    assertEntriesEqual(stateDict(model), ck.stateDict, ck.stateDict.keys(), 'fixture → STR');
    const { model: m2 } = buildModel(ARGS);
    restoreCheckpoint(ck, m2);
    assertEntriesEqual(stateDict(m2), ck.stateDict, ck.stateDict.keys(), 'fixture → restore');
    model.dispose();
    m2.dispose();
  });

  test('the legacy-format bare state dict (plain_legacy.pth, no prefix) loads the same tensors', async () => {
    const a = await readCheckpoint(fixture('epoch_1.state'));
    const b = await readCheckpoint(fixture('plain_legacy.pth'));
    const { model } = buildModel(ARGS);
    loadPretrained(model, b.stateDict, 'plain_legacy.pth');
    assertEntriesEqual(stateDict(model), a.stateDict, a.stateDict.keys(), 'legacy');
    model.dispose();
  });

  test('our STR model with the fixture computes the logits of the PyTorch STR model', { skip: SKIP_TORCH }, async () => {
    const ck = await readCheckpoint(fixture('epoch_1.state'));
    const { model } = buildModel(ARGS);
    loadPretrained(model, ck.stateDict, 'epoch_1.state');
    const xin = fixedInput(3, 32, 'fixture-logits');
    const ours = logitsOf(model, xin);
    model.dispose();
    const input = path.join(dir, 'fixture_x.pth');
    await writeInput(input, xin);
    const [r] = referenceLogits([{ arch: 'ResNet18', conv_type: 'STRConv', width: 1 / 64, num_classes: 10, stem: 'imagenet', checkpoint: fixture('epoch_1.state'), format: 'pth', input }]);
    assert.ok(maxAbsDiff(r.logits.flat(), ours) <= 1e-5, `max |Δlogit| ${maxAbsDiff(r.logits.flat(), ours)}`);
  });
});

describe('str-train --pretrained (CLI)', () => {
  const cli = (args: string[]) => runCli(args);
  const common = [...SMALL, '--conv-type', 'DenseConv', '--dense-conv-model', '--log-dir', path.join(dir, 'runs'), '--backend', 'cpu'];

  for (const name of ['hostile_system.pth', 'hostile_eval.pth']) {
    test(`a hostile pickle (${name}) ends with the one-line refusal, exit 2, and runs nothing`, () => {
      const marker = '/tmp/str_train_hostile_marker';
      fs.rmSync(marker, { force: true });
      const r = cli([...common, '--pretrained', fixture(name)]);
      assert.equal(r.status, 2, r.stderr);
      const last = r.stderr.trim().split('\n').at(-1)!;
      assert.match(last, new RegExp(`^str-train: .*${name.replace('.', '\\.')}: refuses to unpickle (posix\\.system|__builtin__\\.eval) \\(not a tensor checkpoint class\\)$`));
      assert.ok(!/\n\s+at /.test(r.stderr), 'no stack trace');
      assert.equal(fs.existsSync(marker), false, 'the payload must not have run');
    });
  }

  test('--dense-conv-model writes the dense-compatible model as safetensors, .state and model_best.pth', async () => {
    const src = path.join(dir, 'str.safetensors');
    const { model, config } = buildModel([...SMALL, '--conv-type', 'STRConv']);
    randomizeState(model, 'str-source');
    const want = denseCompatibleStateDict(model);
    await saveCheckpoint(src, { model, meta: { ...META, arch: 'ResNet18' }, config });
    model.dispose();
    const r = cli([...common, '--pretrained', src, '--name', 'conv']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /=> loaded 121 entries from .*str\.safetensors \(21 STR weights soft-thresholded\)/);
    const ckDir = path.join(dir, 'runs', 'default', 'conv', 'prune_rate=0.0', 'width_mult=0.125', 'checkpoints');
    assert.deepEqual(fs.readdirSync(ckDir).sort(), ['epoch_pretrained.safetensors', 'epoch_pretrained.state', 'model_best.pth']);
    for (const f of ['epoch_pretrained.safetensors', 'epoch_pretrained.state', 'model_best.pth']) {
      const got = (await readCheckpoint(path.join(ckDir, f))).stateDict;
      assert.deepEqual([...got.keys()], [...want.keys()], f);
      // folding while loading (DenseConv model) gives the same float32 values as folding the STR model
      assertEntriesEqual(got, want, want.keys(), f);
    }
  });
});
