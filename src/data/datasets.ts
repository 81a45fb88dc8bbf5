/**
 * `--data` / `--set` → train and val loaders over ImageFolder trees (STR-SPEC §10).
 */
import './threadpool.js';
import { randomInt } from 'node:crypto';
import path from 'node:path';
import { UserError } from '../util/errors.js';
import { type DataLoader, ImageFolderLoader } from './loader.js';
import { DecodePool } from './pool.js';
import { type ScannedSplit, scanImageFolder } from './scan.js';
import { type H5Split, type TinyImageNetOptions, TinyImageNetLoader, openTinyImageNetSplit, tinyImageNetFiles } from './tinyimagenet.js';
import { DEFAULT_SCALE } from './transforms.js';

export const DEFAULT_DECODE_CACHE_MIB = 512;

export const DATASET_SETS = ['ImageNet', 'ImageFolder', 'TinyImageNet'] as const;
export type DatasetSet = (typeof DATASET_SETS)[number];

export interface DataOptions {
  /** Dataset base directory (--data). */
  data: string;
  /** ImageNet: <data>/imagenet/{train,val}; ImageFolder: <data>/{train,val}. */
  set: string;
  /** Global batch size (train and val). */
  batchSize: number;
  /** Decode threads; 0 decodes in the main thread. */
  workers: number;
  /** Shuffle and augmentation seed; absent → a random one. */
  seed?: number;
  /** Train crop / val centre-crop side (224 for ImageNet). */
  imageSize: number;
  /** Val shorter-side resize before the centre crop (256 for ImageNet). */
  valResize: number;
  /** RandomResizedCrop's smallest area fraction (default 0.08, torchvision's scale[0]). */
  cropScale?: number;
  strictData: boolean;
  rank?: number;
  worldSize?: number;
  /** When given, must equal the number of class folders. */
  numClasses?: number;
  log?: (line: string) => void;
  /** Batches decoding ahead of the consumer (default 2). */
  prefetch?: number;
  /** Memory per split for decoded small images kept for later epochs (default 512 MiB; 0: none). */
  decodeCacheMiB?: number;
}

export interface Datasets {
  train: DataLoader;
  val: DataLoader;
  classes: string[];
}

/** The validation split alone (--evaluate): what a user evaluating a downloaded checkpoint has. */
export type ValDataset = Omit<Datasets, 'train'> & { train?: undefined };

/** The folder holding train/ and val/ for a --set value. */
export function datasetRoot(data: string, set: string): string {
  if (set === 'ImageNet') return path.join(data, 'imagenet');
  if (set === 'ImageFolder') return data;
  if (set === 'TinyImageNet') return path.join(data, 'tiny_imagenet');
  throw new UserError(`--set ${set} is not supported; accepted values: ${DATASET_SETS.join(', ')}`);
}

function checkInt(flag: string, v: number | undefined, min: number): void {
  if (v === undefined || !Number.isInteger(v) || v < min) {
    throw new UserError(`${flag} must be an integer >= ${min}, got ${v}`);
  }
}

function sameClasses(train: ScannedSplit, val: ScannedSplit): void {
  if (train.classes.length === val.classes.length && train.classes.every((c, i) => c === val.classes[i])) return;
  const v = new Set(val.classes);
  const t = new Set(train.classes);
  const missing = train.classes.filter((c) => !v.has(c));
  const extra = val.classes.filter((c) => !t.has(c));
  const parts = [
    missing.length ? `missing ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ` (+${missing.length - 3} more)` : ''}` : '',
    extra.length ? `extra ${extra.slice(0, 3).join(', ')}${extra.length > 3 ? ` (+${extra.length - 3} more)` : ''}` : '',
  ].filter(Boolean);
  throw new UserError(
    `${val.root}: class folders differ from ${train.root} (${parts.join('; ')}); labels come from sorted folder names, so both splits need the same folders`,
  );
}

/** Checks shared by both entry points; returns the seed as the loaders take it. */
function checkOptions(o: DataOptions): { seed: string; rank: number; worldSize: number } {
  checkInt('--batch-size', o.batchSize, 1);
  checkInt('--workers', o.workers, 0);
  checkInt('--image-size', o.imageSize, 1);
  checkInt('--val-resize', o.valResize, 1);
  if (o.decodeCacheMiB !== undefined) checkInt('--decode-cache-mb', o.decodeCacheMiB, 0);
  if (o.valResize < o.imageSize) {
    throw new UserError(`--val-resize (${o.valResize}) must be at least --image-size (${o.imageSize}): val images are resized, then centre-cropped`);
  }
  const worldSize = o.worldSize ?? 1;
  const rank = o.rank ?? 0;
  checkInt('world size', worldSize, 1);
  if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) throw new UserError(`rank ${rank} must be in [0, ${worldSize})`);
  if (o.batchSize % worldSize !== 0) {
    throw new UserError(`--batch-size ${o.batchSize} must be divisible by the number of processes (${worldSize})`);
  }
  if (o.seed !== undefined && !Number.isFinite(o.seed)) throw new UserError(`--seed must be a number, got ${o.seed}`);

  // An unseeded run still needs one seed shared by the permutation and the per-sample streams.
  return { seed: String(o.seed ?? randomInt(2 ** 31)), rank, worldSize };
}

function loaderCommon(o: DataOptions, seed: string, rank: number, worldSize: number, log: (l: string) => void) {
  const decodeCacheBytes = (o.decodeCacheMiB ?? DEFAULT_DECODE_CACHE_MIB) * 2 ** 20;
  return { batchSize: o.batchSize, seed, rank, worldSize, strictData: o.strictData, log, prefetch: o.prefetch, decodeCacheBytes };
}

function valLoaderOf(o: DataOptions, val: ScannedSplit, pool: DecodePool, common: ReturnType<typeof loaderCommon>): ImageFolderLoader {
  return new ImageFolderLoader(val, pool, { ...common, spec: { train: false, size: o.imageSize, resize: o.valResize }, shuffle: false });
}

/**
 * `--evaluate`: the val loader only. `<data>/train` is not read (it may be absent); the classes
 * are the val split's folders (or TinyImageNet's val labels).
 */
export async function createValDataset(o: DataOptions): Promise<ValDataset> {
  const root = datasetRoot(o.data, o.set);
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const { seed, rank, worldSize } = checkOptions(o);
  if (o.set === 'TinyImageNet') {
    const file = tinyImageNetFiles(o.data).val;
    const val = await openTinyImageNetSplit(file, `val split (--data ${o.data} --set TinyImageNet)`);
    if (o.numClasses !== undefined && val.numClasses > o.numClasses) {
      val.close();
      throw new UserError(`the model has ${o.numClasses} output classes but ${file} has labels up to ${val.numClasses - 1}`);
    }
    log(`=> data: ${val.count} val images from ${path.dirname(file)} (TinyImageNet HDF5, val split only)`);
    return {
      val: new TinyImageNetLoader(val, { batchSize: o.batchSize, seed, rank, worldSize, train: false }),
      classes: Array.from({ length: o.numClasses ?? val.numClasses }, (_, i) => String(i)),
    };
  }
  const t0 = Date.now();
  const val = await scanImageFolder(path.join(root, 'val'), `val split (--data ${o.data} --set ${o.set})`);
  if (o.numClasses !== undefined && o.numClasses !== val.classes.length) {
    throw new UserError(`the model has ${o.numClasses} output classes but ${val.root} has ${val.classes.length} class folders`);
  }
  for (const c of val.emptyClasses) log(`warning: class folder ${path.join(val.root, c)} has no images (the class keeps its index)`);
  log(`=> data: ${val.files.length} val images in ${val.classes.length} classes from ${root}, val split only (scanned in ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  const pool = new DecodePool(o.workers);
  return { val: valLoaderOf(o, val, pool, loaderCommon(o, seed, rank, worldSize, log)), classes: val.classes };
}

export async function createDatasets(o: DataOptions): Promise<Datasets> {
  const root = datasetRoot(o.data, o.set);
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const { seed, rank, worldSize } = checkOptions(o);
  if (o.set === 'TinyImageNet') return tinyImageNet(o, { batchSize: o.batchSize, seed, rank, worldSize }, log);

  const t0 = Date.now();
  // Both scans run at once; a problem with train is reported first whichever finishes first.
  const scans = await Promise.allSettled([
    scanImageFolder(path.join(root, 'train'), `train split (--data ${o.data} --set ${o.set})`),
    scanImageFolder(path.join(root, 'val'), `val split (--data ${o.data} --set ${o.set})`),
  ]);
  for (const r of scans) if (r.status === 'rejected') throw r.reason;
  const [train, val] = scans.map((r) => (r as PromiseFulfilledResult<ScannedSplit>).value);
  sameClasses(train, val);
  if (o.numClasses !== undefined && o.numClasses !== train.classes.length) {
    throw new UserError(
      `the model has ${o.numClasses} output classes but ${train.root} has ${train.classes.length} class folders`,
    );
  }
  for (const s of [train, val]) {
    for (const c of s.emptyClasses) log(`warning: class folder ${path.join(s.root, c)} has no images (the class keeps its index)`);
  }
  log(
    `=> data: ${train.files.length} train and ${val.files.length} val images in ${train.classes.length} classes from ${root} (scanned in ${((Date.now() - t0) / 1000).toFixed(1)} s)`,
  );

  const pool = new DecodePool(o.workers);
  const common = loaderCommon(o, seed, rank, worldSize, log);
  const trainLoader = new ImageFolderLoader(train, pool, {
    ...common,
    spec: { train: true, size: o.imageSize, resize: o.valResize, scale: [o.cropScale ?? DEFAULT_SCALE[0], 1] },
    shuffle: true,
  });
  return { train: trainLoader, val: valLoaderOf(o, val, pool, common), classes: train.classes };
}

/** `--set TinyImageNet`: the reference's HDF5 files (tinyimagenet.ts). */
async function tinyImageNet(o: DataOptions, common: Omit<TinyImageNetOptions, 'train'>, log: (l: string) => void): Promise<Datasets> {
  const files = tinyImageNetFiles(o.data);
  const what = (split: string) => `${split} split (--data ${o.data} --set TinyImageNet)`;
  const train = await openTinyImageNetSplit(files.train, what('train'));
  let val: H5Split;
  try {
    val = await openTinyImageNetSplit(files.val, what('val'));
  } catch (e) {
    train.close();
    throw e;
  }
  const classes = Math.max(train.numClasses, val.numClasses);
  if (o.numClasses !== undefined && classes > o.numClasses) {
    train.close();
    val.close();
    throw new UserError(`the model has ${o.numClasses} output classes but ${classes > train.numClasses ? files.val : files.train} has labels up to ${classes - 1}`);
  }
  log(
    `=> data: ${train.count} train and ${val.count} val images of ${train.width}x${train.height} from ${path.dirname(files.train)} ` +
      `(TinyImageNet HDF5: fed at their own size with flips only, as the reference${o.imageSize === train.width && o.imageSize === train.height ? '' : `; --image-size ${o.imageSize} only sizes the summary's MAC counts`})`,
  );
  return {
    train: new TinyImageNetLoader(train, { ...common, train: true }),
    val: new TinyImageNetLoader(val, { ...common, train: false }),
    classes: Array.from({ length: o.numClasses ?? classes }, (_, i) => String(i)),
  };
}
