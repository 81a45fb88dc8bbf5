import * as tf from '../../tf.js';
import { Module } from '../module.js';
import { convOutSize } from '../layers.js';
import { torchDefaultBias, torchDefaultUniform, type ConvGeometry } from '../init.js';
import { makeRng } from '../../util/rng.js';
import { torchFlatIndex } from '../../sparsity/topk-mask.js';
import type { FusedEval } from '../fused-eval.js';

export type ConvTypeName = 'DenseConv' | 'STRConv' | 'DNWConv' | 'GMPConv';

export interface ConvOptions {
  inChannels: number;
  outChannels: number;
  kernelSize: number;
  stride?: number;
  /** Symmetric zero padding (PyTorch semantics). Default: (kernelSize − 1) / 2. */
  padding?: number;
  /** 1 (dense) or inChannels === outChannels (depthwise). */
  groups?: number;
  bias?: boolean;
  /** Initial weight values (any order: initialisers are i.i.d.); default PyTorch's Conv2d init. */
  init?: Float32Array;
  /** Seed for the default init and the bias. */
  seed?: string;
}

/** What every sparsifiable conv reports: STR-SPEC §5.1 getSparsity(). */
export interface LayerSparsity {
  /** Percent of zero entries in the effective weight Ŵ. */
  sparsity: number;
  /** Exact count of zero entries in Ŵ (the percentage is derived from it). */
  zeros: number;
  numel: number;
  /** STR: sigmoid(s). DNW/GMP: largest pruned magnitude (0 when nothing is pruned). Dense: 0. */
  threshold: number;
}

/**
 * A 2-D convolution computing in NHWC with its weight stored as [kh, kw, in/groups, out]
 * (depthwise: [kh, kw, C, 1]); subclasses define the effective weight Ŵ used by the forward pass.
 */
export abstract class ConvBase extends Module {
  abstract readonly typeName: ConvTypeName;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: number;
  readonly stride: number;
  readonly padding: number;
  readonly groups: number;
  readonly depthwise: boolean;
  readonly weight: tf.Variable;
  readonly bias?: tf.Variable;
  /** Set while a prepared inference runs (nn/sparse/inference.ts); used in eval mode only. */
  fusedEval?: FusedEval;
  /** Output [H, W] of the last inferShape call (for MAC counts). */
  outHW?: [number, number];
  private flatIndex?: Int32Array;

  constructor(o: ConvOptions) {
    super();
    this.inChannels = o.inChannels;
    this.outChannels = o.outChannels;
    this.kernelSize = o.kernelSize;
    this.stride = o.stride ?? 1;
    this.padding = o.padding ?? (o.kernelSize - 1) / 2;
    this.groups = o.groups ?? 1;
    if (this.groups !== 1 && !(this.groups === o.inChannels && o.inChannels === o.outChannels)) {
      throw new Error(`conv: groups=${this.groups} is supported only as 1 or depthwise (groups = in = out)`);
    }
    this.depthwise = this.groups !== 1;
    const shape = this.internalShape();
    const n = shape.reduce((a, b) => a * b, 1);
    const values = o.init ?? torchDefaultUniform(n, this.geometry(), makeRng(o.seed));
    if (values.length !== n) throw new Error(`conv: init has ${values.length} values, expected ${n}`);
    this.weight = this.registerParameter('weight', tf.tensor(values, shape), this.depthwise ? 'depthwise' : 'conv');
    if (o.bias) {
      this.bias = this.registerParameter('bias', tf.tensor1d(torchDefaultBias(this.outChannels, this.geometry(), o.seed && `${o.seed}/bias`)));
    }
  }

  geometry(): ConvGeometry {
    return { inChannels: this.inChannels, outChannels: this.outChannels, kernelSize: this.kernelSize, groups: this.groups };
  }

  /** Internal weight shape: [kh, kw, in/groups, out], or [kh, kw, C, 1] for depthwise. */
  internalShape(): [number, number, number, number] {
    const k = this.kernelSize;
    return this.depthwise ? [k, k, this.inChannels, 1] : [k, k, this.inChannels / this.groups, this.outChannels];
  }

  /** PyTorch weight shape [out, in/groups, kh, kw]. */
  torchShape(): [number, number, number, number] {
    const k = this.kernelSize;
    return [this.outChannels, this.inChannels / this.groups, k, k];
  }

  get numel(): number {
    return this.weight.size;
  }

  /** Internal flat position → PyTorch (OIHW) flat index, for layout-independent tie-breaking. */
  torchIndex(): Int32Array {
    if (!this.flatIndex) {
      const [kh, kw, a, b] = this.internalShape();
      // depthwise [kh,kw,C,1] has the memory order of [kh,kw,1,C]
      this.flatIndex = this.depthwise ? torchFlatIndex(kh, kw, 1, a) : torchFlatIndex(kh, kw, a, b);
    }
    return this.flatIndex;
  }

  /** Permutations between the internal layout and PyTorch's, as tensors (device-side work). */
  toTorchOrder(t: tf.Tensor): tf.Tensor {
    return tf.transpose(t, this.depthwise ? [2, 3, 0, 1] : [3, 2, 0, 1]);
  }
  fromTorchOrder(t: tf.Tensor): tf.Tensor {
    return tf.transpose(t, this.depthwise ? [2, 3, 0, 1] : [2, 3, 1, 0]);
  }

  /** Ŵ, the weight the convolution actually uses (differentiable w.r.t. the parameters). */
  abstract effectiveWeight(): tf.Tensor;

  /** Threshold reported by sparsity() (see LayerSparsity.threshold), as a device scalar. */
  abstract thresholdTensor(): tf.Tensor;

  /** The threshold read back synchronously (cpu/wasm; GPU backends read thresholdTensor()). */
  thresholdValue(): number {
    const t = this.thresholdTensor();
    const v = t.dataSync()[0];
    t.dispose();
    return v;
  }

  forward(x: tf.Tensor): tf.Tensor {
    if (!this.training && this.fusedEval && this.fusedEval.bn == null) return this.fusedEval.run(x, false);
    const w = this.effectiveWeight();
    const pad = this.padding === 0 ? 'valid' : this.padding;
    let y = this.depthwise
      ? tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, this.stride, pad)
      : tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, this.stride, pad);
    if (this.bias) y = tf.add(y, this.bias);
    return y;
  }

  inferShape([h, w, c]: [number, number, number]): [number, number, number] {
    if (c !== this.inChannels) throw new Error(`conv: expected ${this.inChannels} input channels, got ${c}`);
    const oh = convOutSize(h, this.kernelSize, this.stride, this.padding);
    const ow = convOutSize(w, this.kernelSize, this.stride, this.padding);
    this.outHW = [oh, ow];
    return [oh, ow, this.outChannels];
  }

  /** Zero count of Ŵ as a scalar tensor (device-side; batch several layers before reading). */
  zeroCount(): tf.Scalar {
    return tf.tidy(() => tf.sum(tf.cast(tf.equal(this.effectiveWeight(), 0), 'int32')) as tf.Scalar);
  }

  /** Per-layer statistics read back to the host (one small sync). */
  sparsity(): LayerSparsity {
    const zc = this.zeroCount();
    const zeros = zc.dataSync()[0];
    zc.dispose();
    return { zeros, numel: this.numel, sparsity: (100 * zeros) / this.numel, threshold: this.thresholdValue() };
  }
}
