/**
 * `str-train predict`: the val transform of the checkpoint's run (the same pixels as the val
 * loader), softmax top-k by class name, folders walked, a corrupt image an error entry that does
 * not stop the others, text and JSON output, exit status 0/1/2.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '../../src/tf.js';
import { useBackend } from '../helpers/tf.js';
import { saveCheckpoint } from '../../src/train/checkpoint.js';
import { predict, type Prediction } from '../../src/predict/predict.js';
import { createDatasets } from '../../src/data/datasets.js';
import { buildModel, randomizeState, META } from '../interop/helpers.js';
import { tmpDir, tinyDataset, runCli } from '../helpers/run.js';

const dir = tmpDir('predict');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const CLASSES = ['class_000', 'class_001', 'class_002', 'class_003'];
let data: string;
const ckpt = path.join(dir, 'model.safetensors');
const noNames = path.join(dir, 'old.safetensors');
const corrupt = path.join(dir, 'corrupt.jpg');

before(async () => {
  await useBackend('cpu');
  data = await tinyDataset(dir, { size: [24, 20] });
  // image_size 16 after a shorter-side resize to 18: the transform must come from the config
  const { model, config } = buildModel(['--arch', 'ResNet18', '--stem', 'small', '--width-mult', '0.125', '--num-classes', '4', '--conv-type', 'STRConv', '--image-size', '16', '--val-resize', '18', '--seed', '1']);
  randomizeState(model, 'predict');
  await saveCheckpoint(ckpt, { model, meta: { ...META, arch: 'ResNet18' }, config, classNames: CLASSES });
  await saveCheckpoint(noNames, { model, meta: { ...META, arch: 'ResNet18' }, config });
  model.dispose();
  const jpeg = fs.readFileSync(path.join(data, 'val', 'class_001', fs.readdirSync(path.join(data, 'val', 'class_001'))[0]));
  fs.writeFileSync(corrupt, jpeg.subarray(0, 40));
});

/** The val loader's softmax probabilities for every val image, by file. */
async function loaderProbabilities(): Promise<Map<string, Float32Array>> {
  const ds = await createDatasets({ data, set: 'ImageFolder', batchSize: 5, workers: 0, imageSize: 16, valResize: 18, strictData: true, seed: 0, log: () => {} });
  const { model } = buildModel(['--arch', 'ResNet18', '--stem', 'small', '--width-mult', '0.125', '--num-classes', '4', '--conv-type', 'STRConv', '--seed', '1']);
  randomizeState(model, 'predict');
  model.eval();
  const out = new Map<string, Float32Array>();
  for await (const b of ds.val.epoch(0)) {
    const p = tf.tidy(() => tf.softmax(model.forward(b.images)));
    const v = p.dataSync();
    // keyed by dataset index: the position in the scanned (sorted) file list
    for (let i = 0; i < b.size; i++) out.set(String(b.indices[i]), Float32Array.from(v.subarray(i * 4, (i + 1) * 4)));
    p.dispose();
    b.images.dispose();
    b.labels.dispose();
  }
  model.dispose();
  await ds.train.close();
  await ds.val.close();
  return out;
}

describe('predict (library)', () => {
  let results: Prediction[];
  const batches: number[] = [];
  before(async () => {
    results = await predict({
      checkpoint: ckpt,
      inputs: [path.join(data, 'val'), corrupt, path.join(dir, 'missing.png')],
      topK: 3,
      batchSize: 5,
      onResults: (ps) => batches.push(ps.length),
    });
  });

  test('walks the folder in the loader\'s order, keeps going after bad files, batches', () => {
    assert.equal(results.length, 16 + 2);
    const val = results.slice(0, 16);
    assert.ok(val.every((p) => p.top && !p.error));
    assert.deepEqual(val.map((p) => path.relative(path.join(data, 'val'), p.file).split(path.sep)[0]), CLASSES.flatMap((c) => [c, c, c, c]));
    assert.deepEqual(results[16], { file: corrupt, error: results[16].error });
    assert.match(results[16].error!, /.+/);
    assert.match(results[17].error!, /^cannot read \(ENOENT\)$/);
    assert.deepEqual(batches, [5, 5, 5, 2, 1], 'batches of 5, the bad paths where they stand');
  });

  test('top-k by class name, probabilities of the val transform (= the val loader\'s)', async () => {
    const want = await loaderProbabilities();
    results.slice(0, 16).forEach((p, i) => {
      const probs = want.get(String(i))!;
      const order = [...probs.keys()].sort((a, b) => probs[b] - probs[a]).slice(0, 3);
      assert.deepEqual(p.top!.map((t) => t.index), order, p.file);
      assert.deepEqual(p.top!.map((t) => t.class), order.map((k) => CLASSES[k]));
      p.top!.forEach((t) => assert.ok(Math.abs(t.probability - probs[t.index]) <= 1e-6, `${p.file}: ${t.probability} vs ${probs[t.index]}`));
    });
  });
});

test('on wasm (prepared sparse inference) the same classes and probabilities within 1e-4', async () => {
  const inputs = [path.join(data, 'val')];
  const cpu = await predict({ checkpoint: ckpt, inputs, topK: 4 });
  await useBackend('wasm');
  try {
    const before = tf.memory().numTensors;
    const wasm = await predict({ checkpoint: ckpt, inputs, topK: 4 });
    assert.equal(tf.memory().numTensors, before, 'prepared tensors disposed');
    wasm.forEach((p, i) => {
      const want = new Map(cpu[i].top!.map((t) => [t.index, t.probability]));
      for (const t of p.top!) assert.ok(Math.abs(t.probability - want.get(t.index)!) <= 1e-4, `${p.file}: ${t.index}`);
    });
  } finally {
    await useBackend('cpu');
  }
});

describe('str-train predict (CLI)', () => {
  const img = () => path.join(data, 'val', 'class_002', fs.readdirSync(path.join(data, 'val', 'class_002'))[1]);

  test('text: one line per image with class names; a corrupt image on stderr, exit 1', () => {
    const r = runCli(['predict', '--checkpoint', ckpt, '--backend', 'cpu', '--top-k', '2', img(), corrupt], dir);
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1);
    assert.match(lines[0], new RegExp(`^${img().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\t(class_00\\d) \\(\\d+\\.\\d\\d %\\), (class_00\\d) \\(\\d+\\.\\d\\d %\\)$`));
    assert.match(r.stderr, new RegExp(`^str-train predict: ${corrupt.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .+\\n$`));
  });

  test('--json: an array of {file, top} and {file, error}; all good → exit 0; no names → indices', () => {
    const r = runCli(['predict', '--checkpoint', noNames, '--backend', 'cpu', '--json', '--top-k', '4', img()], dir);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Prediction[];
    assert.equal(out.length, 1);
    assert.deepEqual(out[0].top!.map((t) => t.class).sort(), ['0', '1', '2', '3']);
    const sum = out[0].top!.reduce((a, t) => a + t.probability, 0);
    assert.ok(Math.abs(sum - 1) < 1e-5, `probabilities sum to ${sum}`);
    const bad = runCli(['predict', '--checkpoint', ckpt, '--backend', 'cpu', '--json', corrupt], dir);
    assert.equal(bad.code, 1);
    const e = JSON.parse(bad.stdout) as Prediction[];
    assert.equal(e[0].file, corrupt);
    assert.ok(e[0].error && !e[0].top);
  });

  test('usage errors: one line, exit 2', () => {
    for (const [args, re] of [
      [['predict', img()], /^str-train: predict: needs --checkpoint FILE\n$/],
      [['predict', '--checkpoint', ckpt], /^str-train: predict: needs at least one image file or folder\n$/],
      [['predict', '--checkpoint', ckpt, '--top-k', '0', img()], /^str-train: predict --top-k 0: expected an integer >= 1\n$/],
      [['predict', '--checkpoint', path.join(dir, 'nope.safetensors'), img()], /^str-train: --checkpoint .*nope\.safetensors: no such file\n$/],
    ] as const) {
      const r = runCli([...args, '--backend', 'cpu'], dir);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, re);
    }
  });
});
