import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import * as tf from '../../src/tf.js';
import { createDatasets, type DataOptions } from '../../src/data/datasets.js';
import { DecodedCache, MAX_CACHED_PIXELS } from '../../src/data/decoded-cache.js';
import type { DataLoader, ImageFolderLoader } from '../../src/data/loader.js';
import { repoPath, tempDir } from './helpers.js';

describe('DecodedCache', () => {
  test('stores copies by index, shares them through the buffers, stops when the arena is full', () => {
    const c = DecodedCache.create(4, 100, true);
    const px = (n: number, v: number) => new Uint8Array(n).fill(v);
    assert.equal(c.get(0), null);
    assert.equal(c.put(0, 4, 3, px(36, 7)), true);
    const other = new DecodedCache(c.buffers); // what a decode thread builds from the posted buffers
    const hit = other.get(0)!;
    assert.deepEqual([hit.width, hit.height, hit.rgb.length, hit.rgb[35]], [4, 3, 36, 7]);
    assert.equal(other.put(1, 5, 4, px(60, 9)), true);
    assert.equal(c.get(1)!.rgb[0], 9);
    assert.equal(c.usedBytes, 96);
    assert.equal(c.put(2, 1, 2, px(6, 1)), false, '96 + 6 bytes do not fit in 100');
    assert.equal(c.get(2), null);
    assert.equal(c.put(3, 1, 1, px(3, 1)), true, 'a smaller image still fits');
    assert.equal(c.put(0, 4, 3, px(36, 1)), true, 'already cached: kept as first written');
    assert.equal(c.get(0)!.rgb[0], 7);
    assert.equal(c.put(9, 1, 1, px(3, 1)), false, 'index out of range');
    assert.equal(c.put(2, 1, 1, px(4, 1)), false, 'pixel count does not match the size');
  });

  test('images above MAX_CACHED_PIXELS are not cached', () => {
    const c = DecodedCache.create(1, 2 ** 22, false);
    const side = Math.ceil(Math.sqrt(MAX_CACHED_PIXELS)) + 1;
    assert.equal(c.put(0, side, side, new Uint8Array(side * side * 3)), false);
    assert.equal(c.usedBytes, 0);
  });
});

describe('loader with the decoded-image cache', () => {
  let root = '';
  before(async () => {
    await tf.setBackend('cpu');
    root = tempDir('cache');
    // Real PNGs (Fashion-MNIST), small noisy JPEGs (cached), and JPEGs large enough for the
    // shrink-on-load path (never cached), in two classes.
    const fm = repoPath('data', 'fashion-mnist', 'train');
    const classes = readdirSync(fm).sort().slice(0, 2);
    let seed = 1;
    const noise = (n: number) => Buffer.from(Array.from({ length: n }, () => ((seed = (seed * 16807) % 2147483647) & 255)));
    for (const split of ['train', 'val']) {
      for (const [k, cls] of classes.entries()) {
        const dir = path.join(root, split, `c${k}`);
        mkdirSync(dir, { recursive: true });
        for (const f of readdirSync(path.join(fm, cls)).sort().slice(0, 5)) copyFileSync(path.join(fm, cls, f), path.join(dir, f));
        for (const [i, [w, h]] of [[20, 14], [13, 22], [40, 52]].entries()) {
          const jpg = await sharp(noise(w * h * 3), { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
          writeFileSync(path.join(dir, `n${i}.jpg`), jpg);
        }
      }
    }
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  const opts = (o: Partial<DataOptions>): DataOptions => ({
    data: root, set: 'ImageFolder', batchSize: 4, workers: 0, seed: 3, imageSize: 12, valResize: 14,
    strictData: true, log: () => undefined, ...o,
  });

  async function images(loader: DataLoader, epoch: number): Promise<number[][]> {
    const out: number[][] = [];
    for await (const b of loader.epoch(epoch)) {
      out.push(Array.from(await b.images.data()));
      tf.dispose([b.images, b.labels]);
    }
    return out;
  }

  for (const workers of [0, 2]) {
    test(`later epochs come from the cache and equal a loader without one (workers ${workers})`, async () => {
      const cached = await createDatasets(opts({ workers }));
      const plain = await createDatasets(opts({ workers, decodeCacheMiB: 0 }));
      const cachedTrain = cached.train as ImageFolderLoader;
      try {
        assert.equal(cachedTrain.cachedBytes, 0);
        for (const epoch of [0, 1, 2]) {
          assert.deepEqual(await images(cached.train, epoch), await images(plain.train, epoch), `train epoch ${epoch}`);
          if (epoch === 0) {
            // every image was seen once: 10 PNGs 28x28 grey→RGB, 4 small JPEGs 20x14 and 13x22
            assert.equal(cachedTrain.cachedBytes, 10 * 28 * 28 * 3 + 2 * (20 * 14 + 13 * 22) * 3);
          }
          assert.deepEqual(await images(cached.val, epoch), await images(plain.val, epoch), `val epoch ${epoch}`);
        }
        assert.equal((plain.train as ImageFolderLoader).cachedBytes, 0);
      } finally {
        for (const d of [cached, plain]) {
          await d.train.close();
          await d.val.close();
        }
      }
    });
  }
});
