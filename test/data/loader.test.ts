import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '../../src/tf.js';
import { createDatasets, type DataOptions } from '../../src/data/datasets.js';
import type { DataLoader } from '../../src/data/loader.js';
import { batchPositions, epochLayout, epochPermutation, shardOfBatch } from '../../src/data/sampling.js';
import { normalizationLut } from '../../src/data/transforms.js';
import { UserError } from '../../src/util/errors.js';
import { colourOf, solidPng, tempDir, writeTree } from './helpers.js';

interface Seen {
  indices: number[];
  labels: number[];
  sizes: number[];
  images: Float32Array[];
}

async function drain(loader: DataLoader, epoch: number, keepImages = false): Promise<Seen> {
  const seen: Seen = { indices: [], labels: [], sizes: [], images: [] };
  for await (const b of loader.epoch(epoch)) {
    seen.indices.push(...b.indices);
    seen.labels.push(...(await b.labels.data()));
    seen.sizes.push(b.size);
    assert.deepEqual(b.images.shape.slice(1), [8, 8, 3]);
    assert.equal(b.images.shape[0], b.size);
    assert.equal(b.images.dtype, 'float32');
    assert.equal(b.labels.dtype, 'int32');
    if (keepImages) seen.images.push((await b.images.data()) as Float32Array);
    tf.dispose([b.images, b.labels]);
  }
  return seen;
}

const COUNTS = [9, 7, 7]; // 23 train images
let root = '';

before(async () => {
  await tf.setBackend('cpu');
  root = tempDir('loader');
  await writeTree(root, 'train', COUNTS);
  await writeTree(root, 'val', [3, 2, 2]);
});
after(() => rmSync(root, { recursive: true, force: true }));

const opts = (o: Partial<DataOptions> = {}): DataOptions => ({
  data: root,
  set: 'ImageFolder',
  batchSize: 5,
  workers: 0,
  seed: 7,
  imageSize: 8,
  valResize: 10,
  strictData: false,
  log: () => undefined,
  ...o,
});

describe('streaming loader', () => {
  test('an epoch sees every image once, keeps the last partial batch, labels match, no tensor leak', async () => {
    const d = await createDatasets(opts());
    const before = tf.memory().numTensors;
    assert.equal(d.train.numBatches, 5);
    assert.equal(d.train.numSamples, 23);
    assert.equal(d.train.batchSize, 5);
    const s = await drain(d.train, 0, true);
    assert.deepEqual(s.sizes, [5, 5, 5, 5, 3]);
    assert.deepEqual([...s.indices].sort((a, b) => a - b), Array.from({ length: 23 }, (_, i) => i));
    const labelOf = (i: number): number => (i < 9 ? 0 : i < 16 ? 1 : 2);
    assert.deepEqual(s.labels, s.indices.map(labelOf));
    assert.equal(tf.memory().numTensors, before);
    await d.train.close();
    await d.val.close();
  });

  test('a known pixel arrives normalised; val is in file order', async () => {
    const d = await createDatasets(opts());
    const s = await drain(d.val, 0, true);
    assert.deepEqual(s.indices, [0, 1, 2, 3, 4, 5, 6]);
    assert.deepEqual(s.sizes, [5, 2]);
    const lut = normalizationLut();
    // val image 4 = class1/001.png, a solid colour: every output value is its normalised colour
    const rgb = colourOf(1, 1);
    const img = s.images[0].subarray(4 * 192, 5 * 192);
    for (let i = 0; i < 192; i += 3) for (let c = 0; c < 3; c++) assert.equal(img[i + c], lut[c * 256 + rgb[c]]);
    await d.train.close();
    await d.val.close();
  });

  test('shuffle is seeded, differs per epoch, and does not depend on the worker count', async () => {
    const a = await createDatasets(opts({ workers: 0 }));
    const b = await createDatasets(opts({ workers: 2 }));
    const c = await createDatasets(opts({ seed: 8 }));
    const a0 = await drain(a.train, 0, true);
    const b0 = await drain(b.train, 0, true);
    const a1 = await drain(a.train, 1);
    const c0 = await drain(c.train, 0);
    assert.deepEqual(a0.indices, b0.indices, 'same seed and epoch → same order');
    assert.notDeepEqual(a0.indices, a1.indices, 'a new permutation each epoch');
    assert.notDeepEqual(a0.indices, c0.indices, 'another seed → another order');
    assert.notDeepEqual(a0.indices, [...a0.indices].sort((x, y) => x - y), 'shuffled');
    // crops and flips come from (seed, epoch, index): bit-identical with 0 or 2 decode threads
    for (let k = 0; k < a0.images.length; k++) assert.deepEqual(a0.images[k], b0.images[k]);
    for (const d of [a, b, c]) {
      await d.train.close();
      await d.val.close();
    }
  });

  test('breaking out of an epoch early leaks nothing and the next epoch works', async () => {
    const d = await createDatasets(opts({ workers: 1 }));
    const before = tf.memory().numTensors;
    for await (const b of d.train.epoch(0)) {
      tf.dispose([b.images, b.labels]);
      break;
    }
    assert.equal(tf.memory().numTensors, before);
    const s = await drain(d.train, 1);
    assert.equal(s.indices.length, 23);
    await d.train.close();
    await d.val.close();
  });
});

describe('bad files', () => {
  let bad = '';
  before(async () => {
    bad = tempDir('bad');
    await writeTree(bad, 'train', [4, 4]);
    await writeTree(bad, 'val', [1, 1]);
    const good = await solidPng(20, 20, [1, 2, 3]);
    const jpegish = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), good.subarray(0, 40)]);
    writeFileSync(path.join(bad, 'train', 'class0', 'corrupt.jpg'), jpegish); // truncated / corrupt JPEG
    writeFileSync(path.join(bad, 'train', 'class1', 'empty.jpg'), ''); // zero bytes
    writeFileSync(path.join(bad, 'train', 'class1', 'notes.png'), 'these are not pixels'); // not an image
  });
  after(() => rmSync(bad, { recursive: true, force: true }));

  for (const workers of [0, 2]) {
    test(`are skipped with one warning each and counted (workers=${workers})`, async () => {
      const lines: string[] = [];
      const d = await createDatasets({ ...opts({ workers }), data: bad, batchSize: 4, log: (l) => lines.push(l) });
      assert.equal(d.train.numSamples, 11);
      const s = await drain(d.train, 0);
      assert.equal(s.indices.length, 8);
      assert.equal(s.sizes.reduce((x, y) => x + y), 8);
      assert.equal(d.train.stats.skipped, 3);
      assert.deepEqual(
        d.train.stats.skippedFiles.map((f) => path.relative(bad, f)).sort(),
        ['train/class0/corrupt.jpg', 'train/class1/empty.jpg', 'train/class1/notes.png'],
      );
      const warnings = lines.filter((l) => l.startsWith('warning: skipping '));
      assert.equal(warnings.length, 3, lines.join('\n'));
      assert.ok(warnings.some((l) => /empty\.jpg: empty file \(0 bytes\)$/.test(l)));
      assert.ok(warnings.every((l) => !l.includes('\n')));
      // next epoch: counted again, not warned again
      await drain(d.train, 1);
      assert.equal(d.train.stats.skipped, 3);
      assert.equal(lines.filter((l) => l.startsWith('warning: skipping ')).length, 3);
      await d.train.close();
      await d.val.close();
    });
  }

  test('--strict-data turns the first bad file into a UserError naming it', async () => {
    const d = await createDatasets({ ...opts({ workers: 0 }), data: bad, batchSize: 20, strictData: true });
    await assert.rejects(drain(d.train, 0), (e: unknown) => e instanceof UserError && /^--strict-data: cannot load .*(corrupt\.jpg|empty\.jpg|notes\.png): /.test(e.message));
    await d.train.close();
    await d.val.close();
  });
});

describe('sharding across ranks', () => {
  test('every sample exactly once per epoch across ranks, same step count on every rank', async () => {
    const world = 3;
    const loaders = await Promise.all(
      Array.from({ length: world }, (_, rank) => createDatasets(opts({ batchSize: 6, rank, worldSize: world }))),
    );
    // 23 samples, global batch 6: 3 full batches (2 per rank) + a last batch of 5 split 1/2/2
    assert.deepEqual(loaders.map((l) => l.train.numSamples), [7, 8, 8]);
    const seen = await Promise.all(loaders.map((l) => drain(l.train, 3)));
    for (const s of seen) assert.equal(s.sizes.length, 4);
    const all = seen.flatMap((s) => s.indices).sort((a, b) => a - b);
    assert.deepEqual(all, Array.from({ length: 23 }, (_, i) => i));
    // rank r holds slice [2r, 2r+2) of each full global batch of the shared permutation
    const perm = epochPermutation(23, '7', 3);
    assert.deepEqual(seen[1].indices.slice(0, 2), [perm[2], perm[3]]);
    for (const l of loaders) {
      await l.train.close();
      await l.val.close();
    }
  });

  test('a last global batch smaller than the number of ranks gives empty batches', () => {
    // 20 samples, batch 6 on 3 ranks: last batch has 2 samples → ranks 1 and 2 get one each
    assert.deepEqual([0, 1, 2].map((r) => shardOfBatch(2, r, 3)), [[0, 0], [0, 1], [1, 2]]);
    assert.deepEqual([0, 1, 2].map((r) => epochLayout(20, 6, r, 3)), [
      { numBatches: 4, numSamples: 6 },
      { numBatches: 4, numSamples: 7 },
      { numBatches: 4, numSamples: 7 },
    ]);
    assert.deepEqual(batchPositions(20, 6, 3, 2, 3), [19, 20]);
    assert.deepEqual(batchPositions(20, 6, 1, 1, 3), [8, 10]);
  });

  test('empty shards are yielded so that ranks stay in step', async () => {
    const root2 = tempDir('shard');
    try {
      await writeTree(root2, 'train', [4]);
      await writeTree(root2, 'val', [1]);
      const d = await createDatasets({ ...opts(), data: root2, batchSize: 3, rank: 0, worldSize: 3 });
      const s = await drain(d.train, 0); // 4 samples: batches of 3 and 1 → rank 0's last part is empty
      assert.deepEqual(s.sizes, [1, 0]);
      await d.train.close();
      await d.val.close();
    } finally {
      rmSync(root2, { recursive: true, force: true });
    }
  });
});

describe('permutation', () => {
  test('is a permutation, fixed by (seed, epoch)', () => {
    const p = epochPermutation(1000, 's', 0);
    assert.deepEqual(Array.from(p).sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => i));
    assert.deepEqual(epochPermutation(1000, 's', 0), p);
    assert.notDeepEqual(epochPermutation(1000, 's', 1), p);
  });
});
