import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { runDataCommand } from '../../src/data/command.js';
import { FASHION_MNIST_CLASSES, balancedSubset, convertFashionMnist } from '../../src/data/fashion-mnist.js';
import { UserError } from '../../src/util/errors.js';
import { repoPath, tempDir } from './helpers.js';

function idxImages(n: number, rows: number, cols: number, pixel: (i: number, p: number) => number): Buffer {
  const b = Buffer.alloc(16 + n * rows * cols);
  b.writeUInt32BE(0x803, 0);
  b.writeUInt32BE(n, 4);
  b.writeUInt32BE(rows, 8);
  b.writeUInt32BE(cols, 12);
  for (let i = 0; i < n; i++) for (let p = 0; p < rows * cols; p++) b[16 + i * rows * cols + p] = pixel(i, p);
  return b;
}

function idxLabels(labels: number[]): Buffer {
  const b = Buffer.alloc(8 + labels.length);
  b.writeUInt32BE(0x801, 0);
  b.writeUInt32BE(labels.length, 4);
  labels.forEach((l, i) => (b[8 + i] = l));
  return b;
}

describe('Fashion-MNIST conversion', () => {
  test('idx (gzipped or not) → balanced ImageFolder PNG tree', async () => {
    const dir = tempDir('fmnist');
    try {
      const from = path.join(dir, 'idx');
      mkdirSync(from);
      const trainLabels = Array.from({ length: 30 }, (_, i) => (i * 7) % 10);
      writeFileSync(path.join(from, 'train-images-idx3-ubyte.gz'), gzipSync(idxImages(30, 4, 3, (i, p) => (i * 8 + p) % 256)));
      writeFileSync(path.join(from, 'train-labels-idx1-ubyte.gz'), gzipSync(idxLabels(trainLabels)));
      writeFileSync(path.join(from, 't10k-images-idx3-ubyte'), idxImages(10, 4, 3, (i) => 200 + i));
      writeFileSync(path.join(from, 't10k-labels-idx1-ubyte'), idxLabels([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]));
      const out = path.join(dir, 'out');
      const r = await convertFashionMnist({ from, out, trainPerClass: 2, log: () => undefined });
      assert.deepEqual(r, { train: 20, val: 10 });
      assert.deepEqual(readdirSync(path.join(out, 'train')), [...FASHION_MNIST_CLASSES]);
      // class 3 ('3_dress'): indices i with 7i ≡ 3 (mod 10) → 9, 19 (first two)
      assert.deepEqual(readdirSync(path.join(out, 'train', '3_dress')), ['00009.png', '00019.png']);
      const { data, info } = await sharp(path.join(out, 'train', '3_dress', '00019.png')).raw().toBuffer({ resolveWithObject: true });
      const meta = await sharp(path.join(out, 'train', '3_dress', '00019.png')).metadata();
      assert.equal(meta.channels, 1, 'stored as grayscale PNG');
      assert.equal(info.width, 3);
      assert.equal(info.height, 4);
      assert.equal(data[0], (19 * 8) % 256);
      assert.deepEqual(readdirSync(path.join(out, 'val', '0_tshirt_top')), ['00009.png']);
      // refuses to mix with an existing tree unless forced
      await assert.rejects(convertFashionMnist({ from, out, log: () => undefined }), /--out .* train\/ already exists .*--force/);
      const all = await convertFashionMnist({ from, out, force: true, log: () => undefined });
      assert.deepEqual(all, { train: 30, val: 10 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('missing or malformed idx files are UserErrors', async () => {
    const dir = tempDir('fmnist-bad');
    try {
      await assert.rejects(
        convertFashionMnist({ from: dir, out: path.join(dir, 'o'), log: () => undefined }),
        (e: unknown) => e instanceof UserError && /missing train-images-idx3-ubyte\.gz .*apt-get install dataset-fashion-mnist/.test(e.message),
      );
      writeFileSync(path.join(dir, 'train-images-idx3-ubyte'), idxLabels([1, 2]));
      await assert.rejects(convertFashionMnist({ from: dir, out: path.join(dir, 'o'), log: () => undefined }), /not an idx3-ubyte image file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('balanced subset keeps the first N of each class in file order', () => {
    assert.deepEqual(balancedSubset(Uint8Array.from([0, 1, 0, 0, 1, 2, 1]), 3, 2), [0, 1, 2, 4, 5]);
    assert.deepEqual(balancedSubset(Uint8Array.from([2, 2]), 3), [0, 1]);
  });

  test('the embedded subset is complete and balanced', () => {
    const data = repoPath('data/fashion-mnist');
    for (const [split, n] of [['train', 600], ['val', 100]] as const) {
      assert.deepEqual(readdirSync(path.join(data, split)), [...FASHION_MNIST_CLASSES]);
      for (const c of FASHION_MNIST_CLASSES) assert.equal(readdirSync(path.join(data, split, c)).filter((f) => f.endsWith('.png')).length, n, `${split}/${c}`);
    }
  });
});

describe('str-train data command', () => {
  test('synthetic writes a tree; bad arguments are one-line UserErrors', async () => {
    const dir = tempDir('cmd');
    try {
      const lines: string[] = [];
      await runDataCommand(['synthetic', '--out', dir, '--classes', '2', '--per-class', '3', '--val-per-class', '1', '--size', '40x30'], (l) => lines.push(l));
      assert.deepEqual(readdirSync(path.join(dir, 'train')), ['class_000', 'class_001']);
      assert.equal(readdirSync(path.join(dir, 'train', 'class_001')).length, 3);
      assert.equal(readdirSync(path.join(dir, 'val', 'class_000')).length, 1);
      const meta = await sharp(path.join(dir, 'train', 'class_000', '00000.jpg')).metadata();
      assert.equal(meta.format, 'jpeg');
      assert.ok(meta.width! >= 28 && meta.width! <= 52 && meta.height! >= 21 && meta.height! <= 39);
      await assert.rejects(runDataCommand(['synthetic', '--out', dir, '--classes', '2', '--per-class', '3', '--size', '40by30']), /--size must look like WIDTHxHEIGHT/);
      await assert.rejects(runDataCommand(['synthetic', '--out', dir, '--classes', '2']), (e: unknown) => e instanceof UserError && /per-class/.test(e.message));
      await assert.rejects(runDataCommand(['synthetic', '--out', dir, '--classes', '0', '--per-class', '1']), /--classes must be a positive integer/);
      await assert.rejects(runDataCommand([]), /name a data command/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
