import * as tf from '../tf.js';
import type { Model } from '../models/model.js';
import { ConvBase, STRConv, type ConvTypeName } from '../nn/conv/index.js';
import { MODULE_PREFIX } from '../nn/state-dict.js';

export interface LayerStat {
  /** Module name with the reference's `module.` prefix (TensorBoard tags, CSV/JSON keys). */
  name: string;
  type: ConvTypeName;
  zeros: number;
  numel: number;
  /** Percent zeros of the effective weight. */
  sparsity: number;
  threshold: number;
}

export interface TotalSparsity {
  zeros: number;
  numel: number;
  sparsity: number;
}

/**
 * The layers whose sparsity a run reports: those of the run's conv type (the reference logs
 * STRConv layers only); a dense run reports every conv.
 */
export function reportedLayers(model: Model): Array<[string, ConvBase]> {
  const type = model.options.convType;
  const all = model.convLayers();
  if (type === 'DenseConv') return all;
  return all.filter(([, c]) => c.typeName === type);
}

/**
 * Per-layer zero counts and thresholds, read back in one batch (not one sync per layer).
 * Percentages come from exact integer counts rather than a float32 mean (quirk 27 fixed).
 */
export function layerStats(model: Model, layers = reportedLayers(model)): LayerStat[] {
  if (layers.length === 0) return [];
  const { zeros, thresholds } = statTensors(layers);
  const z = zeros.dataSync();
  const t = thresholds.dataSync();
  tf.dispose([zeros, thresholds]);
  return statsOf(layers, z, t);
}

/**
 * The same, read back asynchronously: what runs use, as a GPU backend (webgpu in Node) has no
 * synchronous read.
 */
export async function layerStatsAsync(model: Model, layers = reportedLayers(model)): Promise<LayerStat[]> {
  if (layers.length === 0) return [];
  const { zeros, thresholds } = statTensors(layers);
  const [z, t] = await Promise.all([zeros.data(), thresholds.data()]);
  tf.dispose([zeros, thresholds]);
  return statsOf(layers, z, t);
}

/** Zero counts (int32, exact) and thresholds of every layer, computed on the device. */
function statTensors(layers: Array<[string, ConvBase]>): { zeros: tf.Tensor; thresholds: tf.Tensor } {
  return tf.tidy(() => ({
    zeros: tf.stack(layers.map(([, c]) => c.zeroCount())),
    thresholds: tf.stack(layers.map(([, c]) => tf.reshape(c.thresholdTensor(), []))),
  }));
}

function statsOf(layers: Array<[string, ConvBase]>, z: ArrayLike<number>, t: ArrayLike<number>): LayerStat[] {
  return layers.map(([name, c], i) => ({
    name: MODULE_PREFIX + name,
    type: c.typeName,
    zeros: z[i],
    numel: c.numel,
    sparsity: (100 * z[i]) / c.numel,
    threshold: t[i],
  }));
}

/** Total over layers: 100·Σzeros/Σnumel (exact counts; the reference truncates, quirk 27). */
export function totalSparsity(stats: readonly LayerStat[]): TotalSparsity {
  let zeros = 0;
  let numel = 0;
  for (const s of stats) {
    zeros += s.zeros;
    numel += s.numel;
  }
  return { zeros, numel, sparsity: numel ? (100 * zeros) / numel : 0 };
}
