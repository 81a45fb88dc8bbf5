import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createDatasets } from '../../src/data/datasets.js';
import { compareCodePoints, scanImageFolder } from '../../src/data/scan.js';
import { UserError } from '../../src/util/errors.js';
import { tempDir, writeTree } from './helpers.js';

function touch(p: string, content = 'x'): void {
  mkdirSync(path.dirname(p), { recursive: true });
  writeFileSync(p, content);
}

describe('ImageFolder scan', () => {
  test('classes and files in sorted order, extensions case-insensitive, nested folders walked', async () => {
    const root = tempDir('scan');
    try {
      for (const f of ['b/2.JPG', 'b/10.jpeg', 'b/1.png', 'b/notes.txt', 'b/anim.gif', 'b/sub/z.webp', 'b/sub/a.PPM', 'b/sub2/x.bmp', 'b/a b/y.tif']) {
        touch(path.join(root, f));
      }
      for (const f of ['a/x.pgm', 'a/y.TIFF', 'B/q.jpg']) touch(path.join(root, f));
      mkdirSync(path.join(root, 'empty'));
      writeFileSync(path.join(root, 'stray.jpg'), 'x'); // files at the top level are not classes
      symlinkSync(path.join(root, 'a'), path.join(root, 'linked')); // links to folders are followed
      const s = await scanImageFolder(root, 'train split');
      assert.deepEqual(s.classes, ['B', 'a', 'b', 'empty', 'linked']); // Python sorts by code point
      assert.deepEqual(s.files, [
        'B/q.jpg',
        'a/x.pgm',
        'a/y.TIFF',
        // os.walk sorted by folder path: b, then 'b/a b' (space < '/'), b/sub, b/sub2; files sorted within
        'b/1.png',
        'b/10.jpeg',
        'b/2.JPG',
        'b/a b/y.tif',
        'b/sub/a.PPM',
        'b/sub/z.webp',
        'b/sub2/x.bmp',
        'linked/x.pgm',
        'linked/y.TIFF',
      ]);
      assert.deepEqual(Array.from(s.labels), [0, 1, 1, 2, 2, 2, 2, 2, 2, 2, 4, 4]);
      assert.deepEqual(s.emptyClasses, ['empty']);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('code-point order matches Python for astral characters', () => {
    const names = ['\u{1F600}', '\uFF21', 'z'];
    assert.deepEqual([...names].sort(compareCodePoints), ['z', '\uFF21', '\u{1F600}']);
  });

  test('missing split, no class folders, no images: one-line UserErrors', async () => {
    const root = tempDir('scanerr');
    try {
      await assert.rejects(scanImageFolder(path.join(root, 'nope'), 'train split'), (e: unknown) => e instanceof UserError && /train split: folder .*nope does not exist/.test(e.message));
      mkdirSync(path.join(root, 'flat'));
      touch(path.join(root, 'flat', 'img.jpg'));
      await assert.rejects(scanImageFolder(path.join(root, 'flat'), 'val split'), /val split: .*flat has no class sub-folders/);
      mkdirSync(path.join(root, 'hollow', 'c1'), { recursive: true });
      touch(path.join(root, 'hollow', 'c2', 'readme.txt'));
      await assert.rejects(scanImageFolder(path.join(root, 'hollow'), 'train split'), /no images in .*hollow/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('createDatasets checks', () => {
  const base = { batchSize: 4, workers: 0, imageSize: 8, valResize: 10, strictData: false, log: () => undefined };

  test('--set picks the layout; other names are rejected', async () => {
    const root = tempDir('sets');
    try {
      await writeTree(path.join(root, 'imagenet'), 'train', [2, 2]);
      await writeTree(path.join(root, 'imagenet'), 'val', [1, 1]);
      const d = await createDatasets({ ...base, data: root, set: 'ImageNet' });
      assert.equal(d.train.numSamples, 4);
      assert.equal(d.val.numSamples, 2);
      assert.deepEqual(d.classes, ['class0', 'class1']);
      await d.train.close();
      await d.val.close();
      await assert.rejects(createDatasets({ ...base, data: root, set: 'ImageFolder' }), /train split .*does not exist/);
      await assert.rejects(
        createDatasets({ ...base, data: root, set: 'CIFAR10' }),
        (e: unknown) => e instanceof UserError && e.message === '--set CIFAR10 is not supported; accepted values: ImageNet, ImageFolder, TinyImageNet',
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('class folders must agree between splits and with the model', async () => {
    const root = tempDir('classes');
    try {
      await writeTree(root, 'train', [1, 1, 1]);
      await writeTree(root, 'val', [1, 1]);
      await assert.rejects(createDatasets({ ...base, data: root, set: 'ImageFolder' }), /class folders differ .*missing class2/);
      await writeTree(root, 'val', [1, 1, 1]);
      await assert.rejects(createDatasets({ ...base, data: root, set: 'ImageFolder', numClasses: 1000 }), /model has 1000 output classes but .* has 3 class folders/);
      const d = await createDatasets({ ...base, data: root, set: 'ImageFolder', numClasses: 3 });
      await d.train.close();
      await d.val.close();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('an empty class folder is a warning and keeps its index', async () => {
    const root = tempDir('emptycls');
    try {
      await writeTree(root, 'train', [2, 0, 2]);
      await writeTree(root, 'val', [1, 1, 1]);
      const lines: string[] = [];
      const d = await createDatasets({ ...base, data: root, set: 'ImageFolder', log: (l) => lines.push(l) });
      assert.ok(lines.some((l) => /^warning: class folder .*train.class1 has no images \(the class keeps its index\)$/.test(l)), lines.join('\n'));
      const labels: number[] = [];
      for await (const b of d.train.epoch(0)) {
        labels.push(...(await b.labels.data()));
        b.images.dispose();
        b.labels.dispose();
      }
      assert.deepEqual(labels.sort(), [0, 0, 2, 2]);
      await d.train.close();
      await d.val.close();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('flag values are validated', async () => {
    const o = { ...base, data: '/nonexistent', set: 'ImageFolder' };
    await assert.rejects(createDatasets({ ...o, valResize: 4 }), /--val-resize \(4\) must be at least --image-size \(8\)/);
    await assert.rejects(createDatasets({ ...o, batchSize: 0 }), /--batch-size must be an integer >= 1, got 0/);
    await assert.rejects(createDatasets({ ...o, workers: -1 }), /--workers must be an integer >= 0/);
    await assert.rejects(createDatasets({ ...o, batchSize: 10, worldSize: 4 }), /--batch-size 10 must be divisible by the number of processes \(4\)/);
  });
});
