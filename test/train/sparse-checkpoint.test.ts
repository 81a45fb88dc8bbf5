/**
 * Compact checkpoints (`export --format sparse`, `--save-sparse`): the same model back
 * (logits, report, dense export bit for bit), a size of nnz·4 + numel/8 + the dense rest, and
 * every reader that makes sense accepting it (--resume refuses it, in one line).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { useBackend } from '../helpers/tf.js';
import { saveCheckpoint, readCheckpoint, SPARSE_CHECKPOINT_FORMAT } from '../../src/train/checkpoint.js';
import { exportCheckpoint } from '../../src/cli/export.js';
import { modelFromCheckpoint } from '../../src/report/checkpoint-model.js';
import { stateDict } from '../../src/nn/state-dict.js';
import { layerStats } from '../../src/sparsity/stats.js';
import { readTorchCheckpoint, PyDict } from '../../src/io/pytorch/index.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { writeReport } from '../../src/report/report.js';
import type { HostTensor, StateDict } from '../../src/io/host-tensor.js';
import { UserError } from '../../src/util/errors.js';
import { GMPConv } from '../../src/nn/conv/gmp.js';
import { parse } from 'csv-parse/sync';
import { buildModel, randomizeState, fixedInput, logitsOf, META } from '../interop/helpers.js';
import { tmpDir, tinyDataset, tinyConfig, writeYaml, runInProcess, listFiles } from '../helpers/run.js';

const dir = tmpDir('sparse-ckpt');
after(() => fs.rmSync(dir, { recursive: true, force: true }));
before(async () => {
  await useBackend('cpu');
});

const bytesOf = (t: HostTensor) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);

function assertSameBytes(a: StateDict, b: StateDict, what: string): void {
  assert.deepEqual([...a.keys()], [...b.keys()], `${what}: names/order`);
  for (const [k, v] of a) {
    const w = b.get(k)!;
    assert.deepEqual(v.shape, w.shape, `${what}: ${k} shape`);
    assert.equal(v.dtype, w.dtype, `${what}: ${k} dtype`);
    assert.ok(bytesOf(v).equals(bytesOf(w)), `${what}: ${k} bytes`);
  }
}

async function pthStateDict(file: string): Promise<StateDict> {
  const obj = await readTorchCheckpoint(file);
  assert.ok(obj instanceof PyDict);
  return obj.get('state_dict') as unknown as StateDict;
}

const CASES: Array<{ name: string; argv: string[]; size: number; gmpRate?: number }> = [
  { name: 'STR ResNet18', argv: ['--arch', 'ResNet18', '--conv-type', 'STRConv', '--stem', 'small'], size: 16 },
  { name: 'GMP ResNet18 at 90 % (current rate 60 %)', argv: ['--arch', 'ResNet18', '--conv-type', 'GMPConv', '--prune-rate', '0.9', '--stem', 'small'], size: 16, gmpRate: 0.6 },
  { name: 'DNW MobileNetV1 at 90 %', argv: ['--arch', 'MobileNetV1', '--conv-type', 'DNWConv', '--prune-rate', '0.9'], size: 32 },
  { name: 'DNW ResNet50 at 80 %', argv: ['--arch', 'ResNet50', '--conv-type', 'DNWConv', '--prune-rate', '0.8', '--stem', 'small'], size: 16 },
];

for (const c of CASES) {
  describe(`compact checkpoint of ${c.name}`, () => {
    const base = path.join(dir, c.name.replace(/\W+/g, '_'));
    const ckpt = `${base}.safetensors`;
    const sparse = `${base}.sparse.safetensors`;
    const x = fixedInput(2, c.size, c.name);
    let logits: Float32Array;
    let nnz = 0;
    let numel = 0;
    let zeros: number[];

    before(async () => {
      const { model, config } = buildModel([...c.argv, '--width-mult', '0.125', '--num-classes', '10', '--seed', '5']);
      randomizeState(model, c.name);
      for (const [, conv] of model.convLayers()) if (c.gmpRate !== undefined && conv instanceof GMPConv) conv.setCurrPruneRate(c.gmpRate);
      logits = logitsOf(model, x);
      zeros = layerStats(model, model.convLayers()).map((s) => s.zeros);
      for (const [, conv] of model.convLayers()) numel += conv.numel;
      nnz = numel - zeros.reduce((a, b) => a + b, 0);
      await saveCheckpoint(ckpt, { model, meta: { ...META, arch: model.arch }, config, classNames: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'] });
      model.dispose();
      const r = await exportCheckpoint({ checkpoint: ckpt, format: 'sparse', log: () => {} });
      assert.equal(r.out, sparse, 'default name <stem>.sparse.safetensors');
    });

    test('reads back as the same model: identical logits, metadata and class names', async () => {
      const ck = await readCheckpoint(sparse, '--pretrained');
      const orig = await readCheckpoint(ckpt, '--pretrained');
      assert.deepEqual(ck.meta, orig.meta);
      assert.deepEqual(ck.config, orig.config);
      assert.deepEqual(ck.pruneRates, orig.pruneRates);
      assert.deepEqual(ck.classNames, orig.classNames);
      assert.deepEqual([...ck.stateDict.keys()], [...orig.stateDict.keys()]);
      assert.equal(ck.optimizerState.size, 0);
      const { model } = modelFromCheckpoint(ck);
      try {
        assert.deepEqual(logitsOf(model, x), logits);
        assert.deepEqual(layerStats(model, model.convLayers()).map((s) => s.zeros), zeros);
      } finally {
        model.dispose();
      }
    });

    test('size: nnz·4 + mask per conv (⌈numel/8⌉ bits, or indices where smaller) + the dense rest + header', async () => {
      const { tensors, metadata } = await readSafetensors(sparse);
      assert.equal(metadata.format, SPARSE_CHECKPOINT_FORMAT);
      const layout = JSON.parse(metadata.sparse_tensors) as Record<string, { shape: number[]; mask: string }>;
      const { model } = modelFromCheckpoint(await readCheckpoint(ckpt));
      const full = stateDict(model);
      const nnzOf = new Map(layerStats(model, model.convLayers()).map((s) => [`${s.name}.weight`, s.numel - s.zeros]));
      model.dispose();
      let data = 0;
      let denseTotal = 0;
      for (const [k, t] of full) {
        denseTotal += t.data.byteLength;
        const nz = nnzOf.get(k);
        if (nz === undefined || !layout[k]) {
          // kept dense: not a conv, or a conv whose values + mask would not be smaller
          if (nz !== undefined) assert.ok(4 * nz + Math.min(Math.ceil(t.data.length / 8), 2 * nz) >= 4 * t.data.length, `${k} dense`);
          data += t.data.byteLength;
          continue;
        }
        const n = t.data.length;
        const mask = layout[k].mask === 'bits' ? Math.ceil(n / 8) : tensors.get(`${k}:indices`)!.data.byteLength;
        if (layout[k].mask === 'indices') assert.ok(mask < Math.ceil(n / 8), `${k}: indices only where smaller than bits`);
        data += 4 * nz + mask;
      }
      const size = fs.statSync(sparse).size;
      const header = Number(fs.readFileSync(sparse).readBigUInt64LE(0));
      assert.equal(size, 8 + header + data, 'file = 8 + JSON header + nnz·4 + masks + dense rest, nothing else');
      assert.ok(nnz < numel);
      if (c.name.includes('%')) assert.ok(size < 0.5 * denseTotal, `${size} vs dense ${denseTotal}`);
    });

    test('export back to .pth --dense is bit-identical to exporting the original with --dense', async () => {
      await exportCheckpoint({ checkpoint: ckpt, out: `${base}_dense.pth`, dense: true, log: () => {} });
      await exportCheckpoint({ checkpoint: sparse, out: `${base}_sparse_dense.pth`, dense: true, log: () => {} });
      assertSameBytes(await pthStateDict(`${base}_sparse_dense.pth`), await pthStateDict(`${base}_dense.pth`), 'dense .pth');
    });

    test('report gives the same layer table (DNW/GMP: threshold = largest pruned magnitude, now 0)', async () => {
      const a = await writeReport(ckpt, { out: `${base}_r1`, png: false, log: () => {} });
      const b = await writeReport(sparse, { out: `${base}_r2`, png: false, log: () => {} });
      const table = (f: string) => {
        const rows = parse(fs.readFileSync(f, 'utf8')) as string[][];
        const t = rows[0].indexOf('threshold');
        // STR keeps its thresholds; DNW/GMP's reported threshold is a pruned weight, which the file drops
        return c.name.startsWith('STR') ? rows : rows.map((r) => r.filter((_, i) => i !== t));
      };
      assert.deepEqual(table(`${base}_r2/layers.csv`), table(`${base}_r1/layers.csv`));
      assert.equal(a.summary.sparsity, b.summary.sparsity);
    });

    test('--resume refuses it in one line', async () => {
      assert.ok((await readCheckpoint(sparse)).stateDict.size > 0, 'readable without forResume');
      await assert.rejects(readCheckpoint(sparse, '--resume', { forResume: true }), (e: Error) => e instanceof UserError && /--resume .*sparse\.safetensors: a compact checkpoint holds the weights only/.test(e.message) && !e.message.includes('\n'));
    });
  });
}

test('export --format sparse --dense is refused', async () => {
  await assert.rejects(exportCheckpoint({ checkpoint: 'x.safetensors', format: 'sparse', dense: true, log: () => {} }), /--format sparse --dense/);
});

describe('a training run with --save-sparse', () => {
  const root = path.join(dir, 'run');
  let runDir: string;
  before(async () => {
    await useBackend('wasm');
    const data = await tinyDataset(root);
    const cfg = writeYaml(path.join(root, 'tiny.yaml'), tinyConfig(data, { epochs: 1, conv_type: 'STRConv', sInit_value: -3, log_dir: path.join(root, 'runs') }));
    const r = await runInProcess(['--config', cfg, '--save-sparse'], root);
    runDir = r.result.runDir!;
  });
  after(async () => {
    await useBackend('cpu');
  });

  test('writes a compact twin of every checkpoint, with the class-folder names', async () => {
    const files = listFiles(path.join(runDir, 'checkpoints'));
    assert.deepEqual(files, [
      'epoch_0.safetensors', 'epoch_0.sparse.safetensors', 'initial.safetensors', 'initial.sparse.safetensors',
      'last.safetensors', 'last.sparse.safetensors', 'model_best.safetensors', 'model_best.sparse.safetensors',
    ]);
    const full = await readCheckpoint(path.join(runDir, 'checkpoints', 'last.safetensors'));
    const compact = await readCheckpoint(path.join(runDir, 'checkpoints', 'last.sparse.safetensors'), '--pretrained');
    const cfg = path.join(root, 'tiny.yaml');
    await assert.rejects(runInProcess(['--config', cfg, '--resume', path.join(runDir, 'checkpoints', 'last.sparse.safetensors')], root), /--resume .*last\.sparse\.safetensors: a compact checkpoint/);
    assert.deepEqual(full.classNames, ['class_000', 'class_001', 'class_002', 'class_003']);
    assert.deepEqual(compact.classNames, full.classNames);
    assert.deepEqual(compact.meta, full.meta);
  });

  test('--pretrained COMPACT --evaluate gives the full checkpoint\'s top-1', async () => {
    const cfg = path.join(root, 'tiny.yaml');
    const a = await runInProcess(['--config', cfg, '--pretrained', path.join(runDir, 'checkpoints', 'last.safetensors'), '--evaluate'], root);
    const b = await runInProcess(['--config', cfg, '--pretrained', path.join(runDir, 'checkpoints', 'last.sparse.safetensors'), '--evaluate'], root);
    assert.equal(b.result.lastAcc1, a.result.lastAcc1);
    assert.equal(b.result.lastAcc5, a.result.lastAcc5);
  });
});
