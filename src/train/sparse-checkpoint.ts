/**
 * Compact checkpoints (`*.sparse.safetensors`): every conv weight stored as the raw weights at
 * the positions where its effective weight Ŵ is non-zero plus a bit mask (or indices, where
 * smaller; src/io/sparse-tensors.ts), everything else dense (BatchNorm, STR thresholds, biases,
 * a dense classifier), and the metadata of a normal checkpoint (meta, config, prune rates, class
 * names). Reading one (readCheckpoint) puts +0 at the dropped positions: STR's
 * sign(W)·relu(|W| − τ) and DNW/GMP's top-k mask then give exactly the stored Ŵ, so
 * --pretrained, --evaluate, report, predict and export (to .pth, --dense too) see the same model.
 * The raw values of pruned weights and the optimizer's buffers are gone, so --resume refuses it.
 */
import * as tf from '../tf.js';
import { basename, dirname, join } from 'node:path';
import type { Model } from '../models/model.js';
import { MODULE_PREFIX, stateDictAsync } from '../nn/state-dict.js';
import { encodeSparse, SPARSE_LAYOUT_KEY } from '../io/sparse-tensors.js';
import { safetensorsChunks } from '../io/safetensors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { SPARSE_CHECKPOINT_FORMAT, checkpointMetadata, type CheckpointSource } from './checkpoint.js';

export interface SparseCheckpointInfo {
  path: string;
  bytes: number;
  /** Non-zero weights of the encoded convs. */
  nonZeros: number;
  /** Size of the same tensors as float32 (what a weights-only dense file needs). */
  denseBytes: number;
  /** Tensors stored as values + mask. */
  encoded: number;
}

/** `x.safetensors` → `x.sparse.safetensors` (beside the full checkpoint). */
export function sparsePathOf(checkpoint: string): string {
  const b = basename(checkpoint).replace(/\.safetensors$/, '');
  return join(dirname(checkpoint), `${b}.sparse.safetensors`);
}

/** Per conv weight key (`module.<layer>.weight`), 1 where the effective weight is non-zero (PyTorch order). */
export async function effectiveMasks(model: Model): Promise<Map<string, Uint8Array>> {
  const masks = new Map<string, Uint8Array>();
  for (const [name, conv] of model.convLayers()) {
    // read back asynchronously: a GPU backend (webgpu in Node) has no synchronous read
    const w = tf.tidy(() => conv.toTorchOrder(conv.effectiveWeight()));
    const v = await w.data();
    w.dispose();
    const m = new Uint8Array(v.length);
    for (let i = 0; i < v.length; i++) m[i] = v[i] !== 0 ? 1 : 0;
    masks.set(`${MODULE_PREFIX}${name}.weight`, m);
  }
  return masks;
}

/** Writes `model` as a compact checkpoint (atomically) and says what it holds. */
export async function saveSparseCheckpoint(path: string, c: CheckpointSource): Promise<SparseCheckpointInfo> {
  const sd = c.stateDict ?? (await stateDictAsync(c.model));
  const { tensors, layout, nonZeros } = encodeSparse(sd, await effectiveMasks(c.model));
  const metadata = { ...checkpointMetadata(SPARSE_CHECKPOINT_FORMAT, c), [SPARSE_LAYOUT_KEY]: JSON.stringify(layout) };
  const chunks = safetensorsChunks(tensors, metadata);
  await writeFileAtomic(path, chunks);
  let denseBytes = 0;
  for (const t of sd.values()) denseBytes += t.data.byteLength;
  return { path, bytes: chunks.reduce((a, ch) => a + ch.length, 0), nonZeros, denseBytes, encoded: Object.keys(layout).length };
}
