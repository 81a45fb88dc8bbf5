import type { Model } from '../models/model.js';
import { BatchNormBase } from '../nn/batchnorm.js';
import { layerStats, layerStatsAsync, type LayerStat } from './stats.js';

export interface SummaryRow {
  name: string;
  type: string;
  /** PyTorch weight shape [out, in/groups, kh, kw]. */
  shape: number[];
  kernel: number;
  stride: number;
  groups: number;
  outHW: [number, number];
  weights: number;
  nonzeros: number;
  sparsity: number;
  threshold: number;
  /** Multiply-accumulates with every weight (= weights × output H × W). */
  macs: number;
  /** Multiply-accumulates of the non-zero weights only. */
  effectiveMacs: number;
}

export interface ModelSummary {
  arch: string;
  imageSize: number;
  rows: SummaryRow[];
  /** Sum of all trainable parameters (the reference's "Num model params"). */
  totalParams: number;
  convWeights: number;
  nonzeros: number;
  bnParams: number;
  thresholds: number;
  macs: number;
  effectiveMacs: number;
  sparsity: number;
}

/**
 * Parameters, non-zero weights and dense/effective multiply-accumulates of every conv (the
 * classifier included), for the model's current weights and an input of imageSize².
 * MACs count conv/fc layers only, like the budget CSV minus its average-pool row.
 */
export function modelSummary(model: Model, imageSize = 224): ModelSummary {
  model.traceShapes(imageSize);
  const layers = model.convLayers();
  return summaryOf(model, imageSize, layers, layerStats(model, layers));
}

/** The same with the statistics read back asynchronously (any backend, webgpu included). */
export async function modelSummaryAsync(model: Model, imageSize = 224): Promise<ModelSummary> {
  model.traceShapes(imageSize);
  const layers = model.convLayers();
  return summaryOf(model, imageSize, layers, await layerStatsAsync(model, layers));
}

function summaryOf(model: Model, imageSize: number, layers: ReturnType<Model['convLayers']>, stats: LayerStat[]): ModelSummary {
  const rows: SummaryRow[] = layers.map(([, c], i) => {
    const s = stats[i];
    const [oh, ow] = c.outHW!;
    const nonzeros = s.numel - s.zeros;
    return {
      name: s.name,
      type: c.typeName,
      shape: c.torchShape(),
      kernel: c.kernelSize,
      stride: c.stride,
      groups: c.groups,
      outHW: [oh, ow],
      weights: s.numel,
      nonzeros,
      sparsity: s.sparsity,
      threshold: s.threshold,
      macs: s.numel * oh * ow,
      effectiveMacs: nonzeros * oh * ow,
    };
  });
  let bnParams = 0;
  let thresholds = 0;
  for (const p of model.namedParameters()) {
    if (p.module instanceof BatchNormBase) bnParams += p.variable.size;
    if (p.group === 'threshold') thresholds += p.variable.size;
  }
  const sum = (f: (r: SummaryRow) => number) => rows.reduce((a, r) => a + f(r), 0);
  const convWeights = sum((r) => r.weights);
  const nonzeros = sum((r) => r.nonzeros);
  return {
    arch: model.arch,
    imageSize,
    rows,
    totalParams: model.numParameters(),
    convWeights,
    nonzeros,
    bnParams,
    thresholds,
    macs: sum((r) => r.macs),
    effectiveMacs: sum((r) => r.effectiveMacs),
    sparsity: convWeights ? (100 * (convWeights - nonzeros)) / convWeights : 0,
  };
}

const fmtInt = (n: number) => n.toLocaleString('en-US');
const fmtM = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)}G` : `${(n / 1e6).toFixed(2)}M`);

/** The summary as a fixed-width text table. */
export function formatSummary(s: ModelSummary): string {
  const header = ['#', 'layer', 'type', 'shape', 'k/s/g', 'out', 'weights', 'non-zero', 'sparsity %', 'threshold', 'MACs', 'eff. MACs'];
  const body = s.rows.map((r, i) => [
    String(i + 1),
    r.name,
    r.type,
    `[${r.shape.join(',')}]`,
    `${r.kernel}/${r.stride}/${r.groups}`,
    `${r.outHW[0]}x${r.outHW[1]}`,
    fmtInt(r.weights),
    fmtInt(r.nonzeros),
    r.sparsity.toFixed(2),
    r.threshold === 0 ? '0' : r.threshold.toExponential(3),
    fmtInt(r.macs),
    fmtInt(r.effectiveMacs),
  ]);
  body.push(['', 'total', '', '', '', '', fmtInt(s.convWeights), fmtInt(s.nonzeros), s.sparsity.toFixed(2), '', fmtInt(s.macs), fmtInt(s.effectiveMacs)]);
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((r) => r[c].length)));
  const right = new Set([0, 6, 7, 8, 9, 10, 11]);
  const line = (cells: string[]) => cells.map((x, c) => (right.has(c) ? x.padStart(widths[c]) : x.padEnd(widths[c]))).join('  ');
  const out = [
    `${s.arch} @ ${s.imageSize}x${s.imageSize}`,
    line(header),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...body.map(line),
    '',
    `parameters: ${fmtInt(s.totalParams)} (conv/fc weights ${fmtInt(s.convWeights)}, BN ${fmtInt(s.bnParams)}, thresholds ${fmtInt(s.thresholds)})`,
    `non-zero conv/fc weights: ${fmtInt(s.nonzeros)} (${fmtM(s.nonzeros)}), sparsity ${s.sparsity.toFixed(2)} %`,
    `multiply-accumulates: dense ${fmtM(s.macs)}, effective ${fmtM(s.effectiveMacs)}`,
  ];
  return out.join('\n');
}
