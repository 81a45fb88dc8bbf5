import * as tf from '../tf.js';
import type { Model } from '../models/model.js';
import { strSigmoid } from '../nn/conv/str.js';
import { TopKConv } from '../nn/conv/masked.js';
import { GMPConv } from '../nn/conv/gmp.js';
import { loadStateDict, stateDict, stripModulePrefix, torchShapeOf, MODULE_PREFIX, type LoadReport } from '../nn/state-dict.js';
import type { HostTensor, StateDict } from '../io/host-tensor.js';
import { UserError } from '../util/errors.js';

const THRESHOLD_SUFFIX = '.sparseThreshold';

/**
 * The weight key of a threshold key. The reference cuts the key at the first occurrence of
 * "sparse" (quirk 34: wrong for module names containing "sparse"); we replace the suffix.
 */
export function weightKeyOf(thresholdKey: string): string {
  return thresholdKey.slice(0, -THRESHOLD_SUFFIX.length) + '.weight';
}

/** Ŵ = sign(W)·relu(|W| − sigmoid(s)) for host tensors, computed with the same device ops as STRConv. */
export function softThreshold(w: HostTensor, s: HostTensor): HostTensor {
  const out = tf.tidy(() => {
    const W = tf.tensor(Float32Array.from(w.data as ArrayLike<number>), w.shape);
    const tau = strSigmoid(tf.tensor(Float32Array.from(s.data as ArrayLike<number>), s.shape.length ? s.shape : [1]));
    return tf.mul(tf.sign(W), tf.relu(tf.sub(tf.abs(W), tf.reshape(tau, [1]))));
  });
  const data = Float32Array.from(out.dataSync());
  out.dispose();
  return { dtype: 'float32', shape: [...w.shape], data };
}

/** STR checkpoint entries whose weights are replaced by their soft-thresholded values. */
function thresholdedWeights(sd: StateDict): StateDict {
  const out: StateDict = new Map();
  for (const [k, s] of sd) {
    if (!k.endsWith(THRESHOLD_SUFFIX)) continue;
    const wk = weightKeyOf(k);
    const w = sd.get(wk);
    if (!w) throw new UserError(`checkpoint has ${k} but no ${wk}`);
    out.set(wk, softThreshold(w, s));
  }
  return out;
}

export interface PretrainedReport extends LoadReport {
  /** Entries of the file dropped because the model lacks the key or has another shape. */
  skipped: string[];
  /** Weights replaced by their STR effective values (STR checkpoint into a non-STR model). */
  thresholded: string[];
}

/**
 * --pretrained (STR-SPEC §13.1): load the entries whose key and shape match the model; when the
 * model is not an STR model, every STR layer's weight becomes its effective weight
 * sign(W)·relu(|W| − σ(s)) first. A file of which no weight fits is an error listing the first
 * mismatching keys (the reference silently loads nothing).
 */
export function loadPretrained(model: Model, sd: StateDict, source: string): PretrainedReport {
  const entries = new Map<string, HostTensor>();
  for (const [k, v] of sd) entries.set(MODULE_PREFIX + stripModulePrefix(k), v);
  const thresholded: string[] = [];
  if (model.options.convType !== 'STRConv') {
    for (const [k, v] of thresholdedWeights(entries)) {
      entries.set(k, v);
      thresholded.push(k);
    }
  }
  const want = new Map<string, number[]>();
  for (const e of model.stateEntries()) want.set(MODULE_PREFIX + e.name, e.kind === 'counter' ? [] : torchShapeOf(e.spec.variable.shape, e.spec.layout));
  const skipped: string[] = [];
  const keep: StateDict = new Map();
  for (const [k, v] of entries) {
    const shape = want.get(k);
    if (!shape) skipped.push(`${k} (not in the model)`);
    else if (shape.length !== v.shape.length || shape.some((d, i) => d !== v.shape[i])) skipped.push(`${k} (file [${v.shape.join(', ')}] vs model [${shape.join(', ')}])`);
    else keep.set(k, v);
  }
  const weightsLoaded = [...keep.keys()].filter((k) => k.endsWith('.weight')).length;
  if (weightsLoaded === 0) {
    throw new UserError(`--pretrained ${source}: no weight matches the model (${model.arch}); first mismatches: ${skipped.slice(0, 3).join('; ')}`);
  }
  const report = loadStateDict(model, keep, { strict: false, source });
  return { ...report, skipped, thresholded };
}

/** density_l = fraction of non-zeros of each STR layer's effective weight, keyed by weight key. */
export function strDensities(sd: StateDict): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, w] of thresholdedWeights(sd)) {
    let nz = 0;
    for (let i = 0; i < w.data.length; i++) if (w.data[i] !== 0) nz++;
    out.set(MODULE_PREFIX + stripModulePrefix(k), nz / w.data.length);
  }
  return out;
}

/**
 * Set each DNW/GMP layer's prune rate from a per-layer map keyed by module name (with or
 * without `module.`). A layer missing from the budget is a UserError naming it (the reference
 * raises a KeyError, quirk 34).
 */
export function applyBudget(model: Model, rates: Map<string, number>, source: string): Array<[string, number]> {
  const byName = new Map<string, number>();
  for (const [k, v] of rates) byName.set(stripModulePrefix(k).replace(/\.weight$/, ''), v);
  const applied: Array<[string, number]> = [];
  const layers = model.convLayers().filter(([, c]) => c instanceof TopKConv) as Array<[string, TopKConv]>;
  if (layers.length === 0) throw new UserError(`${source}: a budget applies to DNWConv/GMPConv layers, and this model (${model.options.convType}) has none`);
  for (const [name, conv] of layers) {
    const r = byName.get(name);
    if (r === undefined) throw new UserError(`${source}: no budget for layer ${name} (the budget has ${byName.size} layers: ${[...byName.keys()].slice(0, 3).join(', ')}, …)`);
    if (!(r >= 0 && r < 1)) throw new UserError(`${source}: layer ${name}: prune rate ${r} outside [0, 1)`);
    conv.setPruneRate(r);
    applied.push([name, r]);
  }
  return applied;
}

/** --use-budget (§13.3): prune rate = 1 − density of the STR checkpoint's layer. */
export function budgetFromStr(sd: StateDict): Map<string, number> {
  const rates = new Map<string, number>();
  for (const [k, d] of strDensities(sd)) rates.set(k, 1 - d);
  return rates;
}

/**
 * The dense-compatible state dict (§13.2): every sparse conv's weight replaced by its effective
 * weight Ŵ, no sparseThreshold entries; loads into the same architecture with DenseConv.
 */
export function denseCompatibleStateDict(model: Model): StateDict {
  const sd = stateDict(model);
  const effective = new Map<string, HostTensor>();
  for (const [name, conv] of model.convLayers()) {
    if (conv.typeName === 'DenseConv') continue;
    const w = tf.tidy(() => conv.toTorchOrder(conv.effectiveWeight()));
    effective.set(`${MODULE_PREFIX}${name}.weight`, { dtype: 'float32', shape: [...w.shape], data: Float32Array.from(w.dataSync()) });
    w.dispose();
  }
  const out: StateDict = new Map();
  for (const [k, v] of sd) {
    if (k.endsWith(THRESHOLD_SUFFIX)) continue;
    out.set(k, effective.get(k) ?? v);
  }
  return out;
}

/** GMP layers' (target, current) rates keyed by module name: our checkpoints' metadata (quirk 16). */
export function pruneRates(model: Model): Record<string, { prune_rate: number; curr_prune_rate?: number }> {
  const out: Record<string, { prune_rate: number; curr_prune_rate?: number }> = {};
  for (const [name, c] of model.convLayers()) {
    if (c instanceof GMPConv) out[MODULE_PREFIX + name] = { prune_rate: c.pruneRate, curr_prune_rate: c.currPruneRate };
    else if (c instanceof TopKConv) out[MODULE_PREFIX + name] = { prune_rate: c.pruneRate };
  }
  return out;
}

export function restorePruneRates(model: Model, rates: Record<string, { prune_rate: number; curr_prune_rate?: number }>): void {
  for (const [name, c] of model.convLayers()) {
    const r = rates[MODULE_PREFIX + name];
    if (!r || !(c instanceof TopKConv)) continue;
    c.setPruneRate(r.prune_rate);
    if (c instanceof GMPConv && r.curr_prune_rate !== undefined) c.setCurrPruneRate(r.curr_prune_rate);
  }
}

