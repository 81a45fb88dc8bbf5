/**
 * Fashion-MNIST idx files → ImageFolder PNG tree, so the embedded dataset goes through the same
 * ImageFolder + sharp path as ImageNet. Folder names carry the class index so that sorted order
 * is label order.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import sharp from 'sharp';
import { UserError } from '../util/errors.js';

export const FASHION_MNIST_DEFAULT_DIR = '/usr/share/datasets/fashion-mnist';

export const FASHION_MNIST_CLASSES = [
  '0_tshirt_top',
  '1_trouser',
  '2_pullover',
  '3_dress',
  '4_coat',
  '5_sandal',
  '6_shirt',
  '7_sneaker',
  '8_bag',
  '9_ankle_boot',
] as const;

export interface FashionMnistOptions {
  /** Folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]. */
  from: string;
  out: string;
  /** First N images of each class from the official train split (default: all). */
  trainPerClass?: number;
  /** First N images of each class from the official test split, written as val (default: all). */
  valPerClass?: number;
  /** Replace existing out/train and out/val. */
  force?: boolean;
  log?: (line: string) => void;
}

export interface IdxImages {
  count: number;
  rows: number;
  cols: number;
  pixels: Uint8Array;
}

async function readIdx(from: string, base: string): Promise<Buffer> {
  for (const name of [`${base}.gz`, base]) {
    const p = path.join(from, name);
    if (!existsSync(p)) continue;
    const raw = await readFile(p);
    try {
      return name.endsWith('.gz') ? gunzipSync(raw) : raw;
    } catch (e) {
      throw new UserError(`${p}: cannot decompress (${(e as Error).message})`);
    }
  }
  throw new UserError(
    `--from ${from}: missing ${base}.gz (or ${base}); expected the Fashion-MNIST idx files (Debian: apt-get install dataset-fashion-mnist puts them in ${FASHION_MNIST_DEFAULT_DIR})`,
  );
}

export function parseIdxImages(buf: Buffer, name: string): IdxImages {
  if (buf.length < 16 || buf.readUInt32BE(0) !== 0x00000803) throw new UserError(`${name}: not an idx3-ubyte image file`);
  const count = buf.readUInt32BE(4);
  const rows = buf.readUInt32BE(8);
  const cols = buf.readUInt32BE(12);
  if (buf.length < 16 + count * rows * cols) throw new UserError(`${name}: truncated (${count} images of ${rows}x${cols} declared)`);
  return { count, rows, cols, pixels: buf.subarray(16, 16 + count * rows * cols) };
}

export function parseIdxLabels(buf: Buffer, name: string): Uint8Array {
  if (buf.length < 8 || buf.readUInt32BE(0) !== 0x00000801) throw new UserError(`${name}: not an idx1-ubyte label file`);
  const count = buf.readUInt32BE(4);
  if (buf.length < 8 + count) throw new UserError(`${name}: truncated (${count} labels declared)`);
  return buf.subarray(8, 8 + count);
}

/** Indices of the first `perClass` samples of each class, in file order. */
export function balancedSubset(labels: Uint8Array, classes: number, perClass?: number): number[] {
  const taken = new Array<number>(classes).fill(0);
  const keep: number[] = [];
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i];
    if (c >= classes) throw new UserError(`label ${c} at index ${i} is out of range (${classes} classes)`);
    if (perClass === undefined || taken[c] < perClass) {
      taken[c]++;
      keep.push(i);
    }
  }
  return keep;
}

async function writeSplit(
  images: IdxImages,
  labels: Uint8Array,
  keep: number[],
  dir: string,
  log: (l: string) => void,
): Promise<void> {
  for (const c of FASHION_MNIST_CLASSES) await mkdir(path.join(dir, c), { recursive: true });
  const { rows, cols } = images;
  const size = rows * cols;
  const digits = Math.max(5, String(images.count - 1).length);
  let done = 0;
  let last = Date.now();
  const jobs: Promise<void>[] = [];
  for (const i of keep) {
    const file = path.join(dir, FASHION_MNIST_CLASSES[labels[i]], `${String(i).padStart(digits, '0')}.png`);
    const pixels = Buffer.from(images.pixels.buffer, images.pixels.byteOffset + i * size, size);
    jobs.push(
      sharp(pixels, { raw: { width: cols, height: rows, channels: 1 } })
        .toColourspace('b-w') // keep 1 channel: sharp writes RGB otherwise
        .png({ compressionLevel: 9, adaptiveFiltering: true })
        .toBuffer()
        .then((png) => writeFile(file, png)),
    );
    if (jobs.length >= 16) await Promise.all(jobs.splice(0));
    if (++done % 1000 === 0 && Date.now() - last > 2000) {
      log(`fashion-mnist: ${dir}: ${done}/${keep.length}`);
      last = Date.now();
    }
  }
  await Promise.all(jobs);
}

/** Writes out/train/<class>/<index>.png (official train split) and out/val/… (official test split). */
export async function convertFashionMnist(o: FashionMnistOptions): Promise<{ train: number; val: number }> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  for (const [flag, v] of [['--train-per-class', o.trainPerClass], ['--val-per-class', o.valPerClass]] as const) {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new UserError(`${flag} must be a positive integer, got ${v}`);
  }
  if (!existsSync(o.from)) throw new UserError(`--from ${o.from}: folder does not exist (Debian: apt-get install dataset-fashion-mnist puts the files in ${FASHION_MNIST_DEFAULT_DIR})`);
  for (const split of ['train', 'val']) {
    const d = path.join(o.out, split);
    if (existsSync(d) && (await readdir(d)).length > 0) {
      if (!o.force) throw new UserError(`--out ${o.out}: ${split}/ already exists and is not empty (pass --force to replace it)`);
      await rm(d, { recursive: true, force: true });
    }
  }
  const result = { train: 0, val: 0 };
  for (const [split, prefix, perClass] of [
    ['train', 'train', o.trainPerClass],
    ['val', 't10k', o.valPerClass],
  ] as const) {
    const imagesName = `${prefix}-images-idx3-ubyte`;
    const labelsName = `${prefix}-labels-idx1-ubyte`;
    const images = parseIdxImages(await readIdx(o.from, imagesName), path.join(o.from, imagesName));
    const labels = parseIdxLabels(await readIdx(o.from, labelsName), path.join(o.from, labelsName));
    if (labels.length !== images.count) throw new UserError(`${o.from}: ${imagesName} has ${images.count} images but ${labelsName} has ${labels.length} labels`);
    const keep = balancedSubset(labels, FASHION_MNIST_CLASSES.length, perClass);
    await writeSplit(images, labels, keep, path.join(o.out, split), log);
    result[split] = keep.length;
    log(`fashion-mnist: wrote ${keep.length} ${split} images to ${path.join(o.out, split)}`);
  }
  return result;
}
