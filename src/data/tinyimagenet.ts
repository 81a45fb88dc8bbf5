/**
 * `--set TinyImageNet` (STR-SPEC §10): the reference's HDF5 files `<data>/tiny_imagenet/train.h5`
 * and `val.h5`, read with h5wasm (HDF5 compiled to WebAssembly: no h5py, no native build). In
 * each file the first dataset key (alphabetical) holds the images, uint8 N×H×W×3, the second the
 * integer labels. Transforms as the reference: train = horizontal flip + normalise, val =
 * normalise; no crop or resize, so the images keep their own size (64 px for Tiny ImageNet).
 * Images are read per sample by hyperslab, so memory does not grow with the file.
 */
import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import path from 'node:path';
import * as tf from '../tf.js';
import { UserError } from '../util/errors.js';
import { writeNormalized } from './decode.js';
import { sampleRng } from './job.js';
import type { Batch, DataLoader, LoaderStats } from './loader.js';
import { batchPositions, epochLayout, epochPermutation } from './sampling.js';
import { normalizationLut } from './transforms.js';

type H5 = typeof import('h5wasm/node');
type H5File = InstanceType<H5['File']>;
type H5Dataset = InstanceType<H5['Dataset']>;

let h5: Promise<H5> | undefined;

/** h5wasm, loaded on first use (only TinyImageNet runs need it). */
async function loadH5(): Promise<H5> {
  h5 ??= import('h5wasm/node').then(async (m) => {
    await m.ready;
    return m;
  });
  return h5;
}

/** One split's file: image and label datasets, checked. */
export interface H5Split {
  file: string;
  count: number;
  height: number;
  width: number;
  labels: Int32Array;
  numClasses: number;
  /** uint8 HWC pixels of image `i`. */
  read(i: number): Uint8Array;
  close(): void;
}

const HDF5_SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

/** The HDF5 superblock signature at offset 0 or after a user block (512·2^k bytes). */
function hasHdf5Signature(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const sig = Buffer.alloc(8);
    for (let at = 0; at + 8 <= size && at <= 1 << 20; at = at === 0 ? 512 : 2 * at) {
      if (readSync(fd, sig, 0, 8, at) === 8 && sig.equals(HDF5_SIGNATURE)) return true;
    }
    return false;
  } finally {
    closeSync(fd);
  }
}

export async function openTinyImageNetSplit(file: string, what: string): Promise<H5Split> {
  if (!existsSync(file)) throw new UserError(`${what}: ${file} does not exist (expected the reference's TinyImageNet HDF5 layout)`);
  // checked here: libhdf5 would print its multi-line error stack before failing
  if (!hasHdf5Signature(file)) throw new UserError(`${what}: ${file} is not an HDF5 file (no HDF5 signature)`);
  const m = await loadH5();
  let f: H5File;
  try {
    f = new m.File(file, 'r');
  } catch (e) {
    throw new UserError(`${what}: ${file} is not a readable HDF5 file (${(e as Error).message})`);
  }
  try {
    // the reference takes list(f.keys())[0] and [1]: h5py lists keys alphabetically
    const keys = f.keys().filter((k) => f.get(k) instanceof m.Dataset).sort();
    if (keys.length < 2) throw new UserError(`${what}: ${file} needs two datasets (images, then labels in alphabetical order), found ${keys.length}`);
    const images = f.get(keys[0]) as H5Dataset;
    const labelsSet = f.get(keys[1]) as H5Dataset;
    const shape = images.shape ?? [];
    const dtype = String(images.dtype);
    if (shape.length !== 4 || shape[3] !== 3 || dtype !== '<B') {
      throw new UserError(`${what}: ${file}: dataset '${keys[0]}' must be uint8 images N×H×W×3, got ${dtype} [${shape.join(', ')}]`);
    }
    const [count, height, width] = shape;
    const raw = labelsSet.value;
    const lshape = labelsSet.shape ?? [];
    if (!ArrayBuffer.isView(raw) || lshape.length !== 1 || lshape[0] !== count || raw instanceof Float32Array || raw instanceof Float64Array) {
      throw new UserError(`${what}: ${file}: dataset '${keys[1]}' must hold ${count} integer labels, got ${String(labelsSet.dtype)} [${lshape.join(', ')}]`);
    }
    const labels = Int32Array.from(raw as unknown as ArrayLike<number | bigint>, (v) => Number(v));
    let max = -1;
    for (const l of labels) {
      if (l < 0) throw new UserError(`${what}: ${file}: negative label ${l}`);
      if (l > max) max = l;
    }
    const pixels = height * width * 3;
    return {
      file, count, height, width, labels, numClasses: max + 1,
      read(i: number): Uint8Array {
        const v = images.slice([[i, i + 1]]);
        if (!(v instanceof Uint8Array) || v.length !== pixels) throw new Error(`${file}: image ${i} could not be read`);
        return v;
      },
      close: () => void f.close(),
    };
  } catch (e) {
    f.close();
    throw e;
  }
}

export interface TinyImageNetOptions {
  batchSize: number;
  seed: string;
  rank: number;
  worldSize: number;
  train: boolean;
}

export class TinyImageNetLoader implements DataLoader {
  readonly numSamples: number;
  readonly numBatches: number;
  readonly batchSize: number;
  readonly stats: LoaderStats = { skipped: 0, skippedFiles: [] };
  private readonly lut = normalizationLut();
  private closed = false;

  constructor(
    readonly split: H5Split,
    private readonly o: TinyImageNetOptions,
  ) {
    const layout = epochLayout(split.count, o.batchSize, o.rank, o.worldSize);
    this.numBatches = layout.numBatches;
    this.numSamples = layout.numSamples;
    this.batchSize = o.batchSize / o.worldSize;
  }

  epoch(epoch: number): AsyncIterable<Batch> {
    return { [Symbol.asyncIterator]: () => this.iterate(epoch) };
  }

  // Synchronous reads (h5wasm is synchronous): a 64-px batch takes a few milliseconds.
  private async *iterate(epoch: number): AsyncGenerator<Batch> {
    if (this.closed) throw new Error('data loader is closed');
    const { count, height: H, width: W } = this.split;
    const order = this.o.train ? epochPermutation(count, this.o.seed, epoch) : null;
    const stride = H * W * 3;
    for (let g = 0; g < this.numBatches; g++) {
      const [a, b] = batchPositions(count, this.o.batchSize, g, this.o.rank, this.o.worldSize);
      const n = b - a;
      const data = new Float32Array(n * stride);
      const indices = new Int32Array(n);
      const labels = new Int32Array(n);
      for (let k = 0; k < n; k++) {
        const id = order ? order[a + k] : a + k;
        indices[k] = id;
        labels[k] = this.split.labels[id];
        // RandomHorizontalFlip, drawn per (seed, epoch, index) as the ImageFolder loader does
        const flip = this.o.train && sampleRng(this.o.seed, epoch, id)() < 0.5;
        writeNormalized(this.split.read(id), W, H, flip, data, k * stride, this.lut);
      }
      yield { images: tf.tensor4d(data, [n, H, W, 3], 'float32'), labels: tf.tensor1d(labels, 'int32'), size: n, indices };
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.split.close();
  }
}

/** `<data>/tiny_imagenet/{train,val}.h5`. */
export function tinyImageNetFiles(data: string): { train: string; val: string } {
  const root = path.join(data, 'tiny_imagenet');
  return { train: path.join(root, 'train.h5'), val: path.join(root, 'val.h5') };
}
