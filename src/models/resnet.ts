import * as tf from '../tf.js';
import { Module, Sequential } from '../nn/module.js';
import type { ConvBase } from '../nn/conv/index.js';
import type { BatchNormBase } from '../nn/batchnorm.js';
import { GlobalAvgPool, MaxPool2d } from '../nn/layers.js';
import { convBn } from '../nn/fused-eval.js';
import { Builder, scaleWidth, type ModelOptions } from './builder.js';
import { Model } from './model.js';

type Shape = [number, number, number];

/** conv1 3×3 (stride) → bn1 → ReLU → conv2 3×3 → bn2 → + residual → ReLU. */
class BasicBlock extends Module {
  static readonly expansion = 1;
  readonly conv1: ConvBase;
  readonly bn1: BatchNormBase;
  readonly conv2: ConvBase;
  readonly bn2: BatchNormBase;
  readonly downsample?: Sequential;

  constructor(b: Builder, name: string, inplanes: number, planes: number, stride: number, downsample?: Sequential) {
    super();
    this.conv1 = this.registerModule('conv1', b.conv(`${name}.conv1`, 3, inplanes, planes, stride));
    this.bn1 = this.registerModule('bn1', b.batchnorm(planes));
    this.conv2 = this.registerModule('conv2', b.conv(`${name}.conv2`, 3, planes, planes));
    this.bn2 = this.registerModule('bn2', b.batchnorm(planes));
    if (downsample) this.downsample = this.registerModule('downsample', downsample);
  }

  forward(x: tf.Tensor): tf.Tensor {
    const y = convBn(this.conv1, this.bn1, x, true);
    const residual = this.downsample ? this.downsample.forward(x) : x;
    return convBn(this.conv2, this.bn2, y, true, residual);
  }

  inferShape(s: Shape): Shape {
    this.downsample?.inferShape(s);
    return this.conv2.inferShape(this.conv1.inferShape(s));
  }
}

/** ResNet v1.5 bottleneck: 1×1 → 3×3 (stride here) → 1×1 (×4), each with BN, + residual. */
class Bottleneck extends Module {
  static readonly expansion = 4;
  readonly conv1: ConvBase;
  readonly bn1: BatchNormBase;
  readonly conv2: ConvBase;
  readonly bn2: BatchNormBase;
  readonly conv3: ConvBase;
  readonly bn3: BatchNormBase;
  readonly downsample?: Sequential;

  constructor(b: Builder, name: string, inplanes: number, planes: number, stride: number, downsample?: Sequential) {
    super();
    this.conv1 = this.registerModule('conv1', b.conv(`${name}.conv1`, 1, inplanes, planes));
    this.bn1 = this.registerModule('bn1', b.batchnorm(planes));
    this.conv2 = this.registerModule('conv2', b.conv(`${name}.conv2`, 3, planes, planes, stride));
    this.bn2 = this.registerModule('bn2', b.batchnorm(planes));
    this.conv3 = this.registerModule('conv3', b.conv(`${name}.conv3`, 1, planes, planes * 4));
    this.bn3 = this.registerModule('bn3', b.batchnorm(planes * 4));
    if (downsample) this.downsample = this.registerModule('downsample', downsample);
  }

  forward(x: tf.Tensor): tf.Tensor {
    let y = convBn(this.conv1, this.bn1, x, true);
    y = convBn(this.conv2, this.bn2, y, true);
    const residual = this.downsample ? this.downsample.forward(x) : x;
    return convBn(this.conv3, this.bn3, y, true, residual);
  }

  inferShape(s: Shape): Shape {
    this.downsample?.inferShape(s);
    return this.conv3.inferShape(this.conv2.inferShape(this.conv1.inferShape(s)));
  }
}

type BlockClass = typeof BasicBlock | typeof Bottleneck;

/** ResNet as in the reference's models/resnet.py (fc is a 1×1 conv without bias). */
export class ResNet extends Model {
  readonly conv1: ConvBase;
  readonly bn1: BatchNormBase;
  readonly maxpool?: MaxPool2d;
  readonly layers: Sequential[] = [];
  readonly avgpool = new GlobalAvgPool();
  readonly fc: ConvBase;

  constructor(readonly arch: string, block: BlockClass, blocks: [number, number, number, number], o: ModelOptions) {
    super(o);
    const b = new Builder(o);
    const w = (c: number) => scaleWidth(c, o.widthMult);
    let inplanes = w(64);
    if (o.stem === 'small') {
      this.conv1 = this.registerModule('conv1', o.firstLayerDense ? b.plainConv('conv1', 3, inplanes, 3, 1, 1, false) : b.conv('conv1', 3, 3, inplanes, 1, true));
    } else {
      this.conv1 = this.registerModule('conv1', o.firstLayerDense ? b.plainConv('conv1', 3, inplanes, 7, 2, 3, false) : b.conv('conv1', 7, 3, inplanes, 2, true));
    }
    this.bn1 = this.registerModule('bn1', b.batchnorm(inplanes));
    if (o.stem !== 'small') this.maxpool = this.registerModule('maxpool', new MaxPool2d(3, 2, 1));
    const planesPerStage = [64, 128, 256, 512].map(w);
    planesPerStage.forEach((planes, stage) => {
      const stride = stage === 0 ? 1 : 2;
      const layerName = `layer${stage + 1}`;
      const mods: Module[] = [];
      for (let i = 0; i < blocks[stage]; i++) {
        const s = i === 0 ? stride : 1;
        let downsample: Sequential | undefined;
        if (i === 0 && (s !== 1 || inplanes !== planes * block.expansion)) {
          downsample = new Sequential(b.conv(`${layerName}.0.downsample.0`, 1, inplanes, planes * block.expansion, s), b.batchnorm(planes * block.expansion));
        }
        mods.push(new block(b, `${layerName}.${i}`, inplanes, planes, s, downsample));
        inplanes = planes * block.expansion;
      }
      this.layers.push(this.registerModule(layerName, new Sequential(...mods)));
    });
    this.fc = this.registerModule(
      'fc',
      o.lastLayerDense ? b.plainConv('fc', inplanes, o.numClasses, 1, 1, 0, true) : b.conv('fc', 1, inplanes, o.numClasses),
    );
  }

  forward(x: tf.Tensor): tf.Tensor2D {
    let y = convBn(this.conv1, this.bn1, x, true);
    if (this.maxpool) y = this.maxpool.forward(y);
    for (const l of this.layers) y = l.forward(y);
    y = this.fc.forward(this.avgpool.forward(y));
    return tf.reshape(y, [y.shape[0], this.numClasses]);
  }

  inferShape(s: Shape): Shape {
    let t = this.conv1.inferShape(s);
    if (this.maxpool) t = this.maxpool.inferShape(t);
    for (const l of this.layers) t = l.inferShape(t);
    return this.fc.inferShape(this.avgpool.inferShape(t));
  }
}

export const resnet18 = (o: ModelOptions) => new ResNet('ResNet18', BasicBlock, [2, 2, 2, 2], o);
export const resnet34 = (o: ModelOptions) => new ResNet('ResNet34', BasicBlock, [3, 4, 6, 3], o);
export const resnet50 = (o: ModelOptions) => new ResNet('ResNet50', Bottleneck, [3, 4, 6, 3], o);
export const resnet101 = (o: ModelOptions) => new ResNet('ResNet101', Bottleneck, [3, 4, 23, 3], o);
