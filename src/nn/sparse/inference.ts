/**
 * Inference with the weights prepared once: every conv gets its eval-mode BatchNorm folded into
 * its weights and a bias, and runs conv → BN [+ residual] [→ ReLU] as one op (FusedEval). A conv
 * whose effective weight is sparse enough for its shape class (measured crossovers below) runs on
 * the sparse kernel (SparseConv2D: only the non-zeros, all wasm threads); the others, and every
 * depthwise conv, run as tfjs fused dense convs on the folded weights.
 *
 * const p = await prepareSparseInference(model); … model.forward(x) … p.dispose();
 * The preparation reads the current weights: prepare again after they change (training).
 */
import * as tf from '../../tf.js';
import { hasKernel, SparseConv2D, type SparseConv2DAttrs } from '../../backend/fused-kernels.js';
import type { ConvBase } from '../conv/base.js';
import { ConvBase as ConvBaseClass } from '../conv/base.js';
import { BatchNormBase } from '../batchnorm.js';
import type { Module } from '../module.js';
import type { FusedEval } from '../fused-eval.js';
import { foldBatchNorm, packCsr, type BatchNormStats } from './pack.js';

/** Shape classes of the crossover table. */
export type ConvShapeClass = 'pointwise' | 'spatial' | 'stem';

/**
 * Fraction of zero weights from which the sparse kernel beats the folded dense conv (tfjs'
 * XNNPACK), per shape class: the highest of the class's ResNet50 layer shapes, measured with
 * `node dist/bench/sparse.js --crossover` (bench/results/RESULTS.md, "Crossover"; two runs agreed
 * within one step of 0.1): 1×1 convs 0.3-0.5, 3×3 0.4-0.5, the 7×7 stem on 3 channels 0.4-0.5.
 * `stem`: a conv on ≤ 4 input channels.
 */
export const SPARSE_CROSSOVER: Record<ConvShapeClass, number> = {
  pointwise: 0.5,
  spatial: 0.5,
  stem: 0.5,
};

export function shapeClass(conv: ConvBase): ConvShapeClass {
  if (conv.inChannels <= 4) return 'stem';
  return conv.kernelSize === 1 ? 'pointwise' : 'spatial';
}

export interface SparseInferenceOptions {
  /**
   * 'auto': sparse kernel where the layer's sparsity reaches its crossover (default); 'sparse':
   * every non-depthwise conv on the sparse kernel; 'dense': folded dense convs only.
   */
  mode?: 'auto' | 'sparse' | 'dense';
  /** Crossover overrides per shape class (fractions of zeros). */
  crossover?: Partial<Record<ConvShapeClass, number>>;
}

export interface PreparedLayer {
  name: string;
  kind: 'sparse' | 'dense' | 'depthwise';
  /** Fraction of zeros in the effective weight. */
  sparsity: number;
  nonZeros: number;
  /** Name of the BatchNorm folded in (undefined: none). */
  batchNorm?: string;
}

export interface SparseInference {
  readonly layers: PreparedLayer[];
  /** Removes the prepared ops (the model computes as before) and frees their tensors. */
  dispose(): void;
}

/** conv → BatchNorm pairs: siblings `convX`/`bnX`, and consecutive children of a Sequential. */
function pairConvsWithBatchNorms(model: Module): Array<{ name: string; conv: ConvBase; bn?: BatchNormBase; bnName?: string }> {
  const out: Array<{ name: string; conv: ConvBase; bn?: BatchNormBase; bnName?: string }> = [];
  for (const [prefix, m] of model.namedModules()) {
    const kids = m.namedChildren();
    const byName = new Map(kids);
    const full = (n: string) => (prefix === '' ? n : `${prefix}.${n}`);
    kids.forEach(([n, c], i) => {
      if (!(c instanceof ConvBaseClass)) return;
      let bnName: string | undefined;
      const sib = n.startsWith('conv') ? byName.get(`bn${n.slice(4)}`) : undefined;
      if (sib instanceof BatchNormBase) bnName = `bn${n.slice(4)}`;
      else if (/^\d+$/.test(n) && kids[i + 1]?.[1] instanceof BatchNormBase) bnName = kids[i + 1][0];
      const bn = bnName ? (byName.get(bnName) as BatchNormBase) : undefined;
      out.push({ name: full(n), conv: c, bn, bnName: bnName && full(bnName) });
    });
  }
  return out;
}

function batchNormStats(bn: BatchNormBase): BatchNormStats {
  const read = (v?: tf.Variable) => (v ? (v.dataSync() as Float32Array) : undefined);
  return { mean: read(bn.runningMean)!, variance: read(bn.runningVar)!, gamma: read(bn.weight), beta: read(bn.bias), eps: bn.eps };
}

function padOf(conv: ConvBase): number | 'valid' {
  return conv.padding === 0 ? 'valid' : conv.padding;
}

/** Folded dense conv: tfjs' fused conv (bias + ReLU in the kernel when there is no residual). */
function denseFused(conv: ConvBase, bn: BatchNormBase | undefined, weight: Float32Array, bias: Float32Array): { f: FusedEval; tensors: tf.Tensor[] } {
  const w = tf.tensor(weight, conv.internalShape());
  const b = tf.tensor1d(bias);
  const f: FusedEval = {
    bn,
    run: (x, relu, residual) => tf.tidy(() => {
      const activation = relu && !residual ? 'relu' : 'linear';
      const args = { x: x as tf.Tensor4D, filter: w as tf.Tensor4D, strides: conv.stride, pad: padOf(conv), bias: b, activation } as const;
      let y: tf.Tensor = conv.depthwise ? tf.fused.depthwiseConv2d(args) : tf.fused.conv2d(args);
      if (residual) y = tf.add(y, residual);
      return relu && residual ? tf.relu(y) : y;
    }),
  };
  return { f, tensors: [w, b] };
}

function sparseFused(conv: ConvBase, bn: BatchNormBase | undefined, weight: Float32Array, bias: Float32Array): { f: FusedEval; tensors: tf.Tensor[]; nnz: number } {
  const [KH, KW] = conv.internalShape();
  const csr = packCsr(weight, KH, KW, conv.inChannels, conv.outChannels, conv.groups);
  const rowptr = tf.tensor1d(csr.rowptr, 'int32');
  const nz = tf.tensor1d(csr.nz, 'int32');
  const b = tf.tensor1d(bias);
  const base: Omit<SparseConv2DAttrs, 'relu'> = {
    kernelSize: conv.kernelSize, stride: conv.stride, padding: conv.padding, outChannels: conv.outChannels,
  };
  const f: FusedEval = {
    bn,
    run: (x, relu, residual) => {
      const inputs: tf.NamedTensorMap = { x, rowptr, nz, bias: b };
      if (residual) inputs.residual = residual;
      return tf.engine().runKernel(SparseConv2D, inputs, { ...base, relu } as unknown as tf.NamedAttrMap) as tf.Tensor;
    },
  };
  return { f, tensors: [rowptr, nz, b], nnz: csr.nnz };
}

/**
 * Prepares `model` (put in eval mode) for inference on its current weights; see the module
 * comment. Starts the native worker threads the sparse kernel uses (wasm).
 */
export async function prepareSparseInference(model: Module, opts: SparseInferenceOptions = {}): Promise<SparseInference> {
  const mode = opts.mode ?? 'auto';
  const crossover = { ...SPARSE_CROSSOVER, ...opts.crossover };
  const canSparse = hasKernel(SparseConv2D);
  if (canSparse) await startSparseWorkers();
  model.eval();
  const tensors: tf.Tensor[] = [];
  const prepared: ConvBase[] = [];
  const layers: PreparedLayer[] = [];
  try {
    for (const { name, conv, bn, bnName } of pairConvsWithBatchNorms(model)) {
      const ew = tf.tidy(() => conv.effectiveWeight());
      const raw = ew.dataSync() as Float32Array;
      if (ew !== conv.weight) ew.dispose();
      let zeros = 0;
      for (let i = 0; i < raw.length; i++) if (raw[i] === 0) zeros++;
      const sparsity = raw.length === 0 ? 0 : zeros / raw.length;
      const folded = foldBatchNorm(raw, conv.depthwise ? conv.inChannels : conv.outChannels, bn && batchNormStats(bn),
        conv.bias?.dataSync() as Float32Array | undefined);
      const useSparse = canSparse && !conv.depthwise && mode !== 'dense'
        && (mode === 'sparse' || sparsity >= crossover[shapeClass(conv)]);
      const r = useSparse ? sparseFused(conv, bn, folded.weight, folded.bias) : denseFused(conv, bn, folded.weight, folded.bias);
      tensors.push(...r.tensors);
      conv.fusedEval = r.f;
      prepared.push(conv);
      layers.push({ name, kind: useSparse ? 'sparse' : conv.depthwise ? 'depthwise' : 'dense', sparsity, nonZeros: raw.length - zeros, batchNorm: bnName });
    }
  } catch (e) {
    for (const c of prepared) c.fusedEval = undefined;
    tf.dispose(tensors);
    throw e;
  }
  let disposed = false;
  return {
    layers,
    dispose() {
      if (disposed) return;
      disposed = true;
      for (const c of prepared) c.fusedEval = undefined;
      tf.dispose(tensors);
    },
  };
}

/**
 * The preparation validation (--evaluate, and each validation during training) runs on: on wasm,
 * where the fused and sparse kernels live, every layer folded and the sparse ones on the sparse
 * kernel; elsewhere nothing (undefined: the plain eval forward).
 */
export async function prepareValidation(model: Module): Promise<SparseInference | undefined> {
  return hasKernel(SparseConv2D) ? prepareSparseInference(model) : undefined;
}

/** Starts the wasm native worker threads (one per tfjs wasm thread, the caller's included). */
async function startSparseWorkers(): Promise<void> {
  const { getThreadsCount } = await import('@tensorflow/tfjs-backend-wasm');
  const { startNativeWorkers } = await import('../../backend/wasm/native/workers.js');
  await startNativeWorkers(tf.backend() as never, getThreadsCount());
}
