import * as tf from '../tf.js';
import type { Model } from '../models/model.js';
import { SIGMOID_ZERO_AT_OR_BELOW, strSigmoid } from '../nn/conv/str.js';
import { backendReadsSynchronously } from '../backend/sync-reads.js';
import { TopKConv } from '../nn/conv/masked.js';
import { GMPConv } from '../nn/conv/gmp.js';
import { loadStateDict, stateDict, stateDictAsync, stripModulePrefix, torchShapeOf, MODULE_PREFIX, type LoadReport } from '../nn/state-dict.js';
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
  if (!backendReadsSynchronously()) return softThresholdOnHost(w, s);
  const out = tf.tidy(() => {
    const W = tf.tensor(Float32Array.from(w.data as ArrayLike<number>), w.shape);
    const tau = strSigmoid(tf.tensor(Float32Array.from(s.data as ArrayLike<number>), s.shape.length ? s.shape : [1]));
    return tf.mul(tf.sign(W), tf.relu(tf.sub(tf.abs(W), tf.reshape(tau, [1]))));
  });
  const h = effectiveHost(w.shape, out.dataSync());
  out.dispose();
  return h;
}

/**
 * The same on the host, with the cpu backend's float32 semantics (sigmoid evaluated in float64
 * and rounded to float32, exactly 0 at or below SIGMOID_ZERO_AT_OR_BELOW; |w| − τ rounded to
 * float32), for backends without a synchronous read.
 */
export function softThresholdOnHost(w: HostTensor, s: HostTensor): HostTensor {
  const sv = Math.fround(Number((s.data as ArrayLike<number>)[0]));
  const tau = sv <= SIGMOID_ZERO_AT_OR_BELOW ? 0 : Math.fround(1 / (1 + Math.exp(-sv)));
  const src = w.data as ArrayLike<number>;
  const data = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const v = Math.fround(Number(src[i]));
    const m = Math.fround(Math.abs(v) - tau);
    data[i] = m > 0 ? Math.sign(v) * m : 0;
  }
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
  /**
   * Entries of the file not loaded, with the reason: the classifier when its shape differs
   * (fine-tuning to another class count, as the reference allows).
   */
  skipped: string[];
  /** Weights replaced by their STR effective values (STR layer in the file, non-STR layer in the model). */
  thresholded: string[];
  /** Model entries the file lacks that keep their current values (thresholds at sInit, BN counters). */
  keptAtInit: string[];
}

const first3 = (xs: string[]) => xs.slice(0, 3).join('; ') + (xs.length > 3 ? ` (+${xs.length - 3} more)` : '');

/**
 * --pretrained (STR-SPEC §13.1). Loads the entries whose key (with or without `module.`) and
 * shape match the model. A layer that is STR in the file but not in the model (STR → Dense, DNW,
 * GMP) gets its effective weight sign(W)·relu(|W| − σ(s)); the decision is per layer (the
 * reference decides by --conv-type, which is the same for uniform models). Dense → STR leaves the
 * thresholds at sInit.
 *
 * Unlike the reference, which silently drops whatever does not fit, an architecture mismatch is
 * a UserError (one line, first mismatching keys): a shape mismatch, a model weight the file lacks
 * or a file entry the model lacks. Tolerated: the classifier's shape (fine-tuning to another
 * number of classes; reported in `skipped`; not with allowClassifierMismatch false, for
 * --evaluate and --dense-conv-model), missing thresholds and BN counters.
 */
export function loadPretrained(model: Model, sd: StateDict, source: string, opts: { allowClassifierMismatch?: boolean } = {}): PretrainedReport {
  const allowClassifier = opts.allowClassifierMismatch ?? true;
  const entries = new Map<string, HostTensor>();
  for (const [k, v] of sd) entries.set(MODULE_PREFIX + stripModulePrefix(k), v);
  const want = new Map<string, number[]>();
  for (const e of model.stateEntries()) want.set(MODULE_PREFIX + e.name, e.kind === 'counter' ? [] : torchShapeOf(e.spec.variable.shape, e.spec.layout));

  const thresholded: string[] = [];
  for (const [k, s] of [...entries]) {
    if (!k.endsWith(THRESHOLD_SUFFIX) || want.has(k)) continue;
    const wk = weightKeyOf(k);
    const w = entries.get(wk);
    if (!w) throw new UserError(`--pretrained ${source}: has ${k} but no ${wk}`);
    entries.set(wk, softThreshold(w, s));
    entries.delete(k);
    thresholded.push(wk);
  }

  const classifier = model.convLayers().at(-1)?.[0];
  const isClassifier = (k: string) => allowClassifier && classifier !== undefined && (k === `${MODULE_PREFIX}${classifier}.weight` || k === `${MODULE_PREFIX}${classifier}.bias`);
  const keep: StateDict = new Map();
  const skipped: string[] = [];
  const mismatched: string[] = [];
  const unexpected: string[] = [];
  for (const [k, v] of entries) {
    const shape = want.get(k);
    if (!shape) {
      if (isClassifier(k)) skipped.push(`${k} (not in the model)`);
      else unexpected.push(k);
    } else if (shape.length !== v.shape.length || shape.some((d, i) => d !== v.shape[i])) {
      const what = `${k} file [${v.shape.join(', ')}] vs model [${shape.join(', ')}]`;
      if (isClassifier(k)) skipped.push(what);
      else mismatched.push(what);
    } else {
      keep.set(k, v);
    }
  }
  const keptAtInit: string[] = [];
  const missing: string[] = [];
  for (const k of want.keys()) {
    if (entries.has(k)) continue;
    if (k.endsWith(THRESHOLD_SUFFIX) || k.endsWith('.num_batches_tracked') || isClassifier(k)) keptAtInit.push(k);
    else missing.push(k);
  }
  if (mismatched.length || missing.length || unexpected.length) {
    const parts = [
      mismatched.length ? `shape mismatch: ${first3(mismatched)}` : '',
      missing.length ? `missing from the file: ${first3(missing)}` : '',
      unexpected.length ? `not in the model: ${first3(unexpected)}` : '',
    ].filter(Boolean);
    const hint = classifier && mismatched.some((m) => m.startsWith(`${MODULE_PREFIX}${classifier}.`)) ? ' (set --num-classes to the checkpoint\'s class count)' : '';
    throw new UserError(`--pretrained ${source} does not fit ${model.arch} (${model.options.convType}): ${parts.join(' | ')}${hint}`);
  }
  const report = loadStateDict(model, keep, { strict: false, source });
  return { ...report, skipped, thresholded, keptAtInit };
}

/** Fraction of non-zero entries. */
function density(t: HostTensor): number {
  let nz = 0;
  for (let i = 0; i < t.data.length; i++) if (t.data[i] !== 0) nz++;
  return nz / t.data.length;
}

/**
 * density_l = fraction of non-zeros of each sparse layer's weight, keyed by `module.<layer>.weight`:
 * from an STR checkpoint, of the effective weight sign(W)·relu(|W| − σ(s)) (§13.3); from a
 * dense-compatible one (no thresholds; the reference refuses those), of the stored conv weights,
 * whose zeros are the pruned entries. The reference takes a float32 mean; this is exact.
 */
export function strDensities(sd: StateDict, source = 'checkpoint'): Map<string, number> {
  const out = new Map<string, number>();
  const fromStr = thresholdedWeights(sd);
  if (fromStr.size) {
    for (const [k, w] of fromStr) out.set(MODULE_PREFIX + stripModulePrefix(k), density(w));
    return out;
  }
  let zeros = 0;
  for (const [k, w] of sd) {
    if (!k.endsWith('.weight') || w.shape.length !== 4) continue;
    const d = density(w);
    zeros += Math.round((1 - d) * w.data.length);
    out.set(MODULE_PREFIX + stripModulePrefix(k), d);
  }
  if (zeros === 0) throw new UserError(`--use-budget ${source}: no sparseThreshold entries and no zero conv weights; expected an STR checkpoint or its dense-compatible form`);
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

/**
 * --use-budget (§13.3): prune rate = 1 − density of the STR checkpoint's layer, computed like the
 * reference (1 − density, then ⌊rate·numel⌋ zeros): in float64 this can give one zero fewer than
 * the STR layer had (⌊(1 − 9/10)·10⌋ = 0, not 1), as in the reference.
 */
export function budgetFromStr(sd: StateDict, source = 'checkpoint'): Map<string, number> {
  const rates = new Map<string, number>();
  for (const [k, d] of strDensities(sd, source)) rates.set(k, 1 - d);
  return rates;
}

/**
 * The dense-compatible state dict (§13.2): every sparse conv's weight replaced by its effective
 * weight Ŵ, no sparseThreshold entries; loads into the same architecture with DenseConv.
 */
export function denseCompatibleStateDict(model: Model): StateDict {
  if (!backendReadsSynchronously()) throw new Error('denseCompatibleStateDict: use denseCompatibleStateDictAsync on this backend');
  const sd = stateDict(model);
  const effective = new Map<string, HostTensor>();
  for (const [name, conv] of model.convLayers()) {
    if (conv.typeName === 'DenseConv') continue;
    const w = tf.tidy(() => conv.toTorchOrder(conv.effectiveWeight()));
    effective.set(`${MODULE_PREFIX}${name}.weight`, effectiveHost(w.shape, w.dataSync()));
    w.dispose();
  }
  return withEffectiveWeights(sd, effective);
}

/**
 * An effective weight read back to the host. A pruned negative weight comes out as −0 (−1·0): it
 * is written as +0, so the file does not depend on the sign of weights it no longer needs (a
 * compact checkpoint does not keep them), whichever backend computed it.
 */
function effectiveHost(shape: readonly number[], values: ArrayLike<number>): HostTensor {
  const data = Float32Array.from(values);
  for (let i = 0; i < data.length; i++) data[i] += 0;
  return { dtype: 'float32', shape: [...shape], data };
}

/** `sd` without thresholds and with the effective weights in place of the sparse convs' weights. */
function withEffectiveWeights(sd: StateDict, effective: Map<string, HostTensor>): StateDict {
  const out: StateDict = new Map();
  for (const [k, v] of sd) {
    if (k.endsWith(THRESHOLD_SUFFIX)) continue;
    out.set(k, effective.get(k) ?? v);
  }
  return out;
}

/** denseCompatibleStateDict read back asynchronously (any backend, webgpu included). */
export async function denseCompatibleStateDictAsync(model: Model): Promise<StateDict> {
  const sd = await stateDictAsync(model);
  const effective = new Map<string, HostTensor>();
  for (const [name, conv] of model.convLayers()) {
    if (conv.typeName === 'DenseConv') continue;
    const w = tf.tidy(() => conv.toTorchOrder(conv.effectiveWeight()));
    effective.set(`${MODULE_PREFIX}${name}.weight`, effectiveHost(w.shape, await w.data()));
    w.dispose();
  }
  return withEffectiveWeights(sd, effective);
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

