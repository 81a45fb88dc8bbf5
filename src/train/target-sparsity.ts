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
export function probeSparsity(layers: ReadonlyArray<STRConv>): SparsityProbe {
  if (layers.length === 0) return { sparsity: 0, gain: 0 };
  const counts = tf.tidy(() =>
    tf.stack(
      layers.flatMap((c) => [
        c.zeroCount(),
        zerosIfScaled(c, 1 - SENSITIVITY_EPS),
      ]),
    ),
  );
  const v = counts.dataSync();
  counts.dispose();
  let zeros = 0;
  let shifted = 0;
  let numel = 0;
  layers.forEach((c, i) => {
    zeros += v[2 * i];
    shifted += v[2 * i + 1];
    numel += c.numel;
  });
  const sparsity = (100 * zeros) / numel;
  return { sparsity, gain: ((100 * shifted) / numel - sparsity) / SENSITIVITY_EPS };
}

/** Total sparsity (%) if every s were scaled by k (counted on the device, one scalar per layer read). */
function sparsityIfScaled(layers: ReadonlyArray<STRConv>, k: number): number {
  const counts = tf.tidy(() =>
    tf.stack(layers.map((c) => zerosIfScaled(c, k))),
  );
  const v = counts.dataSync();
  counts.dispose();
  let zeros = 0;
  let numel = 0;
  layers.forEach((c, i) => {
    zeros += v[i];
    numel += c.numel;
  });
  return (100 * zeros) / numel;
}

/**
 * The landing at the last step: every s_l ← k·s_l with the one k that puts the total sparsity on
 * the target (what one decay step of the right size does), so the run ends at P while each
 * layer keeps its learnt share. Returns k.
 */
export function land(layers: ReadonlyArray<STRConv>, target: number): number {
  const k = landingFactor(target, (f) => sparsityIfScaled(layers, f));
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
export function targetSparsityPhase(o: TargetSparsityOptions): TargetSparsityPhase {
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
    const p = probeSparsity(layers);
    state = update(initialState(opts, step0, p.sparsity), opts, { step: step0, ...p, lr: o.optimizer.lr });
    o.log(
      `=> target sparsity ${opts.target} % (ramp over the first ${Math.round(opts.ramp * 100)} % of ${opts.totalSteps} steps, control every ${every} steps): ` +
        `the controller sets st_decay (now ${state.decay.toPrecision(4)}${c.st_decay !== undefined ? `; --st-decay ${c.st_decay} is ignored` : ''}); ` +
        `weight decay ${c.weight_decay} stays on the weights; thresholds start at sInit ${c.sInit_value} (sparsity ${p.sparsity.toFixed(2)} %)` +
        (saved ? '; the checkpoint had another target, ramp or length, so the ramp restarts here' : ''),
    );
  }
  o.optimizer.decay.threshold = state.decay;

  const control = (step: number) => {
    if (step === opts.totalSteps) {
      const before = probeSparsity(layers).sparsity;
      const k = land(layers, opts.target);
      const p = probeSparsity(layers);
      state = { ...update(state, opts, { step, ...p, lr: o.optimizer.lr }), landing: k };
      o.log(`=> target sparsity: landed at ${p.sparsity.toFixed(2)} % (from ${before.toFixed(2)} %: every threshold parameter s scaled by ${k.toFixed(4)})`);
    } else if ((step - state.start_step) % every === 0) {
      state = update(state, opts, { step, ...probeSparsity(layers), lr: o.optimizer.lr });
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
        control(step);
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
