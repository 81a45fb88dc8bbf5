import type { RunConfig } from './schema.js';
import type { ModelOptions } from '../models/builder.js';

/**
 * The model options a run configuration asks for (options it leaves unset take the builder's
 * defaults). Shared by the training run and by report/export, which rebuild a checkpoint's model
 * from the configuration stored in it.
 */
export function modelOptionsOfConfig(c: Partial<RunConfig>, numClasses: number): Partial<ModelOptions> {
  const o: Partial<ModelOptions> = {
    numClasses,
    convType: c.conv_type,
    bnType: c.bn_type,
    firstLayerDense: c.first_layer_dense,
    lastLayerDense: c.last_layer_dense,
    firstLayerType: c.first_layer_dense ? 'DenseConv' : c.first_layer_type,
    init: c.init,
    mode: c.mode,
    nonlinearity: c.nonlinearity,
    scaleFan: c.scale_fan,
    pruneRate: c.prune_rate,
    sInitValue: c.sInit_value,
    widthMult: c.width_mult,
    stem: c.stem,
    seed: c.seed,
  };
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<ModelOptions>;
}
