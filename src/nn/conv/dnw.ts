import * as tf from '../../tf.js';
import { type ConvTypeName } from './base.js';
import { TopKConv } from './masked.js';

/**
 * DNWConv (Dynamic Network Wiring): top-k by magnitude in the forward pass, straight-through in
 * the backward pass: ∂L/∂W = ∂L/∂Ŵ for every entry, pruned ones included (STR-SPEC §5.2).
 */
export class DNWConv extends TopKConv {
  readonly typeName: ConvTypeName = 'DNWConv';

  activeRate(): number {
    return this.pruneRate;
  }

  effectiveWeight(): tf.Tensor {
    const mask = this.mask();
    if (!mask) return this.weight;
    const straightThrough = tf.customGrad((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => ({
      value: tf.mul(inputs[0] as tf.Tensor, mask),
      gradFunc: (dy: tf.Tensor) => dy,
    }));
    const out = straightThrough(this.weight);
    mask.dispose();
    return out;
  }
}
