import * as tf from '../../tf.js';
import { ConvBase } from './base.js';
import { pruneCount, pruneMaskDevice, pruneMaskHost, usesHostMasks } from '../../sparsity/topk-mask.js';
import { hasKernel, PruneMask, type PruneMaskAttrs } from '../../backend/fused-kernels.js';

/** Shared top-k machinery of DNW and GMP: zero the ⌊rate·numel⌋ smallest-magnitude weights. */
export abstract class TopKConv extends ConvBase {
  /** Target fraction of zeroed weights (the reference's set_prune_rate). */
  pruneRate = 0;

  /** The rate the forward pass applies now (DNW: pruneRate; GMP: its scheduled current rate). */
  abstract activeRate(): number;

  setPruneRate(p: number): void {
    this.pruneRate = p;
  }

  /** Keep-mask (1 keep / 0 pruned) for the current weights, or null when nothing is pruned. */
  protected mask(): tf.Tensor | null {
    const k = pruneCount(this.activeRate(), this.numel);
    if (k <= 0) return null;
    if (hasKernel(PruneMask)) {
      // the kernel called directly, not through runKernel: the mask is a constant of the graph
      // (no tape entry, so autograd never asks for a gradient through the selection)
      const attrs: PruneMaskAttrs = { k, torchIndex: this.torchIndex() };
      const kernel = tf.getKernel(PruneMask, tf.getBackend())!;
      const info = kernel.kernelFunc({ inputs: { w: this.weight }, backend: tf.backend(), attrs: attrs as unknown as tf.NamedAttrMap });
      return (tf.engine() as unknown as { makeTensorFromTensorInfo(t: unknown): tf.Tensor }).makeTensorFromTensorInfo(info);
    }
    if (usesHostMasks()) {
      const m = pruneMaskHost(this.weight.dataSync() as Float32Array, k, this.torchIndex());
      return tf.tensor(m, this.weight.shape);
    }
    return pruneMaskDevice(this.weight, k, (t) => this.toTorchOrder(t), (t) => this.fromTorchOrder(t));
  }

  thresholdTensor(): tf.Tensor {
    const m = this.mask();
    if (!m) return tf.scalar(0);
    const v = tf.tidy(() => tf.max(tf.mul(tf.abs(this.weight), tf.sub(1, m))));
    m.dispose();
    return v;
  }
}
