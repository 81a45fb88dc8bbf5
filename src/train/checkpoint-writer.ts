/**
 * The checkpoints a training run writes: the full one (for --resume) and, with --save-sparse, its
 * compact form beside it (`<name>.sparse.safetensors`, src/train/sparse-checkpoint.ts). Every
 * checkpoint carries the run's configuration and the class-folder names of its data.
 */
import type { Model } from '../models/model.js';
import type { Optimizer } from './optimizer.js';
import { saveCheckpoint, type CheckpointMeta } from './checkpoint.js';
import { saveSparseCheckpoint, sparsePathOf } from './sparse-checkpoint.js';
import { copyFileAtomic } from '../io/atomic.js';
import { stateDictAsync } from '../nn/state-dict.js';

export class CheckpointWriter {
  constructor(
    private readonly o: {
      config: unknown;
      classNames?: readonly string[];
      sparse: boolean;
      /** --target-sparsity: the controller's state at the time of each save (resume continues it). */
      targetSparsity?: () => unknown;
    },
  ) {}

  async save(path: string, model: Model, optimizer: Optimizer, meta: CheckpointMeta): Promise<void> {
    const { config, classNames } = this.o;
    // with --save-sparse both files come from one read-back of the model
    const stateDict = this.o.sparse ? await stateDictAsync(model) : undefined;
    await saveCheckpoint(path, { model, optimizer, meta, config, classNames, stateDict, targetSparsity: this.o.targetSparsity?.() });
    if (this.o.sparse) await saveSparseCheckpoint(sparsePathOf(path), { model, meta, config, classNames, stateDict });
  }

  /** model_best as a copy of last (and of its compact form). */
  async copy(from: string, to: string): Promise<void> {
    await copyFileAtomic(from, to);
    if (this.o.sparse) await copyFileAtomic(sparsePathOf(from), sparsePathOf(to));
  }
}
