import * as tf from '../../tf.js';
import { ConvBase, type ConvTypeName } from './base.js';

/** A plain convolution (the reference's DenseConv = nn.Conv2d). */
export class DenseConv extends ConvBase {
  readonly typeName: ConvTypeName = 'DenseConv';

  effectiveWeight(): tf.Tensor {
    return this.weight;
  }

  thresholdTensor(): tf.Tensor {
    return tf.scalar(0);
  }
}
