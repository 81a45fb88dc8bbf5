import * as tf from '../tf.js';
import { Module } from './module.js';

/** Output size of a conv/pool along one axis, PyTorch convention (floor). */
export function convOutSize(inSize: number, kernel: number, stride: number, pad: number, dilation = 1): number {
  return Math.floor((inSize + 2 * pad - dilation * (kernel - 1) - 1) / stride) + 1;
}

export class ReLU extends Module {
  /** Lets Sequential fuse a preceding BatchNorm with it. */
  readonly isReLU = true;
  forward(x: tf.Tensor): tf.Tensor {
    return tf.relu(x);
  }
  inferShape(s: [number, number, number]): [number, number, number] {
    return s;
  }
}

/**
 * MaxPool2d with PyTorch's symmetric padding (padded cells never win, like PyTorch's -inf),
 * not TF's 'same' (which pads bottom/right only for stride 2 on even inputs).
 */
export class MaxPool2d extends Module {
  constructor(readonly kernelSize: number, readonly stride: number, readonly padding: number) {
    super();
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.maxPool(x as tf.Tensor4D, this.kernelSize, this.stride, this.padding);
  }
  inferShape([h, w, c]: [number, number, number]): [number, number, number] {
    return [convOutSize(h, this.kernelSize, this.stride, this.padding), convOutSize(w, this.kernelSize, this.stride, this.padding), c];
  }
}

/** AdaptiveAvgPool2d(1): mean over H and W, keeping [N, 1, 1, C] so a 1x1-conv classifier follows. */
export class GlobalAvgPool extends Module {
  forward(x: tf.Tensor): tf.Tensor {
    return tf.mean(x, [1, 2], true);
  }
  inferShape([, , c]: [number, number, number]): [number, number, number] {
    return [1, 1, c];
  }
}
