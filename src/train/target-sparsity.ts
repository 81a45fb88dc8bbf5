/**
 * The --target-sparsity phase of a training run: measures the model every few steps, runs the
 * controller (src/sparsity/target-controller.ts) and sets the thresholds' decay in the optimizer.
 * runTraining calls it unconditionally; without --target-sparsity it is a no-op.
 */
import * as tf from '../tf.js';
import type { RunConfig } from '../config/schema.js';
import type { Model } from '../models/model.js';
import { STRConv, softThresholdWeight } from '../nn/conv/str.js';
import { reportedLayers } from '../sparsity/stats.js';
import {
  SENSITIVITY_EPS,
  controlInterval,
  landingFactor,
  initialState,
  parseState,
  update,
  type TargetControllerOptions,
  type TargetControllerState,
} from '../sparsity/target-controller.js';
import type { LoopContext, ScalarSink } from './loop.js';
import type { Optimizer } from './optimizer.js';

/**
 * Zeros of the layer's effective weight if its s were k·s, counted as zeroCount counts them
 * (through the same soft-threshold kernel: a broadcast |w| ≤ σ(s) comparison is ~25× slower on wasm).
 */
function zerosIfScaled(c: STRConv, k: number): tf.Scalar {
  return tf.tidy(() => tf.sum(tf.cast(tf.equal(softThresholdWeight(c.weight, tf.mul(c.sparseThreshold, k)), 0), 'int32')) as tf.Scalar);
}

export interface SparsityProbe {
  /** Total sparsity (%) of the reported layers: the number the epoch line shows. */
  sparsity: number;
  /** ∂S/∂ρ: % more zeros per unit relative shrink of every s (finite difference over SENSITIVITY_EPS). */
  gain: number;
}

/**
 * Total sparsity and its sensitivity to the decay, counted on the device and read back as one
 * small vector (two counts per layer), not the weights. Zeros are counted exactly as the epoch
 * statistics count them (effective weight == 0).
 */
export async function probeSparsity(layers: ReadonlyArray<STRConv>): Promise<SparsityProbe> {
  if (layers.length === 0) return { sparsity: 0, gain: 0 };
  const [sparsity, shifted] = await sparsityIfScaled(layers, [1, 1 - SENSITIVITY_EPS]);
  return { sparsity, gain: (shifted - sparsity) / SENSITIVITY_EPS };
}

/**
 * The total sparsity (%) of the layers with every s scaled by each factor in `ks` (1: as they
 * are), counted on the device and read back in one asynchronous read (a GPU backend has no
 * synchronous one).
 */
async function sparsityIfScaled(layers: ReadonlyArray<STRConv>, ks: readonly number[]): Promise<number[]> {
  const counts = tf.tidy(() => tf.stack(layers.flatMap((c) => ks.map((k) => (k === 1 ? c.zeroCount() : zerosIfScaled(c, k))))));
  const v = await counts.data();
  counts.dispose();
  let numel = 0;
  for (const c of layers) numel += c.numel;
  return ks.map((_, j) => {
    let zeros = 0;
    for (let i = 0; i < layers.length; i++) zeros += v[i * ks.length + j];
    return (100 * zeros) / numel;
  });
}

export async function land(layers: ReadonlyArray<STRConv>, target: number): Promise<number> {
  const k = await landingFactor(target, async (f) => (await sparsityIfScaled(layers, [f]))[0]);
  for (const c of layers) {
    const t = tf.mul(c.sparseThreshold, k);
    c.sparseThreshold.assign(t);
    t.dispose();
  }
  return k;
}

export interface TargetSparsityPhase {
  /** Chains the controller after the loop's other afterStep hooks. */
  install(ctx: LoopContext): void;
  /** The controller state for checkpoints (undefined without --target-sparsity). */
  state(): TargetControllerState | undefined;
  /** Epoch-line suffix: target and the decay in force. */
  epochText(): string;
  /** Per-epoch TensorBoard scalars `sparsity/target` and `sparsity/st_decay`. */
  logEpoch(writer: ScalarSink | undefined, epoch: number): void;
}

const OFF: TargetSparsityPhase = { install() {}, state: () => undefined, epochText: () => '', logEpoch() {} };

export interface TargetSparsityOptions {
  config: RunConfig;
  model: Model;
  optimizer: Optimizer;
  stepsPerEpoch: number;
  /** The epoch the run starts at (its steps are (epochs − startEpoch) × stepsPerEpoch). */
  startEpoch: number;
  batchSize: number;
  /** Controller state of the checkpoint being resumed, if any. */
  saved?: unknown;
  log: (line: string) => void;
}

/**
 * The phase for a run. Every rank runs it: the parameters are identical on all workers, so each
 * measures the same sparsity and sets the same decay without communicating.
 */
export async function targetSparsityPhase(o: TargetSparsityOptions): Promise<TargetSparsityPhase> {
  const c = o.config;
  if (c.target_sparsity === undefined) return OFF;
  const layers = reportedLayers(o.model).flatMap(([, l]) => (l instanceof STRConv ? [l] : []));
  const opts: TargetControllerOptions = {
    target: c.target_sparsity,
    totalSteps: o.optimizer.steps + Math.max(0, c.epochs - o.startEpoch) * o.stepsPerEpoch,
    ramp: c.target_sparsity_ramp,
    momentum: c.momentum,
  };
  const every = controlInterval(opts.totalSteps);
  const saved = parseState(o.saved);
  // the same run continued: same target, ramp and last step (another --epochs restarts the ramp)
  const resumable = saved && saved.target === opts.target && saved.ramp === opts.ramp && saved.total_steps === opts.totalSteps;
  const step0 = o.optimizer.steps;
  let state: TargetControllerState;
  if (resumable) {
    state = saved;
    o.log(`=> target sparsity ${opts.target} %: controller resumed at step ${step0} (st_decay ${state.decay.toPrecision(4)})`);
  } else {
    const p = await probeSparsity(layers);
    state = update(initialState(opts, step0, p.sparsity), opts, { step: step0, ...p, lr: o.optimizer.lr });
    o.log(
      `=> target sparsity ${opts.target} % (ramp over the first ${Math.round(opts.ramp * 100)} % of ${opts.totalSteps} steps, control every ${every} steps): ` +
        `the controller sets st_decay (now ${state.decay.toPrecision(4)}${c.st_decay !== undefined ? `; --st-decay ${c.st_decay} is ignored` : ''}); ` +
        `weight decay ${c.weight_decay} stays on the weights; thresholds start at sInit ${c.sInit_value} (sparsity ${p.sparsity.toFixed(2)} %)` +
        (saved ? '; the checkpoint had another target, ramp or length, so the ramp restarts here' : ''),
    );
  }
  o.optimizer.decay.threshold = state.decay;

  const control = async (step: number) => {
    if (step === opts.totalSteps) {
      const before = (await probeSparsity(layers)).sparsity;
      const k = await land(layers, opts.target);
      const p = await probeSparsity(layers);
      state = { ...update(state, opts, { step, ...p, lr: o.optimizer.lr }), landing: k };
      o.log(`=> target sparsity: landed at ${p.sparsity.toFixed(2)} % (from ${before.toFixed(2)} %: every threshold parameter s scaled by ${k.toFixed(4)})`);
    } else if ((step - state.start_step) % every === 0) {
      state = update(state, opts, { step, ...(await probeSparsity(layers)), lr: o.optimizer.lr });
    } else return;
    o.optimizer.decay.threshold = state.decay;
  };
  let writer: ScalarSink | undefined;
  return {
    install(ctx) {
      const previous = ctx.afterStep;
      writer = ctx.writer;
      ctx.afterStep = async (step) => {
        await previous?.(step);
        const before = state.last_step;
        await control(step);
        if (writer && state.last_step !== before) {
          // the x axis of the train/ scalars: images seen
          const x = step * o.batchSize;
          writer.addScalar('target_sparsity/target', state.last_target, x);
          writer.addScalar('target_sparsity/sparsity', state.last_sparsity, x);
          writer.addScalar('target_sparsity/st_decay', state.decay, x);
          writer.addScalar('target_sparsity/rate', state.rate, x);
          writer.addScalar('target_sparsity/gain', state.gain, x);
        }
      };
    },
    state: () => state,
    epochText: () => `  target ${state.last_target.toFixed(2)} % of ${opts.target} %  st_decay ${state.decay.toPrecision(3)}`,
    logEpoch(w, epoch) {
      w?.addScalar('sparsity/target', state.last_target, epoch);
      w?.addScalar('sparsity/st_decay', state.decay, epoch);
    },
  };
}
