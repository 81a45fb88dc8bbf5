/**
 * Synthetic ImageFolder trees (JPEG) for smoke tests and loader benchmarks. Each class has its own
 * colour and stripe orientation/frequency, so a small model can learn it; image sizes and aspect
 * ratios vary around the requested size like a photo collection.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import seedrandom from 'seedrandom';
import { UserError } from '../util/errors.js';

export interface SyntheticOptions {
  out: string;
  classes: number;
  /** Train images per class. */
  perClass: number;
  /** Val images per class (default: max(1, round(perClass / 5))). */
  valPerClass?: number;
  /** Nominal [width, height]; each image's sides vary by ±30 % independently. */
  size: [number, number];
  seed?: number;
  /** JPEG quality (default 90). */
  quality?: number;
  log?: (line: string) => void;
}

export interface SyntheticResult {
  train: number;
  val: number;
  classNames: string[];
}

export function syntheticClassName(k: number, classes: number): string {
  return `class_${String(k).padStart(Math.max(3, String(classes - 1).length), '0')}`;
}

/** Writes `<out>/train/<class>/<n>.jpg` and `<out>/val/<class>/<n>.jpg`. */
export async function writeSyntheticImageFolder(o: SyntheticOptions): Promise<SyntheticResult> {
  const ints: [string, number][] = [
    ['--classes', o.classes],
    ['--per-class', o.perClass],
    ['--size width', o.size[0]],
    ['--size height', o.size[1]],
  ];
  for (const [name, v] of ints) {
    if (!Number.isInteger(v) || v < 1) throw new UserError(`${name} must be a positive integer, got ${v}`);
  }
  const valPerClass = o.valPerClass ?? Math.max(1, Math.round(o.perClass / 5));
  if (!Number.isInteger(valPerClass) || valPerClass < 0) {
    throw new UserError(`--val-per-class must be a non-negative integer, got ${valPerClass}`);
  }
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const seed = o.seed ?? 0;
  const quality = o.quality ?? 90;
  const classNames = Array.from({ length: o.classes }, (_, k) => syntheticClassName(k, o.classes));
  const total = o.classes * (o.perClass + valPerClass);
  let done = 0;
  let lastLog = Date.now();
  const concurrency = 4;
  for (const [split, n] of [['train', o.perClass], ['val', valPerClass]] as const) {
    for (let k = 0; k < o.classes; k++) {
      const dir = path.join(o.out, split, classNames[k]);
      await mkdir(dir, { recursive: true });
      const jobs: Promise<void>[] = [];
      for (let i = 0; i < n; i++) {
        const rng = seedrandom.alea(`${seed}:${split}:${k}:${i}`);
        const w = Math.max(8, Math.round(o.size[0] * (0.7 + 0.6 * rng())));
        const h = Math.max(8, Math.round(o.size[1] * (0.7 + 0.6 * rng())));
        const pixels = renderSyntheticImage(w, h, k, o.classes, rng);
        const file = path.join(dir, `${String(i).padStart(5, '0')}.jpg`);
        jobs.push(
          sharp(pixels, { raw: { width: w, height: h, channels: 3 } })
            .jpeg({ quality })
            .toBuffer()
            .then((buf) => writeFile(file, buf)),
        );
        if (jobs.length >= concurrency) await Promise.all(jobs.splice(0));
        done++;
        if (Date.now() - lastLog > 5000) {
          log(`synthetic: ${done}/${total} images`);
          lastLog = Date.now();
        }
      }
      await Promise.all(jobs);
    }
  }
  log(`synthetic: wrote ${o.classes * o.perClass} train and ${o.classes * valPerClass} val images to ${o.out}`);
  return { train: o.classes * o.perClass, val: o.classes * valPerClass, classNames };
}

/** RGB uint8 image: class-coloured stripes at a class-specific angle and frequency, plus noise. */
export function renderSyntheticImage(w: number, h: number, k: number, classes: number, rng: () => number): Buffer {
  const hue = (k / classes) * 2 * Math.PI;
  const base = [0, 1, 2].map((c) => 128 + 90 * Math.cos(hue - (c * 2 * Math.PI) / 3));
  const angle = ((k * 7) % classes) * (Math.PI / classes) + 0.2 * (rng() - 0.5);
  const freq = (2 * Math.PI * (3 + (k % 5))) / Math.min(w, h);
  const phase = rng() * 2 * Math.PI;
  const ca = Math.cos(angle) * freq;
  const sa = Math.sin(angle) * freq;
  const contrast = 40 + 40 * rng();
  const buf = Buffer.allocUnsafe(w * h * 3);
  let p = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const s = contrast * Math.sin(x * ca + y * sa + phase);
      for (let c = 0; c < 3; c++) {
        const v = base[c] + (c === 1 ? -s : s) + 24 * (rng() - 0.5);
        buf[p++] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  return buf;
}
