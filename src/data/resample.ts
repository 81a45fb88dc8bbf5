/**
 * Pillow's bilinear resampling (libImaging/Resample.c, 8-bit path), reproduced exactly: the same
 * filter support, coefficient rounding to 22-bit fixed point, horizontal pass first with uint8
 * rounding in between, then the vertical pass. Given the same decoded pixels, RandomResizedCrop
 * and Resize+CenterCrop produce Pillow's bytes. Written by hand because no npm resizer implements
 * Pillow's fixed-point scheme, and libvips' 'linear' kernel differs from it in detail.
 *
 * Only the output window that is needed is computed (Resize+CenterCrop never resizes the
 * cropped-away border), and the source window those outputs read is reported so that only it is
 * decoded.
 */

import { RESAMPLE_WASM_BASE64 } from './resample-wasm.js';
import { IMAGENET_MEAN, IMAGENET_STD } from './transforms.js';

const PRECISION_BITS = 32 - 8 - 2;

/** Coefficients mapping a source axis of `inSize` onto outputs [outStart, outStart+count) of `outSize`. */
export interface AxisCoeffs {
  /** Per output: first source index relative to srcStart, and number of taps. */
  bounds: Int32Array;
  /** Fixed-point weights, `ksize` slots per output. */
  kk: Int32Array;
  ksize: number;
  /** Source range [srcStart, srcEnd) read by these outputs. */
  srcStart: number;
  srcEnd: number;
  count: number;
  /** Not resized: one tap of weight 1 per output (the horizontal pass can be skipped). */
  identity: boolean;
}

/** precompute_coeffs + normalize_coeffs_8bpc for the bilinear filter (support 1). */
export function bilinearCoeffs(inSize: number, outSize: number, outStart = 0, count = outSize): AxisCoeffs {
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = filterscale; // bilinear support 1.0 × filterscale
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(count * 2);
  const kk = new Int32Array(count * ksize);
  const w = new Float64Array(ksize);
  const ss = 1 / filterscale;
  let srcStart = Infinity;
  let srcEnd = 0;
  for (let o = 0; o < count; o++) {
    const center = (o + outStart + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      let t = (x + xmin - center + 0.5) * ss;
      if (t < 0) t = -t;
      const v = t < 1 ? 1 - t : 0;
      w[x] = v;
      ww += v;
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? w[x] / ww : w[x];
      kk[o * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * (1 << PRECISION_BITS)) : Math.trunc(0.5 + v * (1 << PRECISION_BITS));
    }
    bounds[2 * o] = xmin;
    bounds[2 * o + 1] = xmax;
    if (xmin < srcStart) srcStart = xmin;
    if (xmin + xmax > srcEnd) srcEnd = xmin + xmax;
  }
  if (count === 0) srcStart = 0;
  for (let o = 0; o < count; o++) bounds[2 * o] -= srcStart;
  return { bounds, kk, ksize, srcStart, srcEnd, count, identity: false };
}

/** An axis that is not resized: outputs [start, start+count) copy sources one to one. */
export function identityAxis(start: number, count: number): AxisCoeffs {
  const bounds = new Int32Array(count * 2);
  const kk = new Int32Array(count);
  for (let o = 0; o < count; o++) {
    bounds[2 * o] = o;
    bounds[2 * o + 1] = 1;
    kk[o] = 1 << PRECISION_BITS;
  }
  return { bounds, kk, ksize: 1, srcStart: start, srcEnd: start + count, count, identity: true };
}

/** The same outputs in mirrored order: resampling with it equals flipping the result. */
export function mirrorAxis(c: AxisCoeffs): AxisCoeffs {
  const { count, ksize } = c;
  const bounds = new Int32Array(count * 2);
  const kk = new Int32Array(count * ksize);
  for (let o = 0; o < count; o++) {
    const m = count - 1 - o;
    bounds[2 * o] = c.bounds[2 * m];
    bounds[2 * o + 1] = c.bounds[2 * m + 1];
    kk.set(c.kk.subarray(m * ksize, (m + 1) * ksize), o * ksize);
  }
  return { ...c, bounds, kk, identity: false };
}

// This project's tsconfig has no WebAssembly typings (no DOM lib): declare the few parts used.
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Memory: new (d: { initial: number }) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (m: object, imports: object) => { exports: Record<string, unknown> };
}
const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface Kernel {
  horizontal(src: number, srcW: number, rows: number, bounds: number, kk: number, ksize: number, outW: number, dst: number): void;
  vertical_normalize(src: number, w: number, bounds: number, kk: number, ksize: number, outH: number, mean: number, std: number, out: number): void;
}

/** One instance per thread, with a memory that grows to the largest image seen. */
class WasmResampler {
  private readonly memory = new WA.Memory({ initial: 64 });
  private readonly kernel: Kernel;
  private readonly heapBase: number;

  constructor() {
    const module = new WA.Module(Buffer.from(RESAMPLE_WASM_BASE64, 'base64'));
    const instance = new WA.Instance(module, { env: { memory: this.memory } });
    this.kernel = instance.exports as unknown as Kernel;
    this.heapBase = (instance.exports.__heap_base as { value: number }).value;
  }

  run(src: Uint8Array, srcW: number, srcH: number, h: AxisCoeffs, v: AxisCoeffs, flip: boolean, out: Float32Array, offset: number, norm: Float32Array): void {
    const hx = flip ? mirrorAxis(h) : h;
    const doH = !hx.identity;
    const outW = h.count;
    const outH = v.count;
    // Layout: every region 16-aligned with 64 bytes of slack (the kernels over-read and over-write).
    let top = this.heapBase;
    const region = (bytes: number): number => {
      const at = (top + 15) & ~15;
      top = at + bytes + 64;
      return at;
    };
    const srcAt = region(src.length);
    const midAt = doH ? region(outW * srcH * 3) : srcAt;
    const hbAt = region(hx.bounds.byteLength);
    const hkAt = region(hx.kk.byteLength);
    const vbAt = region(v.bounds.byteLength);
    const vkAt = region(v.kk.byteLength);
    const normAt = region(norm.byteLength);
    const outAt = region(outW * outH * 3 * 4);
    const need = top - this.memory.buffer.byteLength;
    if (need > 0) this.memory.grow(Math.ceil(need / 65536));
    const buf = this.memory.buffer;
    new Uint8Array(buf, srcAt, src.length).set(src);
    new Int32Array(buf, hbAt, hx.bounds.length).set(hx.bounds);
    new Int32Array(buf, hkAt, hx.kk.length).set(hx.kk);
    new Int32Array(buf, vbAt, v.bounds.length).set(v.bounds);
    new Int32Array(buf, vkAt, v.kk.length).set(v.kk);
    new Float32Array(buf, normAt, norm.length).set(norm);
    if (doH) this.kernel.horizontal(srcAt, srcW, srcH, hbAt, hkAt, hx.ksize, outW, midAt);
    this.kernel.vertical_normalize(midAt, outW, vbAt, vkAt, v.ksize, outH, normAt, normAt + 48, outAt);
    out.set(new Float32Array(buf, outAt, outW * outH * 3), offset);
  }
}

let resampler: WasmResampler | undefined;

/**
 * mean/std laid out for the kernel: 3 phases × 4 lanes of mean, then the same for std
 * (phase p, lane j holds channel (p + j) mod 3).
 */
export function normalizationTable(mean: readonly number[] = IMAGENET_MEAN, std: readonly number[] = IMAGENET_STD): Float32Array {
  const t = new Float32Array(24);
  for (let p = 0; p < 3; p++) {
    for (let j = 0; j < 4; j++) {
      t[p * 4 + j] = mean[(p + j) % 3];
      t[12 + p * 4 + j] = std[(p + j) % 3];
    }
  }
  return t;
}

const DEFAULT_NORM = normalizationTable();

/**
 * Resamples `src` (RGB uint8, srcW×srcH, holding exactly the source window [h.srcStart, h.srcEnd)
 * × [v.srcStart, v.srcEnd)) to h.count × v.count pixels, mirrored when `flip`, and writes them as
 * ToTensor+Normalize float32 (HWC) at out[offset…].
 */
export function resampleNormalized(
  src: Uint8Array,
  srcW: number,
  srcH: number,
  h: AxisCoeffs,
  v: AxisCoeffs,
  flip: boolean,
  out: Float32Array,
  offset: number,
  norm: Float32Array = DEFAULT_NORM,
): void {
  if (srcW !== h.srcEnd - h.srcStart || srcH !== v.srcEnd - v.srcStart || src.length !== srcW * srcH * 3) {
    throw new Error(`resample window ${srcW}x${srcH} does not match coefficients`);
  }
  resampler ??= new WasmResampler();
  resampler.run(src, srcW, srcH, h, v, flip, out, offset, norm);
}

/** What to decode (a source rectangle) and how to resample it to the output. */
export interface ResamplePlan {
  left: number;
  top: number;
  width: number;
  height: number;
  h: AxisCoeffs;
  v: AxisCoeffs;
}

function axis(inSize: number, outSize: number, outStart: number, count: number): AxisCoeffs {
  return inSize === outSize ? identityAxis(outStart, count) : bilinearCoeffs(inSize, outSize, outStart, count);
}

/** RandomResizedCrop's resize of the crop box to size×size (the box is decoded as is). */
export function planCropResize(box: { left: number; top: number; width: number; height: number }, size: number): ResamplePlan {
  const h = axis(box.width, size, 0, size);
  const v = axis(box.height, size, 0, size);
  return { left: box.left + h.srcStart, top: box.top + v.srcStart, width: h.srcEnd - h.srcStart, height: v.srcEnd - v.srcStart, h, v };
}

/**
 * Resize(width×height → rw×rh) followed by a crop of size×size at (cropLeft, cropTop) of the
 * resized image: only the cropped outputs are computed, from the source window they read.
 */
export function planResizeCrop(
  width: number,
  height: number,
  rw: number,
  rh: number,
  cropLeft: number,
  cropTop: number,
  size: number,
): ResamplePlan {
  const h = axis(width, rw, cropLeft, size);
  const v = axis(height, rh, cropTop, size);
  return { left: h.srcStart, top: v.srcStart, width: h.srcEnd - h.srcStart, height: v.srcEnd - v.srcStart, h, v };
}
