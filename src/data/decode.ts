/**
 * One sample: file → decoded, cropped, resized, flipped RGB → normalised float32 NHWC slot.
 * Runs inside the decode worker threads (and in the main thread when workers = 0).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import sharp from 'sharp';
import { ioReason } from '../util/errors.js';
import { type DecodedCache, MAX_CACHED_PIXELS } from './decoded-cache.js';
import { planCropResize, planResizeCrop, resampleNormalized } from './resample.js';
import {
  type Rng,
  DEFAULT_RATIO,
  DEFAULT_SCALE,
  centerCropBox,
  resizeShorterSide,
  sampleRandomResizedCrop,
} from './transforms.js';

export interface TransformSpec {
  /** true: RandomResizedCrop + flip; false: Resize(resize) + CenterCrop. */
  train: boolean;
  /** Output side (crop size), e.g. 224. */
  size: number;
  /** Val only: shorter side before the centre crop, e.g. 256. */
  resize: number;
  scale?: readonly [number, number];
  ratio?: readonly [number, number];
}

/** A problem with one input file (corrupt, truncated, not an image, unreadable). */
export class SampleError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = 'SampleError';
  }
}

/** Libvips settings for many small concurrent images: one libvips thread per image, no op cache. */
export function configureSharp(): void {
  sharp.concurrency(1);
  sharp.cache(false);
}

// bmp-js is only needed for the rare BMP input (libvips has no BMP loader); load it on demand.
const require = createRequire(import.meta.url);
let bmpDecode: ((b: Buffer) => { width: number; height: number; data: Buffer }) | undefined;

const MAX_PIXELS = 268_402_689; // sharp's default limitInputPixels

/**
 * Decodes `file` with `spec` and writes size·size·3 normalised floats at `out[offset…]`
 * (HWC, RGB). `rng` drives the crop and flip (train only). `lut` comes from normalizationLut().
 * Throws SampleError for any problem with the file's bytes.
 */
export async function decodeSample(
  file: string,
  spec: TransformSpec,
  rng: Rng | null,
  out: Float32Array,
  offset: number,
  lut: Float32Array,
): Promise<void> {
  await decodeBuffer(file, readSample(file), spec, rng, out, offset, lut);
}

/**
 * The file's bytes; SampleError when unreadable or empty. Synchronous on purpose: it runs in a
 * decode thread while libvips works on the previous image, and saves four thread-pool round
 * trips per file over fs.promises.readFile.
 */
export function readSample(file: string): Buffer {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    throw new SampleError(file, `cannot read (${ioReason(e)})`);
  }
  if (buf.length === 0) throw new SampleError(file, 'empty file (0 bytes)');
  return buf;
}

/** decodeSample on bytes already read (`file` only names them in errors). */
export async function decodeBuffer(
  file: string,
  buf: Buffer,
  spec: TransformSpec,
  rng: Rng | null,
  out: Float32Array,
  offset: number,
  lut: Float32Array,
): Promise<void> {
  (await prepareSample(file, buf, spec, rng))(out, offset, lut);
}

/** Second, synchronous phase of a transform: resample/normalise the decoded pixels into `out`. */
export type Finish = (out: Float32Array, offset: number, lut: Float32Array) => void;

/**
 * First phase: decode what the transform needs (libvips, on a pool thread). Splitting the phases
 * lets a decode thread resample one image while libvips decodes the next. Both phases throw
 * SampleError naming `file`.
 */
export async function prepareSample(file: string, buf: Buffer, spec: TransformSpec, rng: Rng | null): Promise<Finish> {
  return namingFile(file, prepareTransform(buf, spec, rng));
}

/**
 * prepareSample for dataset image `index`, through `cache`: a cached image skips the read and the
 * decode; a small one decoded here is decoded whole (one libvips call, as for a crop) and cached.
 * The file read is synchronous, before the first await (see readSample).
 */
export function prepareFile(file: string, index: number, spec: TransformSpec, rng: Rng | null, cache: DecodedCache): Promise<Finish> {
  const hit = cache.get(index);
  if (hit) {
    const src: Source = { ...hit, jpeg: false, complete: true, cmyk: false, bytes: EMPTY };
    return namingFile(file, prepareFromSource(src, spec, rng));
  }
  const buf = readSample(file);
  return namingFile(
    file,
    (async () => {
      const src = probeSync(buf) ?? (await probeWithSharp(buf));
      if (!cacheable(src, spec)) return prepareFromSource(src, spec, rng);
      const rgb = await decodeWhole(src);
      cache.put(index, src.width, src.height, rgb);
      return prepareFromSource({ ...src, rgb }, spec, rng);
    })(),
  );
}

const EMPTY = Buffer.alloc(0);

/**
 * Small enough to cache, and decoded the same whole as cropped: not cut off, and not a JPEG that
 * the transform could send down the shrink-on-load path (which needs min side ≥ 3·size).
 */
function cacheable(src: Source, spec: TransformSpec): boolean {
  if (src.width * src.height > MAX_CACHED_PIXELS || !src.complete) return false;
  return !canShrinkOnLoad(src) || Math.min(src.width, src.height) < SHRINK_ON_LOAD_RATIO * spec.size;
}

/** libvips can decode this at 1/2, 1/4 or 1/8 scale: a whole RGB/grey JPEG. */
function canShrinkOnLoad(src: Source): boolean {
  return src.jpeg && src.complete && !src.cmyk;
}

async function namingFile(file: string, prepared: Promise<Finish>): Promise<Finish> {
  let finish: Finish;
  try {
    finish = await prepared;
  } catch (e) {
    throw new SampleError(file, oneLine((e as Error).message));
  }
  return (out, offset, lut) => {
    try {
      finish(out, offset, lut);
    } catch (e) {
      throw new SampleError(file, oneLine((e as Error).message));
    }
  };
}

function oneLine(s: string): string {
  return s.split('\n')[0].trim() || 'cannot decode';
}

/** Width and height from a JPEG's SOF marker, or null when the header is not understood. */
export function jpegDimensions(b: Uint8Array): { width: number; height: number } | null {
  const h = jpegHeader(b);
  return h ? { width: h.width, height: h.height } : null;
}

/**
 * SOF dimensions plus `complete`: whether an end-of-image marker follows the first scan. A cut-off
 * file lacks it (entropy-coded data never contains FF D9), while one with a trailing EXIF
 * thumbnail's marker earlier in the file still counts as cut off.
 */
export function jpegHeader(b: Uint8Array): { width: number; height: number; complete: boolean; components: number } | null {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return null;
  let p = 2;
  let width = 0;
  let height = 0;
  let components = 0;
  while (p + 3 < b.length) {
    if (b[p] !== 0xff) return null;
    const m = b[p + 1];
    if (m === 0xff) {
      p++; // fill byte
      continue;
    }
    if ((m >= 0xd0 && m <= 0xd9) || m === 0x01) {
      p += 2; // markers without a length
      continue;
    }
    // SOF0–SOF15 except DHT (C4), JPG (C8), DAC (CC)
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc && p + 9 < b.length) {
      height = (b[p + 5] << 8) | b[p + 6];
      width = (b[p + 7] << 8) | b[p + 8];
      components = b[p + 9];
    }
    if (m === 0xda) {
      // start of scan: look for EOI after it, from the end (it is normally the last 2 bytes)
      if (width === 0 || height === 0) return null;
      let complete = false;
      for (let q = b.length - 2; q > p; q--) {
        if (b[q] === 0xff && b[q + 1] === 0xd9) {
          complete = true;
          break;
        }
      }
      return { width, height, complete, components };
    }
    p += 2 + ((b[p + 2] << 8) | b[p + 3]);
  }
  return null;
}

/**
 * Decoded source: compressed bytes for sharp or, for BMP, RGB pixels already. `complete` false:
 * a JPEG without its end marker, decoded in full so that truncation is always detected (libvips
 * stops reading below the crop, PIL always loads the whole file).
 */
type Source = {
  width: number;
  height: number;
  jpeg: boolean;
  complete: boolean;
  /** CMYK (or YCCK) pixels: converted to RGB with PIL's formula, not libvips' ICC transform. */
  cmyk: boolean;
  bytes: Buffer;
  rgb: Uint8Array | null;
};

/** Formats whose size is read in JS (no sharp round trip); null for the others. */
function probeSync(buf: Buffer): Source | null {
  if (buf[0] === 0x42 && buf[1] === 0x4d) {
    // 'BM': Windows bitmap, which libvips cannot read.
    const bmp = decodeBmp(buf);
    return { width: bmp.width, height: bmp.height, jpeg: false, complete: true, cmyk: false, bytes: buf, rgb: bmp.data };
  }
  const h = jpegHeader(buf);
  if (h) return { width: h.width, height: h.height, jpeg: true, complete: h.complete, cmyk: h.components === 4, bytes: buf, rgb: null };
  const p = pngDimensions(buf);
  // Truncated PNGs still fail in the decode itself (failOn 'truncated'), as with sharp's probe.
  return p ? { ...p, jpeg: false, complete: true, cmyk: false, bytes: buf, rgb: null } : null;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * Width and height from a PNG's IHDR chunk (bytes 16–23), or null. Read here rather than by a
 * sharp metadata call: for small images (Fashion-MNIST, downsampled ImageNet) that second
 * libvips round trip cost as much as the decode.
 */
export function pngDimensions(b: Uint8Array): { width: number; height: number } | null {
  if (b.length < 24 || PNG_SIGNATURE.some((v, i) => b[i] !== v)) return null;
  if (b[12] !== 0x49 || b[13] !== 0x48 || b[14] !== 0x44 || b[15] !== 0x52) return null; // 'IHDR'
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const width = dv.getUint32(16);
  const height = dv.getUint32(20);
  return width > 0 && height > 0 && width * height <= MAX_PIXELS ? { width, height } : null;
}

async function probeWithSharp(buf: Buffer): Promise<Source> {
  const meta = await sharp(buf, SHARP_INPUT).metadata();
  if (!meta.width || !meta.height) throw new Error('image has no dimensions');
  const jpeg = meta.format === 'jpeg';
  const complete = !jpeg || (jpegHeader(buf)?.complete ?? false);
  return { width: meta.width, height: meta.height, jpeg, complete, cmyk: meta.space === 'cmyk', bytes: buf, rgb: null };
}

// 'truncated' rejects cut-off files (PIL raises on them too) but tolerates the minor libjpeg
// warnings some ImageNet files carry, which PIL also accepts.
const SHARP_INPUT = { failOn: 'truncated' } as const;

/** The whole image as RGB uint8 (what decodeWindow gives for the full rectangle). */
async function decodeWhole(src: Source): Promise<Uint8Array> {
  return src.rgb ?? decodeWindow(src, 0, 0, src.width, src.height);
}

/** RGB uint8 of the source rectangle, as PIL's convert('RGB') would give it. */
async function decodeWindow(src: Source, left: number, top: number, width: number, height: number): Promise<Uint8Array> {
  if (!src.complete && !src.rgb) {
    src = { ...src, rgb: await rawRgb(sharp(src.bytes, SHARP_INPUT), src.cmyk, src.width, src.height) };
  }
  if (src.rgb) {
    const out = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) {
      const s = ((top + y) * src.width + left) * 3;
      out.set(src.rgb.subarray(s, s + width * 3), y * width * 3);
    }
    return out;
  }
  let img = sharp(src.bytes, SHARP_INPUT);
  if (left !== 0 || top !== 0 || width !== src.width || height !== src.height) img = img.extract({ left, top, width, height });
  return rawRgb(img, src.cmyk, width, height);
}

/** The pipeline's output as packed RGB uint8, as PIL's convert('RGB') gives it. */
async function rawRgb(img: sharp.Sharp, cmyk: boolean, width: number, height: number): Promise<Uint8Array> {
  if (cmyk) {
    // the decoded CMYK values as they are (no ICC round trip), then PIL's cmyk2rgb
    const { data, info } = await img.pipelineColourspace('cmyk').toColourspace('cmyk').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    checkShape(info, width, height, 4);
    return cmykToRgb(data);
  }
  // Without a resize in the pipeline sharp does not premultiply, so dropping alpha keeps the
  // colour under transparent pixels, like PIL.
  const { data, info } = await img.removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  checkShape(info, width, height);
  return data;
}

/** Pillow's cmyk2rgb (Convert.c): channel = (255 − K) − C·(255 − K)/255, rounded as its MULDIV255. */
export function cmykToRgb(cmyk: Uint8Array): Uint8Array {
  const n = cmyk.length >> 2;
  const out = new Uint8Array(n * 3);
  for (let p = 0; p < n; p++) {
    const nk = 255 - cmyk[4 * p + 3];
    for (let c = 0; c < 3; c++) {
      const t = cmyk[4 * p + c] * nk + 128;
      out[3 * p + c] = nk - ((t + (t >> 8)) >> 8);
    }
  }
  return out;
}

function checkShape(info: sharp.OutputInfo, width: number, height: number, channels = 3): void {
  if (info.width !== width || info.height !== height || info.channels !== channels) {
    throw new Error(`unexpected decoded shape ${info.width}x${info.height}x${info.channels}`);
  }
}

/**
 * Large JPEGs: let libvips resize the whole image and cut `crop` out of the result. It then
 * decodes at 1/2, 1/4 or 1/8 scale (shrink-on-load, which sharp disables when an extract comes
 * first) and, being demand-driven, computes only the cut-out. Not bit-identical to Pillow
 * (libvips' linear kernel, DCT-domain downscaling); used only when the image is ≥ 3× the target.
 */
async function libvipsResizeCrop(src: Source, rw: number, rh: number, crop: { left: number; top: number }, size: number): Promise<Buffer> {
  const { data, info } = await sharp(src.bytes, SHARP_INPUT)
    .resize(rw, rh, { fit: 'fill', kernel: 'linear' })
    .extract({ left: crop.left, top: crop.top, width: size, height: size })
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  checkShape(info, size, size);
  return data;
}

/** Size ratio from which large JPEGs take the shrink-on-load path. */
export const SHRINK_ON_LOAD_RATIO = 3;

/** Decode phase of the train/val transform; resolves to the resample phase. */
export async function prepareTransform(buf: Buffer, spec: TransformSpec, rng: Rng | null): Promise<Finish> {
  // No await before the decode starts for JPEG/PNG/BMP: the caller reads the next file meanwhile.
  return prepareFromSource(probeSync(buf) ?? (await probeWithSharp(buf)), spec, rng);
}

async function prepareFromSource(src: Source, spec: TransformSpec, rng: Rng | null): Promise<Finish> {
  const T = spec.size;
  if (spec.train) {
    if (!rng) throw new Error('train transform needs an rng');
    const box = sampleRandomResizedCrop(src.width, src.height, rng, spec.scale ?? DEFAULT_SCALE, spec.ratio ?? DEFAULT_RATIO);
    const flip = rng() < 0.5;
    if (canShrinkOnLoad(src) && Math.min(box.width, box.height) >= SHRINK_ON_LOAD_RATIO * T) {
      // Resizing the whole image by the box's scale puts the box at the scaled offsets.
      const sx = T / box.width;
      const sy = T / box.height;
      const rw = Math.max(T, Math.round(src.width * sx));
      const rh = Math.max(T, Math.round(src.height * sy));
      const crop = { left: Math.min(rw - T, Math.round(box.left * sx)), top: Math.min(rh - T, Math.round(box.top * sy)) };
      const px = await libvipsResizeCrop(src, rw, rh, crop, T);
      return (out, offset, lut) => writeNormalized(px, T, T, flip, out, offset, lut);
    }
    const plan = planCropResize(box, T);
    const pixels = await decodeWindow(src, plan.left, plan.top, plan.width, plan.height);
    return (out, offset) => resampleNormalized(pixels, plan.width, plan.height, plan.h, plan.v, flip, out, offset);
  }
  const r = resizeShorterSide(src.width, src.height, spec.resize);
  const c = centerCropBox(r.width, r.height, T);
  if (c.left < 0 || c.top < 0) throw new Error(`val resize ${spec.resize} is smaller than the crop ${T}`);
  if (canShrinkOnLoad(src) && Math.min(src.width, src.height) >= SHRINK_ON_LOAD_RATIO * spec.resize) {
    const px = await libvipsResizeCrop(src, r.width, r.height, c, T);
    return (out, offset, lut) => writeNormalized(px, T, T, false, out, offset, lut);
  }
  const plan = planResizeCrop(src.width, src.height, r.width, r.height, c.left, c.top, T);
  const pixels = await decodeWindow(src, plan.left, plan.top, plan.width, plan.height);
  return (out, offset) => resampleNormalized(pixels, plan.width, plan.height, plan.h, plan.v, false, out, offset);
}

/** RGB uint8 HWC (width × height) → normalised float32 at out[offset…], mirrored horizontally when `flip`. */
export function writeNormalized(
  src: Uint8Array,
  width: number,
  height: number,
  flip: boolean,
  out: Float32Array,
  offset: number,
  lut: Float32Array,
): void {
  let d = offset;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      const s = (row + (flip ? width - 1 - x : x)) * 3;
      out[d] = lut[src[s]];
      out[d + 1] = lut[256 + src[s + 1]];
      out[d + 2] = lut[512 + src[s + 2]];
      d += 3;
    }
  }
}

/** BMP (any depth bmp-js reads) → packed RGB. */
export function decodeBmp(buf: Buffer): { width: number; height: number; data: Buffer } {
  if (buf.length < 54) throw new Error('truncated BMP header');
  const w = buf.readUInt32LE(18);
  const h = Math.abs(buf.readInt32LE(22));
  if (w === 0 || h === 0 || w * h > MAX_PIXELS) throw new Error(`invalid BMP dimensions ${w}x${h}`);
  bmpDecode ??= (require('bmp-js') as { decode: typeof bmpDecode }).decode;
  const img = bmpDecode!(buf); // throws RangeError on truncated pixel data
  const n = img.width * img.height;
  const rgb = Buffer.allocUnsafe(n * 3);
  const abgr = img.data;
  for (let i = 0; i < n; i++) {
    rgb[3 * i] = abgr[4 * i + 3];
    rgb[3 * i + 1] = abgr[4 * i + 2];
    rgb[3 * i + 2] = abgr[4 * i + 1];
  }
  return { width: img.width, height: img.height, data: rgb };
}
