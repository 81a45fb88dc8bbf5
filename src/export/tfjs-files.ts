/**
 * Writes a LayersModel as the files `tf.loadLayersModel` reads (tfjs-layers' format, as
 * tfjs-converter writes it): `model.json` ({format: 'layers-model', modelTopology,
 * weightsManifest: [{paths, weights}]}) and one binary weights file, with optional weight
 * quantisation in the converter's `quantization` entries, which tfjs' loader dequantises:
 *   uint8:   q = round((w − min)/scale), w ≈ q·scale + min, with min nudged so 0 maps to a q
 *            exactly (pruned weights stay exactly 0, as tfjs-converter does);
 *   float16: IEEE half precision, round to nearest even.
 * Only conv/dense kernels are quantised; BatchNorm statistics and biases (a few KB) stay float32.
 */
import * as tfjs from '@tensorflow/tfjs';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';

export type Quantization = 'uint8' | 'float16';
export const WEIGHTS_FILE = 'weights.bin';

type WeightSpec = tfjs.io.WeightsManifestEntry;

/** float32 → IEEE 754 half bits, round to nearest even (overflow → ±Inf, NaN kept). */
export function float16Bits(v: number): number {
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  f[0] = v;
  const x = u[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // a carry out of the mantissa rounds up into the exponent (and to Inf at the top), as it should
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

/** uint8 affine quantisation with 0 exactly representable. */
export function quantizeUint8(w: Float32Array): { q: Uint8Array; min: number; scale: number } {
  let lo = 0;
  let hi = 0;
  for (const v of w) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const scale = hi > lo ? (hi - lo) / 255 : 1;
  const zero = Math.round(-lo / scale);
  const min = -zero * scale;
  const q = new Uint8Array(w.length);
  for (let i = 0; i < w.length; i++) q[i] = Math.min(255, Math.max(0, Math.round((w[i] - min) / scale)));
  return { q, min, scale };
}

function quantize(spec: WeightSpec, data: Float32Array, how: Quantization): { spec: WeightSpec; bytes: Uint8Array } {
  if (how === 'float16') {
    const h = new Uint16Array(data.length);
    for (let i = 0; i < data.length; i++) h[i] = float16Bits(data[i]);
    return { spec: { ...spec, quantization: { dtype: 'float16' } }, bytes: new Uint8Array(h.buffer) };
  }
  const { q, min, scale } = quantizeUint8(data);
  return { spec: { ...spec, quantization: { dtype: 'uint8', min, scale } }, bytes: q };
}

const isKernel = (name: string) => /\/(kernel|depthwise_kernel)$/.test(name);

export interface TfjsFiles {
  modelJson: string;
  weightsFile: string;
  weightBytes: number;
}

/** Saves `model` into `dir` (created) as model.json + weights.bin, each written atomically. */
export async function saveLayersModel(model: tfjs.LayersModel, dir: string, quantization?: Quantization): Promise<TfjsFiles> {
  mkdirSync(dir, { recursive: true });
  let written: TfjsFiles | undefined;
  await model.save(
    tfjs.io.withSaveHandler(async (artifacts) => {
      const raw = artifacts.weightData;
      const buf = new Uint8Array(tfjs.io.CompositeArrayBuffer.join(raw ?? new ArrayBuffer(0)));
      const specs: WeightSpec[] = [];
      const parts: Uint8Array[] = [];
      let offset = 0;
      for (const spec of artifacts.weightSpecs ?? []) {
        const n = spec.shape.reduce((a, b) => a * b, 1);
        const bytes = buf.subarray(offset, offset + 4 * n);
        offset += 4 * n;
        if (quantization && spec.dtype === 'float32' && isKernel(spec.name)) {
          const q = quantize(spec, new Float32Array(bytes.slice().buffer), quantization);
          specs.push(q.spec);
          parts.push(q.bytes);
        } else {
          specs.push(spec);
          parts.push(bytes);
        }
      }
      const json = {
        format: 'layers-model',
        generatedBy: `TensorFlow.js tfjs-layers v${tfjs.version_layers}`,
        convertedBy: 'str-train export --format tfjs',
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: [WEIGHTS_FILE], weights: specs }],
      };
      const modelJson = join(dir, 'model.json');
      const weightsFile = join(dir, WEIGHTS_FILE);
      await writeFileAtomic(weightsFile, parts);
      await writeFileAtomic(modelJson, JSON.stringify(json));
      written = { modelJson, weightsFile, weightBytes: parts.reduce((a, p) => a + p.length, 0) };
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return written!;
}
