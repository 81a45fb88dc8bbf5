import { DEFAULT_MODEL_OPTIONS, type ModelOptions } from './builder.js';
import type { Model } from './model.js';
import { resnet18, resnet34, resnet50, resnet101 } from './resnet.js';
import { mobilenetv1 } from './mobilenetv1.js';
import { UserError } from '../util/errors.js';

export type ModelFactory = (o: ModelOptions) => Model;

const registry = new Map<string, ModelFactory>();

/** timm-style registry: architectures are looked up by the reference's --arch names. */
export function registerModel(name: string, factory: ModelFactory): void {
  registry.set(name, factory);
}

export function listModels(): string[] {
  return [...registry.keys()];
}

/** Build a model by name; options not given take the reference's defaults. */
export function createModel(name: string, options: Partial<ModelOptions> = {}): Model {
  const factory = registry.get(name);
  if (!factory) throw new UserError(`--arch ${name}: unknown architecture (expected one of ${listModels().join(', ')})`);
  return factory({ ...DEFAULT_MODEL_OPTIONS, ...options });
}

registerModel('ResNet18', resnet18);
registerModel('ResNet34', resnet34);
registerModel('ResNet50', resnet50);
registerModel('ResNet101', resnet101);
registerModel('MobileNetV1', mobilenetv1);
