// The fused training kernels of ../../fused-kernels.ts on wasm, each a pass or two of the native
// SIMD module over the tensors in place (float64 sums), instead of the 5-20 tfjs kernels (and
// transposes, for reductions over N,H,W) their composites take.
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import * as names from '../../fused-kernels.js';
import { withScratch } from '../native/native.js';
import { Scope, type BackendWasm } from '../ops.js';

type Inputs = Record<string, TensorInfo | undefined>;
interface Args { inputs: Inputs; backend: BackendWasm; attrs: NamedAttrMap }

function floatInputs(kernel: string, inputs: Inputs): void {
  for (const [k, t] of Object.entries(inputs)) {
    if (t != null && t.dtype !== 'float32') throw new Error(`${kernel}: input ${k} must be float32, got ${t.dtype}`);
  }
}

function batchNormTrain({ inputs, backend, attrs }: Args): TensorInfo[] {
  floatInputs(names.BatchNormTrain, inputs);
  const { x, scale, offset, residual, runningMean, runningVar } = inputs;
  const { eps, momentum, relu } = attrs as unknown as names.BatchNormTrainAttrs;
  const C = x!.shape[x!.shape.length - 1];
  const R = C === 0 ? 0 : x!.shape.reduce((a, b) => a * b, 1) / C;
  const s = new Scope(backend);
  const a = (t?: TensorInfo) => (t == null ? 0 : s.addr(t));
  const y = backend.makeOutput(x!.shape, 'float32');
  const mean = backend.makeOutput([C], 'float32');
  const invstd = backend.makeOutput([C], 'float32');
  const running = runningMean != null && runningVar != null;
  const rm = running ? backend.makeOutput([C], 'float32') : undefined;
  const rv = running ? backend.makeOutput([C], 'float32') : undefined;
  withScratch(backend, [C * 16 + C * 8], ([acc]) => {
    s.native.bn_fwd(a(x), a(residual), a(scale), a(offset), a(y), a(mean), a(invstd), a(runningMean), a(runningVar),
      a(rm), a(rv), acc, R, C, eps, 1 - momentum, momentum, R > 1 ? R / (R - 1) : 1, relu ? 1 : 0);
  });
  return running ? [y, mean, invstd, rm!, rv!] : [y, mean, invstd];
}

function batchNormTrainGrad({ inputs, backend, attrs }: Args): TensorInfo[] {
  floatInputs(names.BatchNormTrainGrad, inputs);
  const { dy, x, y, mean, invstd, scale } = inputs;
  const C = x!.shape[x!.shape.length - 1];
  const R = C === 0 ? 0 : x!.shape.reduce((p, q) => p * q, 1) / C;
  const s = new Scope(backend);
  const a = (t?: TensorInfo) => (t == null ? 0 : s.addr(t));
  const dx = backend.makeOutput(x!.shape, 'float32');
  const dscale = backend.makeOutput([C], 'float32');
  const doffset = backend.makeOutput([C], 'float32');
  const dres = attrs.residual ? backend.makeOutput(x!.shape, 'float32') : undefined;
  withScratch(backend, [C * 16 + C * 12], ([acc]) => {
    s.native.bn_bwd(a(dy), a(x), a(y), a(mean), a(invstd), a(scale), a(dx), a(dres), a(dscale), a(doffset), acc, R, C);
  });
  return dres ? [dx, dscale, doffset, dres] : [dx, dscale, doffset];
}

/** τ = sigmoid(s) rounded to float32, exactly 0 at or below the underflow point. */
function tau(backend: BackendWasm, s: TensorInfo, zeroAtOrBelow: number): number {
  const v = backend.typedArrayFromHeap(s)[0];
  return v <= zeroAtOrBelow ? 0 : Math.fround(1 / (1 + Math.exp(-v)));
}

function softThreshold({ inputs: { w, s }, backend, attrs }: Args): TensorInfo {
  floatInputs(names.SoftThreshold, { w, s });
  const t = tau(backend, s!, (attrs as unknown as names.SoftThresholdAttrs).zeroAtOrBelow);
  const sc = new Scope(backend);
  const out = backend.makeOutput(w!.shape, 'float32');
  sc.native.str_fwd(sc.addr(w!), sc.addr(out), w!.shape.reduce((p, q) => p * q, 1), t);
  return out;
}

function softThresholdGrad({ inputs: { dy, w, s }, backend, attrs }: Args): TensorInfo[] {
  floatInputs(names.SoftThresholdGrad, { dy, w, s });
  const t = tau(backend, s!, (attrs as unknown as names.SoftThresholdAttrs).zeroAtOrBelow);
  const sc = new Scope(backend);
  const dw = backend.makeOutput(w!.shape, 'float32');
  const sum = sc.native.str_bwd(sc.addr(dy!), sc.addr(w!), sc.addr(dw), w!.shape.reduce((p, q) => p * q, 1), t);
  // in the composite's float32 order: dτ = −Σ, ds = dτ·(τ·(1 − τ))
  const f = Math.fround;
  const ds = f(f(-sum) * f(t * f(1 - t)));
  const dsOut = backend.makeOutput(s!.shape, 'float32');
  backend.typedArrayFromHeap(dsOut)[0] = ds;
  return [dw, dsOut];
}

function sgdUpdate({ inputs: { p, g, buf }, backend, attrs }: Args): TensorInfo[] {
  floatInputs(names.SgdUpdate, { p, g, buf });
  const { lr, momentum, weightDecay, nesterov, first } = attrs as unknown as names.SgdUpdateAttrs;
  if (momentum !== 0 && !first && buf == null) throw new Error(`${names.SgdUpdate}: momentum buffer missing`);
  const sc = new Scope(backend);
  const pOut = backend.makeOutput(p!.shape, 'float32');
  const bOut = momentum !== 0 ? backend.makeOutput(p!.shape, 'float32') : undefined;
  sc.native.sgd_update(sc.addr(p!), sc.addr(g!), buf != null && !first ? sc.addr(buf) : 0, sc.addr(pOut),
    bOut ? sc.addr(bOut) : 0, p!.shape.reduce((x, y) => x * y, 1), lr, momentum, weightDecay, nesterov ? 1 : 0,
    first ? 1 : 0);
  return bOut ? [pOut, bOut] : [pOut];
}

/** Top-k by radix selection in wasm memory (linear, no copy to JS): ~10x the JS quickselect. */
function pruneMask({ inputs: { w }, backend, attrs }: Args): TensorInfo {
  floatInputs(names.PruneMask, { w });
  const { k, torchIndex } = attrs as unknown as names.PruneMaskAttrs;
  const n = w!.shape.reduce((p, q) => p * q, 1);
  const sc = new Scope(backend);
  const mask = backend.makeOutput(w!.shape, 'float32');
  const m = backend.typedArrayFromHeap(mask) as Float32Array;
  if (k <= 0 || k >= n) {
    m.fill(k <= 0 ? 1 : 0);
    return mask;
  }
  withScratch(backend, [65536 * 4, n * 4], ([hist, ties]) => {
    sc.native.mag_kth(sc.addr(w!), n, k - 1, hist);
    const heap = (backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.buffer;
    const [v, below] = new Uint32Array(heap, hist, 2);
    const t = sc.native.mask_below(sc.addr(w!), sc.addr(mask), n, v, ties);
    let need = k - below;
    if (need <= 0) return;
    const tieList = new Int32Array(heap, ties, t);
    const out = backend.typedArrayFromHeap(mask) as Float32Array; // the heap may have grown
    if (need >= t) {
      for (let i = 0; i < t; i++) out[tieList[i]] = 0;
      return;
    }
    // prune the ties of lowest PyTorch index
    const order = Array.from(tieList).sort((a, b) => torchIndex[a] - torchIndex[b]);
    for (let i = 0; need > 0; i++, need--) out[order[i]] = 0;
  });
  return mask;
}

/**
 * tfjs' Identity (every tf.clone, and every tensor autograd saves for the backward pass) copies
 * the data on wasm; tensors are immutable, so share it as the cpu backend does.
 */
function identity({ inputs: { x }, backend }: Args): TensorInfo {
  backend.incRef(x!.dataId);
  return { dataId: x!.dataId, shape: x!.shape, dtype: x!.dtype };
}

const cfg = (kernelName: string, kernelFunc: (a: Args) => TensorInfo | TensorInfo[]): KernelConfig =>
  ({ kernelName, backendName: 'wasm', kernelFunc: kernelFunc as unknown as KernelFunc });

export const fusedKernelConfigs: readonly KernelConfig[] = [
  cfg(names.BatchNormTrain, batchNormTrain),
  cfg(names.BatchNormTrainGrad, batchNormTrainGrad),
  cfg(names.SoftThreshold, softThreshold),
  cfg(names.SoftThresholdGrad, softThresholdGrad),
  cfg(names.SgdUpdate, sgdUpdate),
  cfg(names.PruneMask, pruneMask),
];

export const identityConfig: KernelConfig = cfg('Identity', identity);
