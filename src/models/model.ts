import * as tf from '../tf.js';
import { Module } from '../nn/module.js';
import { ConvBase } from '../nn/conv/index.js';
import type { ModelOptions } from './builder.js';

/** A classifier: NHWC images in, [N, numClasses] logits out. */
export abstract class Model extends Module {
  abstract readonly arch: string;
  constructor(readonly options: ModelOptions) {
    super();
  }

  get numClasses(): number {
    return this.options.numClasses;
  }

  /** Every convolution (the classifier included) as [module path, conv], in module order. */
  convLayers(): Array<[string, ConvBase]> {
    const out: Array<[string, ConvBase]> = [];
    for (const [name, m] of this.namedModules()) if (m instanceof ConvBase) out.push([name, m]);
    return out;
  }

  /** Run inferShape for a square input so every conv knows its output size (MAC counts). */
  traceShapes(imageSize: number): void {
    this.inferShape([imageSize, imageSize, 3]);
  }

  /** Forward pass producing logits; the caller owns tidy/dispose. */
  abstract override forward(x: tf.Tensor): tf.Tensor2D;
}
