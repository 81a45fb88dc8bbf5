import { existsSync } from 'node:fs';
import type { Model } from '../models/model.js';
import type { Optimizer } from './optimizer.js';
import type { HostTensor, StateDict } from '../io/host-tensor.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import { sniffCheckpointFile } from '../io/formats.js';
import { readTorchCheckpoint, extractStateDict } from '../io/pytorch/index.js';
import { stateDict, loadStateDict, toTorchLayout, fromTorchLayout, MODULE_PREFIX, stripModulePrefix } from '../nn/state-dict.js';
import { pruneRates, restorePruneRates } from '../sparsity/transfer.js';
import { UserError } from '../util/errors.js';

export const CHECKPOINT_FORMAT = 'str-train-checkpoint/1';
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
  stateDict: StateDict;
  optimizerState: Map<string, HostTensor>;
  source: string;
}

/**
 * Write a checkpoint as one safetensors file: the model in PyTorch names and layouts (the
 * `module.` prefix included), the optimizer's buffers as `optimizer.<param>.<buffer>` and the
 * rest as JSON metadata. Written to a temp file and renamed: an interrupted save leaves the
 * previous file intact.
 */
export async function saveCheckpoint(
  path: string,
  c: { model: Model; optimizer?: Optimizer; meta: CheckpointMeta; config?: unknown; targetSparsity?: unknown },
): Promise<void> {
  const tensors: StateDict = stateDict(c.model);
  if (c.optimizer) {
    const state = c.optimizer.stateTensors((t, p) => toTorchLayout(t, p.layout));
    for (const [k, v] of state) tensors.set(`${OPT_PREFIX}${MODULE_PREFIX}${k}`, v);
  }
  const metadata: Record<string, string> = {
    format: CHECKPOINT_FORMAT,
    meta: JSON.stringify(c.meta),
    prune_rates: JSON.stringify(pruneRates(c.model)),
  };
  if (c.config !== undefined) metadata.config = JSON.stringify(c.config);
  if (c.targetSparsity !== undefined) metadata.target_sparsity = JSON.stringify(c.targetSparsity);
  if (c.optimizer) metadata.optimizer = JSON.stringify({ type: c.optimizer.o.optimizer, steps: c.optimizer.steps, lr: c.optimizer.lr });
  await writeSafetensors(path, tensors, metadata);
}

const num = (v: unknown, d = 0) => (typeof v === 'number' && Number.isFinite(v) ? v : d);

/**
 * Read one of our safetensors checkpoints, or a reference `.pth`/`.state` (torch zip or legacy
 * pickle; read with the safe unpickler), into one shape.
 */
export async function readCheckpoint(path: string, flag = '--resume'): Promise<CheckpointContent> {
  if (!existsSync(path)) throw new UserError(`${flag} ${path}: no such file`);
  if (sniffCheckpointFile(path) === 'safetensors') {
    const { tensors, metadata } = await readSafetensors(path);
    if (metadata?.format !== CHECKPOINT_FORMAT) {
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
