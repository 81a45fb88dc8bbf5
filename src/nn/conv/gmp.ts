import * as tf from '../../tf.js';
import { type ConvTypeName } from './base.js';
import { TopKConv } from './masked.js';

/**
 * GMPConv (Gradual Magnitude Pruning): top-k zeroing with the current scheduled rate; the mask
 * is a constant in the graph, so gradients of pruned weights are 0 (STR-SPEC §5.3). The current
 * rate is not a state_dict entry (as in the reference) but is saved in our checkpoints' metadata
 * so a resumed run stays pruned (quirk 16).
 */
export class GMPConv extends TopKConv {
  readonly typeName: ConvTypeName = 'GMPConv';
  currPruneRate = 0;

  /** Like the reference, setting the target resets the current rate to 0. */
  override setPruneRate(p: number): void {
    this.pruneRate = p;
    this.currPruneRate = 0;
  }

  setCurrPruneRate(c: number): void {
    this.currPruneRate = c;
  }

  activeRate(): number {
    return this.currPruneRate;
  }

  effectiveWeight(): tf.Tensor {
    const mask = this.mask();
    if (!mask) return this.weight;
    const out = tf.mul(this.weight, mask);
    mask.dispose();
    return out;
  }
}
