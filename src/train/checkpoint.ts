import { existsSync } from 'node:fs';
import type { Model } from '../models/model.js';
import type { Optimizer } from './optimizer.js';
import type { HostTensor, StateDict } from '../io/host-tensor.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import { sniffCheckpointFile } from '../io/formats.js';
import { readTorchCheckpoint, extractStateDict } from '../io/pytorch/index.js';
import { stateDictAsync, loadStateDict, toTorchLayoutAsync, fromTorchLayout, MODULE_PREFIX, stripModulePrefix } from '../nn/state-dict.js';
import { pruneRates, restorePruneRates } from '../sparsity/transfer.js';
import { decodeSparse, parseSparseLayout, SPARSE_LAYOUT_KEY } from '../io/sparse-tensors.js';
import { UserError } from '../util/errors.js';

export const CHECKPOINT_FORMAT = 'str-train-checkpoint/1';
/** A compact checkpoint (src/train/sparse-checkpoint.ts): non-zeros + masks, no optimizer state. */
export const SPARSE_CHECKPOINT_FORMAT = 'str-train-sparse/1';
const OPT_PREFIX = 'optimizer.';

/** Scalars saved with every checkpoint (the reference's dict keys, STR-SPEC §12.3). */
export interface CheckpointMeta {
  /** Next epoch to run (the reference stores e+1 after epoch e, 0 for `initial`). */
  epoch: number;
  arch: string;
  best_acc1: number;
  best_acc5: number;
  best_train_acc1: number;
  best_train_acc5: number;
  /** null for `initial` (the reference writes the string "Not evaluated"). */
  curr_acc1: number | null;
  curr_acc5: number | null;
}

export interface CheckpointContent {
  meta: CheckpointMeta;
  /** The effective configuration of the run that wrote it. */
  config?: Record<string, unknown>;
  optimizer?: { type: string; steps: number; lr: number };
  /** DNW/GMP per-layer rates (GMP's current rate included: quirk 16). */
  pruneRates?: Record<string, { prune_rate: number; curr_prune_rate?: number }>;
  /** --target-sparsity: the controller's state (metadata key `target_sparsity`), as saved. */
  targetSparsity?: unknown;
  /** Class-folder names of the data the model was trained on (index = label); absent in older files. */
  classNames?: string[];
  stateDict: StateDict;
  optimizerState: Map<string, HostTensor>;
  source: string;
}

/** What both checkpoint forms (full and compact) are written from. */
export interface CheckpointSource {
  model: Model;
  meta: CheckpointMeta;
  config?: unknown;
  classNames?: readonly string[];
  /** The model's state dict when the caller has already read it back (saved as is). */
  stateDict?: StateDict;
}

/** The metadata both checkpoint forms carry: format, epoch/accuracies, GMP rates, config, class names. */
export function checkpointMetadata(format: string, c: CheckpointSource): Record<string, string> {
  const metadata: Record<string, string> = {
    format,
    meta: JSON.stringify(c.meta),
    prune_rates: JSON.stringify(pruneRates(c.model)),
  };
  if (c.config !== undefined) metadata.config = JSON.stringify(c.config);
  if (c.classNames) metadata.class_names = JSON.stringify(c.classNames);
  return metadata;
}

/**
 * Write a checkpoint as one safetensors file: the model in PyTorch names and layouts (the
 * `module.` prefix included), the optimizer's buffers as `optimizer.<param>.<buffer>` and the
 * rest as JSON metadata. Written to a temp file and renamed: an interrupted save leaves the
 * previous file intact.
 */
export async function saveCheckpoint(path: string, c: CheckpointSource & { optimizer?: Optimizer; targetSparsity?: unknown }): Promise<void> {
  // read back asynchronously: a GPU backend (webgpu in Node) has no synchronous read
  const tensors: StateDict = new Map(c.stateDict ?? (await stateDictAsync(c.model)));
  if (c.optimizer) {
    const reads: Array<Promise<unknown>> = [];
    const state = c.optimizer.stateTensors((t, p) => {
      const h: HostTensor = { dtype: 'float32', shape: [], data: new Float32Array(0) };
      reads.push(toTorchLayoutAsync(t, p.layout).then((r) => Object.assign(h, r)));
      return h;
    });
    await Promise.all(reads);
    for (const [k, v] of state) tensors.set(`${OPT_PREFIX}${MODULE_PREFIX}${k}`, v);
  }
  const metadata = checkpointMetadata(CHECKPOINT_FORMAT, c);
  if (c.targetSparsity !== undefined) metadata.target_sparsity = JSON.stringify(c.targetSparsity);
  if (c.optimizer) metadata.optimizer = JSON.stringify({ type: c.optimizer.o.optimizer, steps: c.optimizer.steps, lr: c.optimizer.lr });
  await writeSafetensors(path, tensors, metadata);
}

const num = (v: unknown, d = 0) => (typeof v === 'number' && Number.isFinite(v) ? v : d);

/**
 * Read one of our safetensors checkpoints (full or compact), or a reference `.pth`/`.state` (torch
 * zip or legacy pickle; read with the safe unpickler), into one shape. `forResume`: a compact
 * checkpoint cannot continue training (src/train/sparse-checkpoint.ts) and is refused.
 */
export async function readCheckpoint(path: string, flag = '--resume', o: { forResume?: boolean } = {}): Promise<CheckpointContent> {
  if (!existsSync(path)) throw new UserError(`${flag} ${path}: no such file`);
  if (sniffCheckpointFile(path) === 'safetensors') {
    const { tensors: stored, metadata } = await readSafetensors(path);
    let tensors = stored;
    if (metadata?.format === SPARSE_CHECKPOINT_FORMAT) {
      if (o.forResume) {
        throw new UserError(`${flag} ${path}: a compact checkpoint holds the weights only (no optimizer state, pruned weights dropped); resume from the full checkpoint beside it, or use it with --pretrained`);
      }
      tensors = decodeSparse(stored, parseSparseLayout(metadata[SPARSE_LAYOUT_KEY], path), path);
    } else if (metadata?.format !== CHECKPOINT_FORMAT) {
      // a plain safetensors state dict (e.g. exported): weights only
      return { meta: emptyMeta(), stateDict: tensors, optimizerState: new Map(), source: path };
    }
    const sd: StateDict = new Map();
    const opt = new Map<string, HostTensor>();
    for (const [k, v] of tensors) {
      if (k.startsWith(OPT_PREFIX)) opt.set(stripModulePrefix(k.slice(OPT_PREFIX.length)), v);
      else sd.set(k, v);
    }
    return {
      meta: { ...emptyMeta(), ...(JSON.parse(metadata.meta ?? '{}') as Partial<CheckpointMeta>) },
      config: metadata.config ? JSON.parse(metadata.config) : undefined,
      optimizer: metadata.optimizer ? JSON.parse(metadata.optimizer) : undefined,
      pruneRates: metadata.prune_rates ? JSON.parse(metadata.prune_rates) : undefined,
      targetSparsity: metadata.target_sparsity ? JSON.parse(metadata.target_sparsity) : undefined,
      classNames: classNamesOf(metadata, path),
      stateDict: sd,
      optimizerState: opt,
      source: path,
    };
  }
  const { stateDict: sd, meta } = extractStateDict(await readTorchCheckpoint(path), path);
  return {
    meta: {
      epoch: num(meta.epoch),
      arch: typeof meta.arch === 'string' ? meta.arch : '',
      best_acc1: num(meta.best_acc1),
      best_acc5: num(meta.best_acc5),
      best_train_acc1: num(meta.best_train_acc1),
      best_train_acc5: num(meta.best_train_acc5),
      curr_acc1: typeof meta.curr_acc1 === 'number' ? meta.curr_acc1 : null,
      curr_acc5: typeof meta.curr_acc5 === 'number' ? meta.curr_acc5 : null,
    },
    stateDict: sd,
    optimizerState: new Map(),
    source: path,
  };
}

/** The `class_names` metadata entry (a JSON array of strings), checked. */
export function classNamesOf(metadata: Record<string, string>, path: string): string[] | undefined {
  if (metadata.class_names === undefined) return undefined;
  let names: unknown;
  try {
    names = JSON.parse(metadata.class_names);
  } catch {
    names = undefined;
  }
  if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) {
    throw new UserError(`${path}: metadata class_names is not a JSON array of strings`);
  }
  return names as string[];
}

function emptyMeta(): CheckpointMeta {
  return { epoch: 0, arch: '', best_acc1: 0, best_acc5: 0, best_train_acc1: 0, best_train_acc5: 0, curr_acc1: null, curr_acc5: null };
}

/**
 * --resume: weights (strict), optimizer buffers, DNW/GMP rates. A reference `.pth` restores
 * weights and counters but not its momentum buffers (keyed by Python object ids).
 */
export function restoreCheckpoint(c: CheckpointContent, model: Model, optimizer?: Optimizer): void {
  loadStateDict(model, c.stateDict, { source: c.source });
  if (c.pruneRates) restorePruneRates(model, c.pruneRates);
  if (optimizer && c.optimizerState.size) {
    optimizer.loadStateTensors(c.optimizerState, c.optimizer?.steps ?? 0, (h, p) => fromTorchLayout(h, p.layout));
  }
}
