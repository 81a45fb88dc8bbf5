import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '../../src/tf.js';
import { createDatasets, type DataOptions } from '../../src/data/datasets.js';
import { epochPermutation } from '../../src/data/sampling.js';
import { normalizationLut } from '../../src/data/transforms.js';
import { UserError } from '../../src/util/errors.js';
import { useBackend } from '../helpers/tf.js';
import { runInProcess, tinyConfig, writeYaml } from '../helpers/run.js';
import { tempDir } from './helpers.js';

const H = 6;
const W = 5;
const px = (i: number, y: number, x: number, c: number) => (i * 31 + y * 7 + x * 13 + c * 50) & 255;

async function writeH5(file: string, n: number, labels: number[], o: { imagesAsFloat?: boolean } = {}): Promise<void> {
  const h5 = await import('h5wasm/node');
  await h5.ready;
  const f = new h5.File(file, 'w');
  const data = new Uint8Array(n * H * W * 3);
  for (let i = 0; i < n; i++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < 3; c++) data[((i * H + y) * W + x) * 3 + c] = px(i, y, x, c);
  // alphabetical order decides which is which, as in the reference: 'images' < 'labels'
  f.create_dataset({ name: 'labels', data: BigInt64Array.from(labels, (l) => BigInt(l)), shape: [n] });
  f.create_dataset({ name: 'images', data: o.imagesAsFloat ? Float32Array.from(data) : data, shape: [n, H, W, 3] });
  f.close();
}

describe('--set TinyImageNet (HDF5)', () => {
  let root = '';
  const trainLabels = [0, 1, 2, 1, 0, 2, 2, 1, 0, 1, 2];
  before(async () => {
    await tf.setBackend('cpu');
    root = tempDir('tin');
    mkdirSync(path.join(root, 'tiny_imagenet'));
    await writeH5(path.join(root, 'tiny_imagenet', 'train.h5'), 11, trainLabels);
    await writeH5(path.join(root, 'tiny_imagenet', 'val.h5'), 5, [2, 0, 1, 1, 0]);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  const opts = (o: Partial<DataOptions> = {}): DataOptions => ({
    data: root, set: 'TinyImageNet', batchSize: 4, workers: 2, seed: 5, imageSize: 224, valResize: 256,
    strictData: true, numClasses: 3, log: () => undefined, ...o,
  });

  test('train: seeded permutation, every image once at its own size, normalised, flipped per sample; val in order, unflipped', async () => {
    const d = await createDatasets(opts());
    const lut = normalizationLut();
    const before = tf.memory().numTensors;
    const expect = (i: number, flip: boolean, y: number, x: number, c: number) => lut[c * 256 + px(i, y, flip ? W - 1 - x : x, c)];
    const seen: number[] = [];
    const flips: boolean[] = [];
    for await (const b of d.train.epoch(1)) {
      assert.deepEqual(b.images.shape, [b.size, H, W, 3]);
      const img = await b.images.data();
      assert.deepEqual(Array.from(await b.labels.data()), Array.from(b.indices, (i) => trainLabels[i]));
      b.indices.forEach((i, k) => {
        const at = (y: number, x: number, c: number) => img[k * H * W * 3 + (y * W + x) * 3 + c];
        const flip = at(0, 0, 0) !== expect(i, false, 0, 0, 0);
        for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < 3; c++) assert.equal(at(y, x, c), expect(i, flip, y, x, c));
        flips.push(flip);
      });
      seen.push(...b.indices);
      tf.dispose([b.images, b.labels]);
    }
    assert.deepEqual(seen, Array.from(epochPermutation(11, '5', 1)));
    assert.ok(flips.includes(true) && flips.includes(false), 'some samples flipped, some not');
    const val: number[] = [];
    for await (const b of d.val.epoch(0)) {
      const img = await b.images.data();
      b.indices.forEach((i, k) => assert.equal(img[k * H * W * 3 + 2], expect(i, false, 0, 0, 2)));
      val.push(...b.indices);
      tf.dispose([b.images, b.labels]);
    }
    assert.deepEqual(val, [0, 1, 2, 3, 4]);
    assert.equal(tf.memory().numTensors, before);
    assert.equal(d.train.numBatches, 3);
    await d.train.close();
    await d.val.close();
  });

  test('str-train trains STR on it end to end (wasm)', async () => {
    await useBackend('wasm');
    try {
      const cfg = writeYaml(path.join(root, 'tin.yaml'), tinyConfig(root, {
        set: 'TinyImageNet', num_classes: 3, batch_size: 4, epochs: 1, conv_type: 'STRConv', sInit_value: -4, name: 'STR',
      }));
      const r = await runInProcess(['--config', cfg, '--log-dir', path.join(root, 'runs')], root);
      assert.match(r.lines.join('\n'), /=> data: 11 train and 5 val images of 5x6 .*TinyImageNet HDF5/);
      assert.ok(Number.isFinite(r.result.lastAcc1), `val top-1 ${r.result.lastAcc1}`);
      assert.ok(r.result.runDir && existsSync(path.join(r.result.runDir, 'checkpoints', 'last.safetensors')));
    } finally {
      await tf.setBackend('cpu');
    }
  });

  test('rank shards of a global batch cover it once', async () => {
    const shards = await Promise.all([0, 1].map((rank) => createDatasets(opts({ rank, worldSize: 2 }))));
    const got: number[][] = [[], []];
    for (const [r, d] of shards.entries()) {
      for await (const b of d.train.epoch(0)) {
        got[r].push(...b.indices);
        tf.dispose([b.images, b.labels]);
      }
      await d.train.close();
      await d.val.close();
    }
    assert.deepEqual([...got[0], ...got[1]].sort((a, b) => a - b), Array.from({ length: 11 }, (_, i) => i));
  });

  test('a missing file, a wrong layout and labels beyond the model are one-line errors', async () => {
    await assert.rejects(createDatasets(opts({ data: path.join(root, 'nowhere') })), (e: unknown) => e instanceof UserError && /train split .*train\.h5 does not exist/.test(e.message));
    await assert.rejects(createDatasets(opts({ numClasses: 2 })), (e: unknown) => e instanceof UserError && /2 output classes .*labels up to 2/.test(e.message));
    const bad = tempDir('tin-bad');
    try {
      mkdirSync(path.join(bad, 'tiny_imagenet'));
      await writeH5(path.join(bad, 'tiny_imagenet', 'train.h5'), 3, [0, 1, 2], { imagesAsFloat: true });
      await writeH5(path.join(bad, 'tiny_imagenet', 'val.h5'), 3, [0, 1, 2]);
      await assert.rejects(createDatasets(opts({ data: bad })), (e: unknown) => e instanceof UserError && /'images' must be uint8 images N×H×W×3/.test(e.message));
      writeFileSync(path.join(bad, 'tiny_imagenet', 'train.h5'), 'not hdf5');
      await assert.rejects(createDatasets(opts({ data: bad })), (e: unknown) => e instanceof UserError && /train\.h5 is not an HDF5 file/.test(e.message));
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
  });
});
