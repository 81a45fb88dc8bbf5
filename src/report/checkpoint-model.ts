/**
 * The model a checkpoint describes, rebuilt so it can be evaluated, reported or folded into its
 * dense-compatible form. Our checkpoints carry their run's configuration; a reference `.pth`
 * carries only `arch` and the tensors, so the rest is read off the key names and shapes.
 */
import type { CheckpointContent } from '../train/checkpoint.js';
import { restoreCheckpoint } from '../train/checkpoint.js';
import type { RunConfig } from '../config/schema.js';
import { ARCHS, CONV_TYPES } from '../config/schema.js';
import { modelOptionsOfConfig } from '../config/model-options.js';
import { createModel } from '../models/registry.js';
import type { Model } from '../models/model.js';
import type { ModelOptions } from '../models/builder.js';
import type { ConvTypeName } from '../nn/conv/index.js';
import { stripModulePrefix } from '../nn/state-dict.js';
import type { HostTensor } from '../io/host-tensor.js';
import { GMPConv } from '../nn/conv/gmp.js';
import { UserError } from '../util/errors.js';

/** What the user may state when the checkpoint does not say it (or says it wrongly). */
export interface ModelOverrides {
  arch?: string;
  convType?: ConvTypeName;
  /** DNW/GMP rate when the checkpoint has no per-layer rates (a reference DNW/GMP .pth). */
  pruneRate?: number;
  stem?: 'imagenet' | 'small';
  imageSize?: number;
}

export interface ModelSpec {
  arch: string;
  options: Partial<ModelOptions>;
  /** Input side for MAC counts: the run's --image-size, else 224. */
  imageSize: number;
  /** 'config': our checkpoint's configuration; 'inferred': read off the state dict. */
  from: 'config' | 'inferred';
}

const isArch = (a: unknown): a is string => typeof a === 'string' && (ARCHS as readonly string[]).includes(a);
const isConvType = (c: unknown): c is ConvTypeName => typeof c === 'string' && (CONV_TYPES as readonly string[]).includes(c);

/** Architecture, width, stem, classes and conv type of a checkpoint (see the module comment). */
export function inferModelSpec(ck: CheckpointContent, o: ModelOverrides = {}): ModelSpec {
  const sd = new Map<string, HostTensor>();
  for (const [k, v] of ck.stateDict) sd.set(stripModulePrefix(k), v);
  const shape = (k: string) => sd.get(k)?.shape;
  const classifier = shape('fc.weight');
  if (!classifier || classifier.length !== 4) {
    throw new UserError(`${ck.source}: no fc.weight of shape [classes, features, 1, 1]; not a checkpoint of the reference's ResNet/MobileNetV1`);
  }
  const numClasses = classifier[0];
  const config = ck.config as Partial<RunConfig> | undefined;
  if (config && isArch(config.arch)) {
    const options = modelOptionsOfConfig(config, numClasses);
    if (o.convType) options.convType = o.convType;
    if (o.stem) options.stem = o.stem;
    if (o.pruneRate !== undefined) options.pruneRate = o.pruneRate;
    return { arch: o.arch ?? config.arch, options, imageSize: o.imageSize ?? config.image_size ?? 224, from: 'config' };
  }

  const hasThreshold = (layer: string) => sd.has(`${layer}.sparseThreshold`);
  const anyThreshold = [...sd.keys()].some((k) => k.endsWith('.sparseThreshold'));
  let arch = o.arch ?? (isArch(ck.meta.arch) ? ck.meta.arch : undefined);
  let stemLayer: string;
  let stemChannels: number;
  let widthBase: number;
  let stem: 'imagenet' | 'small' = o.stem ?? 'imagenet';
  if (sd.has('model.0.0.weight')) {
    arch ??= 'MobileNetV1';
    stemLayer = 'model.0.0';
    stemChannels = shape('model.0.0.weight')![0];
    widthBase = 32;
    // the stem's stride is not in the weights: --stem says it (default: the reference's)
  } else if (sd.has('conv1.weight') && sd.has('layer1.0.conv1.weight')) {
    const bottleneck = sd.has('layer1.0.conv3.weight');
    const blocks = new Set([...sd.keys()].filter((k) => k.startsWith('layer3.')).map((k) => k.split('.')[1])).size;
    const byBlocks: Record<string, string> = bottleneck ? { 6: 'ResNet50', 23: 'ResNet101' } : { 2: 'ResNet18', 6: 'ResNet34' };
    arch ??= byBlocks[blocks];
    if (!arch) throw new UserError(`${ck.source}: a ResNet with ${blocks} blocks in layer3 is none of ${ARCHS.join(', ')}; give --arch`);
    stemLayer = 'conv1';
    const k = shape('conv1.weight')!;
    stemChannels = k[0];
    widthBase = 64;
    if (!o.stem) stem = k[2] === 3 ? 'small' : 'imagenet';
  } else {
    throw new UserError(`${ck.source}: neither a ResNet (conv1, layer1...) nor a MobileNetV1 (model.0.0...) state dict; give --arch`);
  }
  const convType: ConvTypeName = o.convType ?? (anyThreshold ? 'STRConv' : 'DenseConv');
  const options: Partial<ModelOptions> = {
    numClasses,
    convType,
    widthMult: stemChannels / widthBase,
    stem,
    firstLayerDense: convType === 'STRConv' && !hasThreshold(stemLayer),
    lastLayerDense: sd.has('fc.bias'),
  };
  if (o.pruneRate !== undefined) options.pruneRate = o.pruneRate;
  return { arch: arch!, options, imageSize: o.imageSize ?? 224, from: 'inferred' };
}

/**
 * Builds the checkpoint's model and loads it (strict: every key and shape must match, so a wrong
 * inference is an error naming the keys), with our checkpoints' DNW/GMP rates restored.
 */
export function modelFromCheckpoint(ck: CheckpointContent, o: ModelOverrides = {}): { model: Model; spec: ModelSpec } {
  const spec = inferModelSpec(ck, o);
  if (spec.options.convType !== undefined && !isConvType(spec.options.convType)) {
    throw new UserError(`${ck.source}: unknown conv type ${String(spec.options.convType)}`);
  }
  const model = createModel(spec.arch, spec.options);
  try {
    restoreCheckpoint({ ...ck, optimizerState: new Map() }, model);
  } catch (e) {
    model.dispose();
    if (e instanceof UserError && spec.from === 'inferred') {
      throw new UserError(`${e.message}; the model was inferred as ${spec.arch} width ${spec.options.widthMult} (${spec.options.convType}), give --arch/--conv-type/--stem if that is wrong`);
    }
    throw e;
  }
  if (!ck.pruneRates && o.pruneRate !== undefined) {
    // a reference GMP checkpoint has no current rate (quirk 16): take the target, as at the end of training
    for (const [, c] of model.convLayers()) if (c instanceof GMPConv) c.setCurrPruneRate(c.pruneRate);
  }
  return { model, spec };
}
