/**
 * A str-train model as a plain TensorFlow.js LayersModel (tfjs-layers' own layers, so
 * `tf.loadLayersModel` needs no str-train code): the effective weights Ŵ (STR soft-thresholded,
 * DNW/GMP masked), BatchNorm in inference mode with the running statistics, and PyTorch's
 * symmetric padding as ZeroPadding2D + 'valid' (TF's 'same' pads bottom/right only for stride 2).
 * Input: NHWC float32 images normalised like the val transform (ImageNet mean/std), any H×W;
 * output: logits [N, classes] (no softmax).
 */
import * as tfjs from '@tensorflow/tfjs';
import * as tf from '../tf.js';
import type { Model } from '../models/model.js';
import type { Module } from '../nn/module.js';
import { Sequential } from '../nn/module.js';
import { ConvBase } from '../nn/conv/index.js';
import { BatchNormBase } from '../nn/batchnorm.js';
import { GlobalAvgPool, MaxPool2d, ReLU } from '../nn/layers.js';
import { ResNet } from '../models/resnet.js';
import { MobileNetV1 } from '../models/mobilenetv1.js';
import { UserError } from '../util/errors.js';

type SymbolicTensor = tfjs.SymbolicTensor;

/** Weights to give each tfjs layer once the model is built (the layer API builds them first). */
interface Pending {
  layer: tfjs.layers.Layer;
  weights: () => tf.Tensor[];
}

class Converter {
  readonly pending: Pending[] = [];

  private add<L extends tfjs.layers.Layer>(layer: L, weights?: () => tf.Tensor[]): L {
    if (weights) this.pending.push({ layer, weights });
    return layer;
  }

  private static layerName(path: string): string {
    return path.replace(/\./g, '_');
  }

  conv(path: string, c: ConvBase, x: SymbolicTensor): SymbolicTensor {
    const name = Converter.layerName(path);
    let y = x;
    if (c.padding > 0) y = tfjs.layers.zeroPadding2d({ padding: c.padding, name: `${name}_pad` }).apply(y) as SymbolicTensor;
    // the internal layouts are already TF's: [kh, kw, in, out] (HWIO) and [kh, kw, C, 1] for depthwise
    const weights = () => tf.tidy(() => [tf.clone(c.effectiveWeight()), ...(c.bias ? [tf.clone(c.bias)] : [])]);
    const layer = c.depthwise
      ? tfjs.layers.depthwiseConv2d({ kernelSize: c.kernelSize, strides: c.stride, padding: 'valid', depthMultiplier: 1, useBias: !!c.bias, name })
      : tfjs.layers.conv2d({ filters: c.outChannels, kernelSize: c.kernelSize, strides: c.stride, padding: 'valid', useBias: !!c.bias, name });
    return this.add(layer, weights).apply(y) as SymbolicTensor;
  }

  batchNorm(path: string, bn: BatchNormBase, x: SymbolicTensor): SymbolicTensor {
    const affine = bn.weight !== undefined;
    const layer = tfjs.layers.batchNormalization({ axis: -1, epsilon: bn.eps, center: affine, scale: affine, name: Converter.layerName(path) });
    // tfjs-layers' order: gamma, beta, moving mean, moving variance (the first two only when affine)
    const weights = () => [...(affine ? [tf.clone(bn.weight!), tf.clone(bn.bias!)] : []), tf.clone(bn.runningMean), tf.clone(bn.runningVar)];
    return this.add(layer, weights).apply(x) as SymbolicTensor;
  }

  relu(path: string, x: SymbolicTensor): SymbolicTensor {
    return tfjs.layers.reLU({ name: Converter.layerName(path) }).apply(x) as SymbolicTensor;
  }

  maxPool(path: string, p: MaxPool2d, x: SymbolicTensor): SymbolicTensor {
    const name = Converter.layerName(path);
    // it follows a ReLU: zero padding never wins over the window's (non-negative) values, like PyTorch's −inf
    const y = tfjs.layers.zeroPadding2d({ padding: p.padding, name: `${name}_pad` }).apply(x) as SymbolicTensor;
    return tfjs.layers.maxPooling2d({ poolSize: p.kernelSize, strides: p.stride, padding: 'valid', name }).apply(y) as SymbolicTensor;
  }

  /** A Sequential of conv / BN / ReLU / pooling, as the models build them. */
  sequence(path: string, s: Sequential, x: SymbolicTensor): SymbolicTensor {
    let y = x;
    for (const [n, m] of s.namedChildren()) y = this.module(`${path}.${n}`, m, y);
    return y;
  }

  module(path: string, m: Module, x: SymbolicTensor): SymbolicTensor {
    if (m instanceof ConvBase) return this.conv(path, m, x);
    if (m instanceof BatchNormBase) return this.batchNorm(path, m, x);
    if (m instanceof ReLU) return this.relu(path, x);
    if (m instanceof MaxPool2d) return this.maxPool(path, m, x);
    if (m instanceof Sequential) return this.sequence(path, m, x);
    if (m instanceof GlobalAvgPool) return tfjs.layers.globalAveragePooling2d({ name: Converter.layerName(path) }).apply(x) as SymbolicTensor;
    const block = m as Module & Partial<Record<'conv1' | 'bn1' | 'conv2' | 'bn2' | 'conv3' | 'bn3', Module>> & { downsample?: Sequential };
    if (block.conv1 instanceof ConvBase && block.conv2 instanceof ConvBase) return this.residual(path, block, x);
    throw new UserError(`export --format tfjs: no TF.js layer for ${path} (${m.constructor.name})`);
  }

  /** BasicBlock / Bottleneck: relu(bnₖ(convₖ(… relu(bn1(conv1(x))))) + shortcut). */
  residual(path: string, b: Module & Partial<Record<'conv1' | 'bn1' | 'conv2' | 'bn2' | 'conv3' | 'bn3', Module>> & { downsample?: Sequential }, x: SymbolicTensor): SymbolicTensor {
    const stages = b.conv3 ? (['1', '2', '3'] as const) : (['1', '2'] as const);
    let y = x;
    stages.forEach((k, i) => {
      y = this.module(`${path}.conv${k}`, b[`conv${k}`]!, y);
      y = this.module(`${path}.bn${k}`, b[`bn${k}`]!, y);
      if (i < stages.length - 1) y = this.relu(`${path}.relu${k}`, y);
    });
    const shortcut = b.downsample ? this.sequence(`${path}.downsample`, b.downsample, x) : x;
    const sum = tfjs.layers.add({ name: Converter.layerName(`${path}.add`) }).apply([y, shortcut]) as SymbolicTensor;
    return this.relu(`${path}.relu`, sum);
  }

  /** The 1×1-conv classifier on pooled features, as a Dense layer on [N, C]. */
  classifier(fc: ConvBase, x: SymbolicTensor): SymbolicTensor {
    const weights = () => tf.tidy(() => [tf.reshape(fc.effectiveWeight(), [fc.inChannels, fc.outChannels]), ...(fc.bias ? [tf.clone(fc.bias)] : [])]);
    return this.add(tfjs.layers.dense({ units: fc.outChannels, useBias: !!fc.bias, name: 'fc' }), weights).apply(x) as SymbolicTensor;
  }
}

/** The LayersModel of `model` (eval mode), weights set; the caller disposes it. */
export function toLayersModel(model: Model): tfjs.LayersModel {
  const cv = new Converter();
  const input = tfjs.input({ shape: [null, null, 3], name: 'image' }) as SymbolicTensor;
  let y: SymbolicTensor;
  if (model instanceof ResNet) {
    y = cv.module('conv1', model.conv1, input);
    y = cv.module('bn1', model.bn1, y);
    y = cv.relu('relu', y);
    if (model.maxpool) y = cv.maxPool('maxpool', model.maxpool, y);
    model.layers.forEach((l, i) => {
      y = cv.sequence(`layer${i + 1}`, l, y);
    });
    y = tfjs.layers.globalAveragePooling2d({ name: 'avgpool' }).apply(y) as SymbolicTensor;
  } else if (model instanceof MobileNetV1) {
    y = cv.sequence('model', model.model, input);
  } else {
    throw new UserError(`export --format tfjs: ${model.arch} is not supported (ResNet and MobileNetV1 are)`);
  }
  y = cv.classifier(model.fc, y);
  const out = tfjs.model({ inputs: input, outputs: y, name: model.arch });
  for (const p of cv.pending) {
    const w = p.weights();
    p.layer.setWeights(w);
    for (const t of w) t.dispose();
  }
  return out;
}
