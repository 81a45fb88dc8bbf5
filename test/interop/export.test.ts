/**
 * `str-train export`: files the reference's model definitions load with load_state_dict(strict)
 * unchanged. Pure-JS checks (archive layout, bytes, names, order, shapes, dtypes) always run; the
 * PyTorch side (test/fixtures/interop/reference_models.py) runs when python3-torch is installed.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { unzipSync } from 'fflate';
import * as tf from '../../src/tf.js';
import { useBackend } from '../helpers/tf.js';
import { saveCheckpoint, readCheckpoint } from '../../src/train/checkpoint.js';
import { exportCheckpoint, EXPORT_FORMAT } from '../../src/cli/export.js';
import { modelFromCheckpoint } from '../../src/report/checkpoint-model.js';
import { stateDict } from '../../src/nn/state-dict.js';
import { layerStats } from '../../src/sparsity/stats.js';
import { readTorchCheckpoint, PyDict } from '../../src/io/pytorch/index.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import type { HostTensor, StateDict } from '../../src/io/host-tensor.js';
import {
  buildModel, randomizeState, fixedInput, writeInput, logitsOf, maxAbsDiff, referenceLogits, runReference,
  torchSkipReason, tmpDir, fixture, runCli, REPO_ROOT, META, zerosOf, type ReferenceSpec,
} from './helpers.js';

const SKIP_TORCH = torchSkipReason();
const TOL = 1e-4;

function bytesOf(t: HostTensor): Buffer {
  return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

function assertSameTensors(a: StateDict, b: StateDict, what: string): void {
  assert.deepEqual([...a.keys()], [...b.keys()], `${what}: names/order`);
  for (const [k, v] of a) {
    const w = b.get(k)!;
    assert.deepEqual(v.shape, w.shape, `${what}: ${k} shape`);
    assert.equal(v.dtype, w.dtype, `${what}: ${k} dtype`);
    assert.ok(bytesOf(v).equals(bytesOf(w)), `${what}: ${k} values`);
  }
}

/** A torch zip: `<stem>/data.pkl`, `<stem>/data/<i>` holding the i-th tensor's bytes, `<stem>/version`. */
function checkTorchZip(file: string, tensors: HostTensor[]): void {
  const files = unzipSync(fs.readFileSync(file));
  const stem = path.basename(file, path.extname(file));
  const names = Object.keys(files);
  assert.ok(names.every((n) => n.startsWith(`${stem}/`)), `archive folder is the file stem: ${names.slice(0, 3)}`);
  assert.equal(Buffer.from(files[`${stem}/version`]).toString('latin1'), '3\n');
  assert.ok(files[`${stem}/data.pkl`].length > 0);
  const storages = names.filter((n) => n.startsWith(`${stem}/data/`));
  assert.equal(storages.length, tensors.length, 'one storage per tensor');
  tensors.forEach((t, i) => assert.ok(Buffer.from(files[`${stem}/data/${i}`]).equals(bytesOf(t)), `storage ${i} bytes`));
}

interface Case {
  name: string;
  argv: string[];
  arch: string;
  width: number;
  stem: 'imagenet' | 'small';
  size: number;
}

const CASES: Case[] = [
  { name: 'ResNet18 width 0.125', arch: 'ResNet18', width: 0.125, stem: 'imagenet', size: 32, argv: [] },
  { name: 'ResNet50 width 0.125, small stem', arch: 'ResNet50', width: 0.125, stem: 'small', size: 16, argv: ['--stem', 'small'] },
  { name: 'MobileNetV1 width 0.125', arch: 'MobileNetV1', width: 0.125, stem: 'imagenet', size: 32, argv: [] },
];

const dir = tmpDir('export');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

before(async () => {
  await useBackend('cpu');
});

describe('the PyTorch re-creation of the reference models (test/fixtures/interop/reference_models.py)', { skip: SKIP_TORCH }, () => {
  for (const [arch, file] of [['ResNet50', 'resnet50-str'], ['MobileNetV1', 'mobilenetv1-str']]) {
    test(`${arch}-STR at full width has the state_dict of STR-SPEC Appendix A`, () => {
      const want = fs
        .readFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'reference', `${file}.state_dict.txt`), 'utf8')
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .map((l) => {
          const [k, s] = l.split('\t');
          return [k, JSON.parse(s)];
        });
      assert.deepEqual(runReference(['keys', arch, 'STRConv']), want);
    });
  }
  for (const c of CASES) {
    test(`${c.name}: same state_dict names, order and shapes as ours`, () => {
      const { model } = buildModel(['--arch', c.arch, '--conv-type', 'STRConv', '--width-mult', String(c.width), '--num-classes', '10', ...c.argv]);
      const ours = [...stateDict(model)].map(([k, v]) => [k, v.shape]);
      model.dispose();
      assert.deepEqual(runReference(['keys', c.arch, 'STRConv', String(c.width), c.stem, '10']), ours);
    });
  }
});

for (const c of CASES) {
  describe(`export of an STR ${c.name}`, () => {
    const base = path.join(dir, c.arch + c.stem);
    const ckpt = `${base}.safetensors`;
    const input = `${base}_input.pth`;
    const x = fixedInput(2, c.size, c.name);
    let sd: StateDict;
    let logits: Float32Array;
    let zeros: Map<string, number>;
    const out = {
      pth: `${base}_export.pth`,
      st: `${base}_export.safetensors`,
      densePth: `${base}_dense.pth`,
      denseSt: `${base}_dense.safetensors`,
    };

    before(async () => {
      const { model, config } = buildModel(['--arch', c.arch, '--conv-type', 'STRConv', '--width-mult', String(c.width), '--num-classes', '10', '--seed', '3', ...c.argv]);
      randomizeState(model, c.name);
      sd = stateDict(model);
      logits = logitsOf(model, x);
      zeros = new Map(layerStats(model).map((s) => [s.name, s.zeros]));
      assert.ok([...zeros.values()].some((z) => z > 0), 'the thresholds prune something');
      await saveCheckpoint(ckpt, { model, meta: { ...META, arch: c.arch }, config });
      model.dispose();
      await writeInput(input, x);
      const log = () => {};
      await exportCheckpoint({ checkpoint: ckpt, out: out.pth, log });
      await exportCheckpoint({ checkpoint: ckpt, out: out.st, log });
      await exportCheckpoint({ checkpoint: ckpt, out: out.densePth, dense: true, log });
      await exportCheckpoint({ checkpoint: ckpt, format: 'safetensors', out: out.denseSt, dense: true, log });
    });

    test('.pth: {epoch (int), arch, state_dict (OrderedDict)} with the model in PyTorch names, order and bytes', async () => {
      const obj = await readTorchCheckpoint(out.pth);
      assert.ok(obj instanceof PyDict && !obj.ordered);
      assert.deepEqual([...obj.keys()], ['epoch', 'arch', 'state_dict']);
      assert.equal(obj.get('epoch'), 7n, 'epoch is a Python int');
      assert.equal(obj.get('arch'), c.arch);
      const inner = obj.get('state_dict');
      assert.ok(inner instanceof PyDict && inner.ordered, 'state_dict is an OrderedDict');
      assertSameTensors(inner as unknown as StateDict, sd, 'pth');
      assert.ok([...sd.keys()].every((k) => k.startsWith('module.')));
      checkTorchZip(out.pth, [...sd.values()]);
    });

    test('.safetensors: the same tensors, with export metadata', async () => {
      const { tensors, metadata } = await readSafetensors(out.st);
      assertSameTensors(tensors, sd, 'safetensors');
      assert.deepEqual(metadata, { format: EXPORT_FORMAT, arch: c.arch, epoch: '7', dense: 'false' });
    });

    test('--dense: no thresholds, conv weights = sign(W)·relu(|W| − σ(s)), epoch 0', async () => {
      const obj = await readTorchCheckpoint(out.densePth);
      assert.ok(obj instanceof PyDict);
      assert.equal(obj.get('epoch'), 0n);
      const dense = obj.get('state_dict') as unknown as StateDict;
      assert.deepEqual([...dense.keys()], [...sd.keys()].filter((k) => !k.endsWith('.sparseThreshold')));
      for (const [k, v] of dense) {
        const orig = sd.get(k)!;
        assert.deepEqual(v.shape, orig.shape, k);
        const tk = k.replace(/\.weight$/, '.sparseThreshold');
        if (!k.endsWith('.weight') || !sd.has(tk)) {
          assert.ok(bytesOf(v).equals(bytesOf(orig)), `${k} unchanged`);
          continue;
        }
        // float32 soft threshold, computed here independently of tf
        const tau = Math.fround(1 / (1 + Math.exp(-(sd.get(tk)!.data[0] as number))));
        let worst = 0;
        for (let i = 0; i < v.data.length; i++) {
          const w = orig.data[i] as number;
          const want = Math.sign(w) * Math.max(0, Math.fround(Math.abs(w) - tau));
          worst = Math.max(worst, Math.abs((v.data[i] as number) - want));
        }
        assert.ok(worst <= 1e-7, `${k}: max |Ŵ − expected| ${worst}`);
        assert.equal(zerosOf(v), zeros.get(k.replace(/\.weight$/, '')), `${k}: zeros = the STR layer's`);
      }
      const { tensors, metadata } = await readSafetensors(out.denseSt);
      assertSameTensors(tensors, dense, 'dense safetensors = dense pth');
      assert.equal(metadata.dense, 'true');
    });

    test('the dense-compatible file loaded into our DenseConv model gives the STR logits', async () => {
      const ck = await readCheckpoint(out.denseSt, '--checkpoint');
      const { model, spec } = modelFromCheckpoint(ck, { stem: c.stem });
      assert.equal(spec.options.convType, 'DenseConv');
      assert.equal(spec.arch, c.arch);
      const l = logitsOf(model, x);
      model.dispose();
      assert.ok(maxAbsDiff(l, logits) <= 1e-5, `max |Δlogit| ${maxAbsDiff(l, logits)}`);
    });

    test('PyTorch loads every export with load_state_dict(strict=True) and computes our logits', { skip: SKIP_TORCH }, (t) => {
      const common = { arch: c.arch, width: c.width, num_classes: 10, stem: c.stem, input };
      const specs: ReferenceSpec[] = [
        { ...common, conv_type: 'STRConv', checkpoint: out.pth, format: 'pth' },
        { ...common, conv_type: 'STRConv', checkpoint: out.st, format: 'safetensors' },
        { ...common, conv_type: 'DenseConv', checkpoint: out.densePth, format: 'pth' },
        { ...common, conv_type: 'DenseConv', checkpoint: out.denseSt, format: 'safetensors' },
      ];
      const res = referenceLogits(specs);
      res.forEach((r, i) => {
        const d = maxAbsDiff(r.logits.flat(), logits);
        // deep random-BN models reach logits of a few hundred: the tolerance is relative to them
        const scale = Math.max(1, ...Array.from(logits, Math.abs));
        t.diagnostic(`${path.basename(specs[i].checkpoint)}: max |Δlogit| ${d.toExponential(2)}, max |logit| ${scale.toFixed(2)}`);
        assert.ok(d <= TOL * scale, `${specs[i].checkpoint}: max |Δlogit| ${d} > ${TOL} × max |logit| ${scale}`);
        assert.equal(r.arch, c.arch);
      });
      assert.equal(res[0].epoch, 7);
      assert.equal(res[0].epoch_type, 'int');
      assert.deepEqual(res[0].top_keys, ['epoch', 'arch', 'state_dict']);
      assert.equal(res[0].state_dict_type, 'OrderedDict');
      assert.equal(res[2].epoch, 0);
    });
  });
}

describe('export of the reference-style checkpoint made by PyTorch (test/fixtures/torch/epoch_1.state)', () => {
  // ResNet18-STR at width 1 channel (1/64), 10 classes, imagenet stem, thresholds at σ(−3)
  const src = fixture('epoch_1.state');
  const x = fixedInput(2, 32, 'torch-fixture');
  const out = { dense: path.join(dir, 'epoch_1_dense.pth'), st: path.join(dir, 'epoch_1.safetensors') };
  let logits: Float32Array;

  before(async () => {
    const ck = await readCheckpoint(src, '--checkpoint');
    const { model, spec } = modelFromCheckpoint(ck);
    assert.deepEqual(
      { arch: spec.arch, width: spec.options.widthMult, classes: spec.options.numClasses, conv: spec.options.convType, stem: spec.options.stem },
      { arch: 'ResNet18', width: 1 / 64, classes: 10, conv: 'STRConv', stem: 'imagenet' },
    );
    logits = logitsOf(model, x);
    model.dispose();
    await writeInput(path.join(dir, 'fixture_input.pth'), x);
    await exportCheckpoint({ checkpoint: src, out: out.dense, dense: true, log: () => {} });
    await exportCheckpoint({ checkpoint: src, out: out.st, log: () => {} });
  });

  test('--dense equals the dense-compatible model_best.pth PyTorch itself folded', async () => {
    const torchDense = (await readCheckpoint(fixture('model_best.pth'))).stateDict;
    const ours = (await readCheckpoint(out.dense)).stateDict;
    assert.deepEqual([...ours.keys()], [...torchDense.keys()]);
    for (const [k, v] of ours) {
      const w = torchDense.get(k)!;
      assert.deepEqual(v.shape, w.shape, k);
      assert.equal(v.dtype, w.dtype, k);
      // one float32 rounding of σ(s) may differ between tfjs and torch
      assert.ok(maxAbsDiff(Array.from(v.data as ArrayLike<number>, Number), Array.from(w.data as ArrayLike<number>, Number)) <= 1e-7, k);
      if (k.endsWith('.weight') && v.shape.length === 4) assert.equal(zerosOf(v), zerosOf(w), `${k} zeros`);
    }
  });

  test('a reference .pth to safetensors keeps its tensors, with the module. prefix', async () => {
    const a = (await readCheckpoint(src)).stateDict;
    const b = (await readSafetensors(out.st)).tensors;
    assertSameTensors(b, a, 'epoch_1.state → safetensors');
  });

  test('PyTorch DenseConv ResNet18 loads the export strictly and matches our STR model', { skip: SKIP_TORCH }, () => {
    const [r] = referenceLogits([
      { arch: 'ResNet18', conv_type: 'DenseConv', width: 1 / 64, num_classes: 10, stem: 'imagenet', checkpoint: out.dense, format: 'pth', input: path.join(dir, 'fixture_input.pth') },
    ]);
    assert.ok(maxAbsDiff(r.logits.flat(), logits) <= TOL, `max |Δlogit| ${maxAbsDiff(r.logits.flat(), logits)}`);
  });
});

describe('str-train export (CLI)', () => {
  const cli = (args: string[]) => runCli(['export', ...args]);

  test('writes the file and names it; wrong flags are one-line errors with exit 2', () => {
    const outFile = path.join(dir, 'cli_dense.pth');
    const ok = cli(['--checkpoint', fixture('epoch_1.state'), '--format', 'pth', '--dense', '--out', outFile]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /=> wrote .*cli_dense\.pth \(pth, ResNet18, 121 tensors, dense-compatible/);
    assert.ok(fs.existsSync(outFile));
    for (const [args, msg] of [
      [['--checkpoint', fixture('epoch_1.state'), '--format', 'onnx'], /^str-train: export --format onnx: expected pth, safetensors, sparse or tfjs\n$/],
      [['--frobnicate'], /^str-train: export: Unknown option '--frobnicate'/],
      [[], /^str-train: export: needs --checkpoint FILE/],
      [['--checkpoint', path.join(dir, 'nope.pth')], /^str-train: --checkpoint .*nope\.pth: no such file\n$/],
    ] as const) {
      const r = cli([...args]);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, msg);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  });
});
