import * as tf from '../tf.js';
import type { Module, TorchLayout } from './module.js';
import type { HostTensor, StateDict } from '../io/host-tensor.js';
import { UserError } from '../util/errors.js';

/** The DataParallel prefix every reference checkpoint key carries (STR-SPEC §3, quirk 23). */
export const MODULE_PREFIX = 'module.';

export function stripModulePrefix(name: string): string {
  return name.startsWith(MODULE_PREFIX) ? name.slice(MODULE_PREFIX.length) : name;
}

const TO_TORCH: Record<Exclude<TorchLayout, 'plain'>, number[]> = { conv: [3, 2, 0, 1], depthwise: [2, 3, 0, 1] };
const FROM_TORCH: Record<Exclude<TorchLayout, 'plain'>, number[]> = { conv: [2, 3, 1, 0], depthwise: [2, 3, 0, 1] };

/** Internal tensor → host tensor in PyTorch layout. */
export function toTorchLayout(t: tf.Tensor, layout: TorchLayout): HostTensor {
  if (layout === 'plain') return { dtype: 'float32', shape: [...t.shape], data: Float32Array.from(t.dataSync()) };
  const p = tf.transpose(t, TO_TORCH[layout]);
  const out: HostTensor = { dtype: 'float32', shape: [...p.shape], data: Float32Array.from(p.dataSync()) };
  p.dispose();
  return out;
}

/** toTorchLayout read back asynchronously (works on every backend, webgpu included). */
export async function toTorchLayoutAsync(t: tf.Tensor, layout: TorchLayout): Promise<HostTensor> {
  const p = layout === 'plain' ? t : tf.transpose(t, TO_TORCH[layout]);
  const data = Float32Array.from(await p.data());
  if (p !== t) p.dispose();
  return { dtype: 'float32', shape: [...p.shape], data };
}

/** Host tensor in PyTorch layout → internal tensor (caller owns it). */
export function fromTorchLayout(h: HostTensor, layout: TorchLayout): tf.Tensor {
  const data = h.data instanceof Float32Array ? h.data : Float32Array.from(h.data as ArrayLike<number>, Number);
  const t = tf.tensor(data, h.shape, 'float32');
  if (layout === 'plain') return t;
  const p = tf.transpose(t, FROM_TORCH[layout]);
  t.dispose();
  return p;
}

/** Shape the PyTorch tensor of an internal tensor has. */
export function torchShapeOf(shape: readonly number[], layout: TorchLayout): number[] {
  if (layout === 'plain') return [...shape];
  return TO_TORCH[layout].map((i) => shape[i]);
}

/**
 * The module's state in PyTorch names, order, layouts and dtypes (num_batches_tracked as a
 * 0-dim int64), with the `module.` prefix by default so the reference loads it unchanged.
 */
export function stateDict(model: Module, opts: { prefix?: string } = {}): StateDict {
  const prefix = opts.prefix ?? MODULE_PREFIX;
  const sd: StateDict = new Map();
  for (const e of model.stateEntries()) {
    if (e.kind === 'counter') {
      sd.set(prefix + e.name, { dtype: 'int64', shape: [], data: BigInt64Array.of(BigInt(e.counter.value)) });
    } else {
      sd.set(prefix + e.name, toTorchLayout(e.spec.variable, e.spec.layout));
    }
  }
  return sd;
}

/** stateDict read back asynchronously (what checkpoints use: webgpu has no synchronous read). */
export async function stateDictAsync(model: Module, opts: { prefix?: string } = {}): Promise<StateDict> {
  const prefix = opts.prefix ?? MODULE_PREFIX;
  const sd: StateDict = new Map();
  for (const e of model.stateEntries()) {
    if (e.kind === 'counter') {
      sd.set(prefix + e.name, { dtype: 'int64', shape: [], data: BigInt64Array.of(BigInt(e.counter.value)) });
    } else {
      sd.set(prefix + e.name, await toTorchLayoutAsync(e.spec.variable, e.spec.layout));
    }
  }
  return sd;
}

export interface LoadReport {
  loaded: string[];
  /** Model entries absent from the file. */
  missing: string[];
  /** File entries the model does not have. */
  unexpected: string[];
  /** Present in both with different shapes: "name: file [..] vs model [..]". */
  mismatched: string[];
}

/**
 * Load a PyTorch-layout state dict (keys with or without `module.`). With `strict` (default) any
 * missing, unexpected or mismatched key is a UserError listing the first few; otherwise matching
 * keys are loaded and the rest reported, as the reference's --pretrained does.
 */
export function loadStateDict(model: Module, sd: StateDict, opts: { strict?: boolean; source?: string } = {}): LoadReport {
  const strict = opts.strict ?? true;
  const byName = new Map<string, HostTensor>();
  for (const [k, v] of sd) byName.set(stripModulePrefix(k), v);
  const report: LoadReport = { loaded: [], missing: [], unexpected: [], mismatched: [] };
  const seen = new Set<string>();
  const pending: Array<() => void> = [];
  for (const e of model.stateEntries()) {
    const h = byName.get(e.name);
    seen.add(e.name);
    if (!h) {
      report.missing.push(e.name);
      continue;
    }
    if (e.kind === 'counter') {
      if (h.shape.length !== 0 && !(h.shape.length === 1 && h.shape[0] === 1)) {
        report.mismatched.push(`${e.name}: file [${h.shape.join(', ')}] vs model []`);
        continue;
      }
      const counter = e.counter;
      pending.push(() => (counter.value = Number(h.data[0])));
    } else {
      const want = torchShapeOf(e.spec.variable.shape, e.spec.layout);
      if (want.length !== h.shape.length || want.some((d, i) => d !== h.shape[i])) {
        report.mismatched.push(`${e.name}: file [${h.shape.join(', ')}] vs model [${want.join(', ')}]`);
        continue;
      }
      const { variable, layout } = e.spec;
      pending.push(() => {
        const t = fromTorchLayout(h, layout);
        variable.assign(t);
        t.dispose();
      });
    }
    report.loaded.push(e.name);
  }
  for (const k of byName.keys()) if (!seen.has(k)) report.unexpected.push(k);
  if (strict && (report.missing.length || report.unexpected.length || report.mismatched.length)) {
    const first = (xs: string[]) => xs.slice(0, 3).join('; ') + (xs.length > 3 ? ` (+${xs.length - 3} more)` : '');
    const parts = [
      report.mismatched.length ? `shape mismatch: ${first(report.mismatched)}` : '',
      report.missing.length ? `missing: ${first(report.missing)}` : '',
      report.unexpected.length ? `unexpected: ${first(report.unexpected)}` : '',
    ].filter(Boolean);
    throw new UserError(`${opts.source ?? 'state dict'} does not match the model (${parts.join(' | ')})`);
  }
  for (const apply of pending) apply();
  return report;
}
