import { createConv, type ConvBase, type ConvTypeName } from '../nn/conv/index.js';
import { createBatchNorm, type BatchNormBase, type BatchNormTypeName } from '../nn/batchnorm.js';
import { initConvWeight, type FanMode, type InitName } from '../nn/init.js';
import { deriveSeed } from '../util/rng.js';

export interface ModelOptions {
  numClasses: number;
  convType: ConvTypeName;
  bnType: BatchNormTypeName;
  /** Stem is a plain DenseConv with PyTorch's default init (reference --first-layer-dense). */
  firstLayerDense: boolean;
  /** Classifier is a plain DenseConv with a bias and PyTorch's default init (--last-layer-dense). */
  lastLayerDense: boolean;
  /** Conv class of the stem when not dense (reference --first-layer-type). */
  firstLayerType?: ConvTypeName;
  init: InitName;
  mode: FanMode;
  nonlinearity: 'relu';
  scaleFan: boolean;
  /** DNW/GMP target rate (also the --scale-fan factor). */
  pruneRate: number;
  /** STR initial threshold parameter. */
  sInitValue: number;
  /** Channel multiplier (the reference's --width-mult is a no-op; here it scales every width). */
  widthMult: number;
  /** 'imagenet': 7×7/s2 + max-pool (ResNet), 3×3/s2 (MobileNetV1); 'small': 3×3/s1, no max-pool. */
  stem: 'imagenet' | 'small';
  /** Seed for weight init; undefined = random. */
  seed?: number | string;
}

export const DEFAULT_MODEL_OPTIONS: ModelOptions = {
  numClasses: 1000,
  convType: 'DenseConv',
  bnType: 'LearnedBatchNorm',
  firstLayerDense: false,
  lastLayerDense: false,
  init: 'kaiming_normal',
  mode: 'fan_in',
  nonlinearity: 'relu',
  scaleFan: false,
  pruneRate: 0,
  // The reference default (100) prunes everything at init (quirk 13); -3200 is its ResNet50 value.
  sInitValue: -3200,
  widthMult: 1,
  stem: 'imagenet',
};

/** Scaled channel count (at least 1). */
export function scaleWidth(channels: number, widthMult: number): number {
  return Math.max(1, Math.round(channels * widthMult));
}

/**
 * The reference's utils/builder.py: which conv/BN class each layer gets and how it is
 * initialised. `name` is the module path; it seeds each layer's init independently so adding a
 * layer does not shift every other layer's weights.
 */
export class Builder {
  constructor(readonly o: ModelOptions) {}

  private sparse() {
    return { sInitValue: this.o.sInitValue, pruneRate: this.o.pruneRate };
  }

  /** builder.conv(): conv of the main (or first-layer) class, re-initialised with --init. */
  conv(name: string, kernel: number, inCh: number, outCh: number, stride = 1, firstLayer = false): ConvBase {
    const type = firstLayer && this.o.firstLayerType ? this.o.firstLayerType : this.o.convType;
    const geometry = { inChannels: inCh, outChannels: outCh, kernelSize: kernel, groups: 1 };
    const n = kernel * kernel * inCh * outCh;
    const init = initConvWeight(n, geometry, this.o, deriveSeed(this.o.seed, name));
    return createConv(type, { ...geometry, stride, padding: (kernel - 1) / 2, init }, this.sparse());
  }

  /** builder.conv2d(): conv of the main class with PyTorch's default init (no --init). */
  conv2d(name: string, inCh: number, outCh: number, kernel: number, stride: number, padding: number, groups = 1): ConvBase {
    return createConv(
      this.o.convType,
      { inChannels: inCh, outChannels: outCh, kernelSize: kernel, stride, padding, groups, seed: deriveSeed(this.o.seed, name) },
      this.sparse(),
    );
  }

  /** A plain nn.Conv2d (first/last-layer-dense): DenseConv, PyTorch default init. */
  plainConv(name: string, inCh: number, outCh: number, kernel: number, stride: number, padding: number, bias: boolean): ConvBase {
    return createConv('DenseConv', {
      inChannels: inCh,
      outChannels: outCh,
      kernelSize: kernel,
      stride,
      padding,
      bias,
      seed: deriveSeed(this.o.seed, name),
    });
  }

  batchnorm(planes: number): BatchNormBase {
    return createBatchNorm(this.o.bnType, planes);
  }
}
