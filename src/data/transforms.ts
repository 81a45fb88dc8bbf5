/**
 * Pure geometry and normalisation of the reference transforms (STR-SPEC §10, torchvision 0.4.1).
 * Nothing here touches pixels or sharp, so every rule can be unit-tested exactly.
 */

/** A uniform [0, 1) source, e.g. a seedrandom PRNG. */
export type Rng = () => number;

/** Python's round(): ties go to the even neighbour (round(2.5) = 2, round(3.5) = 4). */
export function pyRound(x: number): number {
  const f = Math.floor(x);
  const diff = x - f;
  if (diff === 0.5) return f % 2 === 0 ? f : f + 1;
  return Math.round(x);
}

/** Crop rectangle in source pixels (torchvision's (i, j, h, w)). */
export interface CropBox {
  top: number;
  left: number;
  width: number;
  height: number;
}

export const DEFAULT_SCALE: readonly [number, number] = [0.08, 1.0];
export const DEFAULT_RATIO: readonly [number, number] = [3 / 4, 4 / 3];

/**
 * RandomResizedCrop.get_params: up to 10 tries of (area ~ U(scale)·W·H, aspect ~ exp(U(ln r0, ln r1))),
 * w = round(√(area·aspect)), h = round(√(area/aspect)), accepted when it fits, top-left uniform;
 * otherwise a central crop of the whole image clamped to the ratio range.
 * Tries also require w, h > 0 (later torchvision), which only matters for images of a few pixels.
 */
export function sampleRandomResizedCrop(
  width: number,
  height: number,
  rng: Rng,
  scale: readonly [number, number] = DEFAULT_SCALE,
  ratio: readonly [number, number] = DEFAULT_RATIO,
): CropBox & { fallback: boolean } {
  const area = width * height;
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = (scale[0] + (scale[1] - scale[0]) * rng()) * area;
    const aspect = Math.exp(logLo + (logHi - logLo) * rng());
    const w = pyRound(Math.sqrt(targetArea * aspect));
    const h = pyRound(Math.sqrt(targetArea / aspect));
    if (w > 0 && h > 0 && w <= width && h <= height) {
      const top = randInt(rng, 0, height - h);
      const left = randInt(rng, 0, width - w);
      return { top, left, width: w, height: h, fallback: false };
    }
  }
  const inRatio = width / height;
  const rMin = Math.min(ratio[0], ratio[1]);
  const rMax = Math.max(ratio[0], ratio[1]);
  let w: number;
  let h: number;
  if (inRatio < rMin) {
    w = width;
    h = pyRound(w / rMin);
  } else if (inRatio > rMax) {
    h = height;
    w = pyRound(h * rMax);
  } else {
    w = width;
    h = height;
  }
  return {
    top: Math.floor((height - h) / 2),
    left: Math.floor((width - w) / 2),
    width: w,
    height: h,
    fallback: true,
  };
}

/** random.randint(a, b): inclusive bounds. */
export function randInt(rng: Rng, a: number, b: number): number {
  return a + Math.floor(rng() * (b - a + 1));
}

/** The reference's validation resize for a crop size: 256 for 224 (Resize(256) + CenterCrop(224)). */
export function defaultValResize(imageSize: number): number {
  return Math.round((imageSize * 256) / 224);
}

/**
 * transforms.Resize(size) with an int: the shorter side becomes `size`, the other
 * int(size·long/short); an image whose shorter side already equals `size` is left alone.
 */
export function resizeShorterSide(width: number, height: number, size: number): { width: number; height: number } {
  if ((width <= height && width === size) || (height <= width && height === size)) return { width, height };
  if (width < height) return { width: size, height: Math.floor((size * height) / width) };
  return { width: Math.floor((size * width) / height), height: size };
}

/** transforms.CenterCrop: offsets int(round((size − crop)/2)) with Python rounding. */
export function centerCropBox(width: number, height: number, cropW: number, cropH = cropW): CropBox {
  return {
    top: pyRound((height - cropH) / 2),
    left: pyRound((width - cropW) / 2),
    width: cropW,
    height: cropH,
  };
}

export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];

/**
 * ToTensor + Normalize as a per-channel lookup table over uint8 values, computed with float32
 * rounding at each step exactly as PyTorch does ((x/255) − mean) / std in float32.
 * Layout: lut[c * 256 + v].
 */
export function normalizationLut(
  mean: readonly number[] = IMAGENET_MEAN,
  std: readonly number[] = IMAGENET_STD,
): Float32Array {
  const f = Math.fround;
  const lut = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    const m = f(mean[c]);
    const s = f(std[c]);
    for (let v = 0; v < 256; v++) lut[c * 256 + v] = f(f(f(v) / 255) - m) / s;
  }
  return lut;
}
