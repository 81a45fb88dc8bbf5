/**
 * `str-train predict`: the top-k classes of images under a checkpoint's model, through the
 * reference's validation transform (resize the shorter side to val_resize, centre crop
 * image_size, ImageNet normalisation; the sizes from the checkpoint's configuration), in batches.
 * A file that cannot be read or decoded becomes an error entry; the others go on. On wasm the
 * model runs prepared once for all batches (BatchNorm folded, sparse layers on the sparse kernel:
 * src/nn/sparse/inference.ts), as --evaluate does.
 */
import { stat } from 'node:fs/promises';
import * as tf from '../tf.js';
import type { Model } from '../models/model.js';
import type { RunConfig } from '../config/schema.js';
import { readCheckpoint } from '../train/checkpoint.js';
import { modelFromCheckpoint, type ModelOverrides } from '../report/checkpoint-model.js';
import { configureSharp, decodeSample, SampleError, type TransformSpec } from '../data/decode.js';
import { defaultValResize, normalizationLut } from '../data/transforms.js';
import { listImages } from '../data/scan.js';
import { ioReason } from '../util/errors.js';
import { prepareValidation } from '../nn/sparse/inference.js';

export interface Prediction {
  file: string;
  /** Best first. `class` is the class-folder name, or the index as a string for checkpoints without names. */
  top?: Array<{ index: number; class: string; probability: number }>;
  error?: string;
}

export interface PredictOptions {
  checkpoint: string;
  inputs: string[];
  topK?: number;
  batchSize?: number;
  overrides?: ModelOverrides;
  /** Called with each batch's predictions, in input order, as soon as they are ready. */
  onResults?: (p: Prediction[]) => void;
}

export interface PredictSetup {
  spec: TransformSpec;
  classNames?: string[];
  numClasses: number;
}

/** Files to classify: a folder's images (recursively, sorted), a file as given; a missing path is an error entry. */
export async function collectInputs(inputs: string[]): Promise<Array<{ file: string; error?: string }>> {
  const out: Array<{ file: string; error?: string }> = [];
  for (const p of inputs) {
    let isDir: boolean;
    try {
      isDir = (await stat(p)).isDirectory();
    } catch (e) {
      out.push({ file: p, error: `cannot read (${ioReason(e)})` });
      continue;
    }
    if (!isDir) out.push({ file: p });
    else for (const f of await listImages(p)) out.push({ file: f });
  }
  return out;
}

/** The val transform of the checkpoint's run (224/256 without a configuration, as the reference). */
export function valTransform(config: Partial<RunConfig> | undefined, imageSize: number): TransformSpec {
  const size = config?.image_size ?? imageSize;
  return { train: false, size, resize: config?.val_resize ?? defaultValResize(size) };
}

/** Softmax top-k of each row of `logits` [n, classes] (read back asynchronously: webgpu has no synchronous read). */
export async function topK(logits: tf.Tensor2D, k: number, names?: string[]): Promise<Array<Array<{ index: number; class: string; probability: number }>>> {
  const [values, indices] = tf.tidy(() => {
    const r = tf.topk(tf.softmax(logits), Math.min(k, logits.shape[1]));
    return [r.values, r.indices];
  });
  const [v, ix] = await Promise.all([values.data(), indices.data()]);
  const kk = values.shape[1]!;
  values.dispose();
  indices.dispose();
  return Array.from({ length: logits.shape[0] }, (_, i) =>
    Array.from({ length: kk }, (_, j) => {
      const index = ix[i * kk + j];
      return { index, class: names?.[index] ?? String(index), probability: v[i * kk + j] };
    }),
  );
}

async function classifyBatch(model: Model, files: string[], setup: PredictSetup, k: number, lut: Float32Array): Promise<Prediction[]> {
  const S = setup.spec.size;
  const stride = S * S * 3;
  const pixels = new Float32Array(files.length * stride);
  const decoded = await Promise.allSettled(files.map((f, i) => decodeSample(f, setup.spec, null, pixels, i * stride, lut)));
  const ok = decoded.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
  const results: Prediction[] = files.map((file, i) => {
    const r = decoded[i];
    if (r.status === 'fulfilled') return { file };
    const e = r.reason as Error;
    return { file, error: e instanceof SampleError ? e.reason : e.message };
  });
  if (ok.length === 0) return results;
  const batch = new Float32Array(ok.length * stride);
  ok.forEach((i, j) => batch.set(pixels.subarray(i * stride, (i + 1) * stride), j * stride));
  const logits = tf.tidy(() => model.forward(tf.tensor4d(batch, [ok.length, S, S, 3])));
  const top = await topK(logits, k, setup.classNames);
  logits.dispose();
  ok.forEach((i, j) => (results[i].top = top[j]));
  return results;
}

/** Classifies every input; returns the predictions in input order. */
export async function predict(o: PredictOptions): Promise<Prediction[]> {
  const ck = await readCheckpoint(o.checkpoint, '--checkpoint');
  const { model, spec } = modelFromCheckpoint(ck, o.overrides);
  model.eval();
  const setup: PredictSetup = {
    spec: valTransform(ck.config as Partial<RunConfig> | undefined, spec.imageSize),
    classNames: ck.classNames,
    numClasses: model.numClasses,
  };
  configureSharp();
  const lut = normalizationLut();
  const k = o.topK ?? 5;
  const batchSize = o.batchSize ?? 32;
  const all: Prediction[] = [];
  const prepared = await prepareValidation(model);
  try {
    const inputs = await collectInputs(o.inputs);
    for (let start = 0; start < inputs.length; ) {
      // missing paths are reported where they stand, between batches
      if (inputs[start].error) {
        const p = { file: inputs[start].file, error: inputs[start].error };
        all.push(p);
        o.onResults?.([p]);
        start++;
        continue;
      }
      let end = start;
      while (end < inputs.length && end - start < batchSize && !inputs[end].error) end++;
      const r = await classifyBatch(model, inputs.slice(start, end).map((x) => x.file), setup, k, lut);
      all.push(...r);
      o.onResults?.(r);
      start = end;
    }
  } finally {
    prepared?.dispose();
    model.dispose();
  }
  return all;
}
