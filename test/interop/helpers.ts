/** Shared by the interop tests: small models with non-trivial state, fixed inputs, the PyTorch side. */
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import seedrandom from 'seedrandom';
import * as tf from '../../src/tf.js';
import { loadConfig } from '../../src/config/load.js';
import type { RunConfig } from '../../src/config/schema.js';
import { createModel } from '../../src/models/registry.js';
import type { Model } from '../../src/models/model.js';
import type { ModelOptions } from '../../src/models/builder.js';
import { stateDict, loadStateDict } from '../../src/nn/state-dict.js';
import type { HostTensor, StateDict } from '../../src/io/host-tensor.js';
import { writeTorchCheckpoint } from '../../src/io/pytorch/index.js';
import type { CheckpointMeta } from '../../src/train/checkpoint.js';
import { findTorchPython, REPO_ROOT, tmpDir, childNodeArgs } from '../io/helpers.js';

export { tmpDir, fixture, childNodeArgs, findTorchPython, REPO_ROOT } from '../io/helpers.js';

export const INTEROP_FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'interop');
export const REFERENCE_MODELS_PY = path.join(INTEROP_FIXTURES, 'reference_models.py');
export const BUDGETS = path.join(REPO_ROOT, 'budgets');

/** Runs `str-train ARGS` in a child process: src/ via tsx when the tests run as .ts, else the compiled CLI beside them. */
export function runCli(args: string[]): SpawnSyncReturns<string> {
  const entry = fileURLToPath(new URL(`../../src/cli/main${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));
  return spawnSync(process.execPath, [...childNodeArgs(), entry, ...args], { encoding: 'utf8', cwd: REPO_ROOT, timeout: 120_000 });
}

/** false when python3-torch is importable, else the reason to skip (CI may not have it). */
export function torchSkipReason(): string | false {
  return findTorchPython() ? false : 'python3-torch is not installed (apt-get install python3-torch); the PyTorch-side checks are skipped';
}

export interface ReferenceSpec {
  arch: string;
  conv_type: 'STRConv' | 'DenseConv';
  width: number;
  num_classes: number;
  stem: 'imagenet' | 'small';
  checkpoint: string;
  format: 'pth' | 'safetensors';
  input: string;
}

export interface ReferenceResult {
  logits: number[][];
  keys: number;
  epoch?: number;
  epoch_type?: string;
  arch?: string;
  top_keys?: string[];
  state_dict_type?: string;
}

/** Runs test/fixtures/interop/reference_models.py (one process for all specs). */
export function runReference(args: string[], input?: unknown): unknown {
  const py = findTorchPython();
  assert.ok(py, 'python3-torch needed');
  const extra: string[] = [];
  let specFile: string | undefined;
  if (input !== undefined) {
    specFile = path.join(tmpDir('ref-spec'), 'spec.json');
    fs.writeFileSync(specFile, JSON.stringify(input));
    extra.push(specFile);
  }
  try {
    const r = spawnSync(py, [REFERENCE_MODELS_PY, ...args, ...extra], { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20 });
    assert.equal(r.status, 0, `reference_models.py ${args.join(' ')} failed:\n${r.stderr}`);
    return JSON.parse(r.stdout);
  } finally {
    if (specFile) fs.rmSync(path.dirname(specFile), { recursive: true, force: true });
  }
}

export function referenceLogits(specs: ReferenceSpec[]): ReferenceResult[] {
  return runReference(['run'], specs) as ReferenceResult[];
}

/** A run configuration as the CLI would build it. */
export function configOf(argv: string[]): RunConfig {
  return loadConfig(argv).config;
}

export interface SmallModel {
  model: Model;
  config: RunConfig;
}

/** A model from CLI-style flags (numClasses from --num-classes). */
export function buildModel(argv: string[]): SmallModel {
  const config = configOf(argv);
  const options: Partial<ModelOptions> = {
    numClasses: config.num_classes ?? 1000,
    convType: config.conv_type,
    widthMult: config.width_mult,
    stem: config.stem,
    sInitValue: config.sInit_value,
    pruneRate: config.prune_rate,
    firstLayerDense: config.first_layer_dense,
    lastLayerDense: config.last_layer_dense,
    seed: config.seed,
  };
  return { model: createModel(config.arch, options), config };
}

/**
 * Gives every BN non-trivial affine parameters and running statistics, every STR layer its own
 * threshold τ in about [0.005, 0.06] and every counter a value, deterministically from `seed`.
 */
export function randomizeState(model: Model, seed: string): StateDict {
  const rng = seedrandom(seed);
  const u = (a: number, b: number) => a + (b - a) * rng();
  const sd = stateDict(model);
  for (const [k, v] of sd) {
    const fill = (f: () => number) => {
      const d = new Float32Array(v.data.length);
      for (let i = 0; i < d.length; i++) d[i] = f();
      sd.set(k, { dtype: 'float32', shape: v.shape, data: d });
    };
    if (k.endsWith('.sparseThreshold')) fill(() => u(-5.3, -2.75));
    else if (k.endsWith('.running_mean')) fill(() => u(-0.2, 0.2));
    else if (k.endsWith('.running_var')) fill(() => u(0.5, 1.5));
    else if (k.endsWith('.num_batches_tracked')) sd.set(k, { dtype: 'int64', shape: [], data: BigInt64Array.of(BigInt(Math.floor(u(1, 1000)))) });
    else if (v.shape.length === 1 && k.endsWith('.weight')) fill(() => u(0.5, 1.5));
    else if (v.shape.length === 1 && k.endsWith('.bias')) fill(() => u(-0.2, 0.2));
  }
  loadStateDict(model, sd);
  return sd;
}

/** A fixed NCHW input in [-1, 1]. */
export function fixedInput(n: number, size: number, seed = 'input'): HostTensor {
  const rng = seedrandom(seed);
  const data = new Float32Array(n * 3 * size * size);
  for (let i = 0; i < data.length; i++) data[i] = 2 * rng() - 1;
  return { dtype: 'float32', shape: [n, 3, size, size], data };
}

/** The input as a .pth `{x: tensor}` for the PyTorch side. */
export async function writeInput(file: string, x: HostTensor): Promise<void> {
  await writeTorchCheckpoint(file, { x });
}

/** Eval-mode logits of our model for an NCHW host input. */
export function logitsOf(model: Model, x: HostTensor): Float32Array {
  model.eval();
  const out = tf.tidy(() => {
    const nhwc = tf.transpose(tf.tensor(x.data as Float32Array, x.shape), [0, 2, 3, 1]);
    return model.forward(nhwc);
  });
  const v = Float32Array.from(out.dataSync());
  out.dispose();
  return v;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'length mismatch');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export const META: CheckpointMeta = {
  epoch: 7,
  arch: '',
  best_acc1: 51.5,
  best_acc5: 80.25,
  best_train_acc1: 49,
  best_train_acc5: 77,
  curr_acc1: 50,
  curr_acc5: 79.5,
};

export function zerosOf(t: HostTensor): number {
  let z = 0;
  for (let i = 0; i < t.data.length; i++) if (t.data[i] === 0) z++;
  return z;
}
