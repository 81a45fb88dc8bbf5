import * as tf from '../tf.js';
import { Module, Sequential } from '../nn/module.js';
import type { ConvBase } from '../nn/conv/index.js';
import { GlobalAvgPool, ReLU } from '../nn/layers.js';
import { Builder, scaleWidth, type ModelOptions } from './builder.js';
import { Model } from './model.js';

/** (inp, oup, stride) of model.1 … model.13 (STR-SPEC §3.3). */
const DW_BLOCKS: Array<[number, number, number]> = [
  [32, 64, 1], [64, 128, 2], [128, 128, 1], [128, 256, 2], [256, 256, 1], [256, 512, 2],
  [512, 512, 1], [512, 512, 1], [512, 512, 1], [512, 512, 1], [512, 512, 1], [512, 1024, 2], [1024, 1024, 1],
];

/**
 * MobileNetV1 as in the reference's models/mobilenetv1.py: `model` = Sequential(conv_bn, 13 ×
 * conv_dw, avg-pool), then `fc` (1×1 conv, no bias). Backbone convs keep PyTorch's default init
 * like the reference (quirk 6, kept: it is how the released models were trained); only fc gets
 * --init. Unlike the reference, --bn-type, --width-mult, --num-classes, --first-layer-dense and
 * --last-layer-dense are honoured, and the pool is global (= AvgPool2d(7) at 224 px) so any
 * input size works.
 */
export class MobileNetV1 extends Model {
  readonly arch = 'MobileNetV1';
  readonly model: Sequential;
  readonly fc: ConvBase;

  constructor(o: ModelOptions) {
    super(o);
    const b = new Builder(o);
    const w = (c: number) => scaleWidth(c, o.widthMult);
    const stemStride = o.stem === 'small' ? 1 : 2;
    const stemOut = w(32);
    const stemConv = o.firstLayerDense
      ? b.plainConv('model.0.0', 3, stemOut, 3, stemStride, 1, false)
      : b.conv2d('model.0.0', 3, stemOut, 3, stemStride, 1);
    const parts: Module[] = [new Sequential(stemConv, b.batchnorm(stemOut), new ReLU())];
    DW_BLOCKS.forEach(([inp, oup, stride], i) => {
      const [ci, co] = [w(inp), w(oup)];
      const p = `model.${i + 1}`;
      parts.push(
        new Sequential(
          b.conv2d(`${p}.0`, ci, ci, 3, stride, 1, ci),
          b.batchnorm(ci),
          new ReLU(),
          b.conv2d(`${p}.3`, ci, co, 1, 1, 0),
          b.batchnorm(co),
          new ReLU(),
        ),
      );
    });
    parts.push(new GlobalAvgPool());
    this.model = this.registerModule('model', new Sequential(...parts));
    const feat = w(1024);
    this.fc = this.registerModule('fc', o.lastLayerDense ? b.plainConv('fc', feat, o.numClasses, 1, 1, 0, true) : b.conv('fc', 1, feat, o.numClasses));
  }

  forward(x: tf.Tensor): tf.Tensor2D {
    const y = this.fc.forward(this.model.forward(x));
    return tf.reshape(y, [y.shape[0], this.numClasses]);
  }

  inferShape(s: [number, number, number]): [number, number, number] {
    return this.fc.inferShape(this.model.inferShape(s));
  }
}

export const mobilenetv1 = (o: ModelOptions) => new MobileNetV1(o);
