import { ConvBase, type ConvOptions, type ConvTypeName } from './base.js';
import { DenseConv } from './dense.js';
import { STRConv } from './str.js';
import { DNWConv } from './dnw.js';
import { GMPConv } from './gmp.js';
import { TopKConv } from './masked.js';

export { ConvBase, DenseConv, STRConv, DNWConv, GMPConv, TopKConv };
export type { ConvOptions, ConvTypeName, LayerSparsity } from './base.js';

export const CONV_TYPES: readonly ConvTypeName[] = ['DenseConv', 'STRConv', 'DNWConv', 'GMPConv'];

export interface SparseOptions {
  /** STR: initial threshold parameter. */
  sInitValue?: number;
  /** DNW/GMP: target prune rate. */
  pruneRate?: number;
}

/** Instantiate a conv class by its reference name (utils/conv_type.py). */
export function createConv(type: ConvTypeName, o: ConvOptions, s: SparseOptions = {}): ConvBase {
  switch (type) {
    case 'DenseConv':
      return new DenseConv(o);
    case 'STRConv':
      return new STRConv({ ...o, sInitValue: s.sInitValue ?? -3200 });
    case 'DNWConv':
    case 'GMPConv': {
      const c = type === 'DNWConv' ? new DNWConv(o) : new GMPConv(o);
      c.setPruneRate(s.pruneRate ?? 0);
      return c;
    }
  }
}
