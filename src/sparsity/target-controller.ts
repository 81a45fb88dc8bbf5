/**
 * --target-sparsity: a feedback controller that steers STR's total sparsity to a chosen value by
 * adjusting one number, the weight decay λ_s of the threshold parameters s (the `st_decay` group).
 * Pure logic (no tensors): the training phase (src/train/target-sparsity.ts) measures the model
 * and applies the decay it returns.
 *
 * Why the decay: in STR the sparsity is the outcome of the thresholds τ_l = sigmoid(s_l), and the
 * decay is the one global force on them (∂/∂s of λ_s·s²/2 pulls every s towards 0, i.e. raises
 * every τ, as the paper's fixed λ does). Each layer's s still follows its own loss gradient, so
 * the per-layer distribution stays learnt; the controller only sets how hard all of them are
 * pulled, and lets λ_s go negative (thresholds shrink) when the sparsity overshoots.
 *
 * The law, every `every` steps, from the measured total sparsity S (%) and the sensitivity G:
 *  - target: a GMP-style cubic ramp from the starting sparsity to P over the first `ramp` part of
 *    the run, then P (scheduledSparsity);
 *  - wanted rate r = (target(step + H) − S) / H (%/step: reach the schedule H steps ahead);
 *  - observed rate v = the change of S since the previous update, per step: it includes what the
 *    sparsity does by itself (the weights' own decay pushes small weights under the thresholds,
 *    the loss pulls thresholds down, harder as they rise);
 *  - G = ∂S/∂ρ, % per unit relative shrink of every s, measured on the model by counting the
 *    zeros if every s were s·(1 − ε): it normalises the gain across sparsity levels, widths and
 *    models;
 *  - ρ, the per-step relative shrink of s wanted, moves by β·(r − v)/G (velocity-form PI: r holds
 *    the proportional action on the error, the accumulation of ρ the integral one, so a plant
 *    that answers more weakly than G predicts only makes ρ grow until the rate is met), clamped
 *    to ±RHO_MAX; β is 0.5, less while the interval is shorter than momentum's time constant;
 *  - λ_s = ρ·(1 − μ)/lr: SGD moves s by −lr·λ_s·s/(1 − μ) per step once the momentum buffer has
 *    caught up, so dividing by the current lr keeps the authority constant as a cosine schedule
 *    anneals (what the sparsity does by itself, caused by the same lr, shrinks with it).
 * At the last step the landing (landingFactor) rescales every s by one common factor so that the
 * run ends on P.
 */

export interface TargetControllerOptions {
  /** Target total sparsity P, percent, in (0, 100). */
  target: number;
  /** The optimizer step count at which the run ends (its last step). */
  totalSteps: number;
  /** Fraction of the run over which the target ramps up (then holds at P). */
  ramp: number;
  /** SGD momentum μ (the decay's effect builds up over 1/(1 − μ) steps). */
  momentum: number;
}

/** Everything the controller remembers; saved in checkpoints, so a resumed run continues exactly. */
export interface TargetControllerState {
  target: number;
  total_steps: number;
  ramp: number;
  /** Step and sparsity where the ramp starts (the run's first step). */
  start_step: number;
  start_sparsity: number;
  /** Latest control update: step, measured sparsity, scheduled target. */
  last_step: number;
  last_sparsity: number;
  last_target: number;
  /** Observed rate of the sparsity over the latest interval, %/step. */
  rate: number;
  /** Wanted relative shrink ρ of every s per step. */
  rho: number;
  /** Sensitivity G at the latest update. */
  gain: number;
  /** Threshold decay λ_s in force. */
  decay: number;
  /** The landing factor applied to every s at the last step (0 until then). */
  landing: number;
}

/** Relative shrink of s used to measure the sensitivity G. */
export const SENSITIVITY_EPS = 0.02;
/** Largest relative shrink of s per step the controller asks for. */
export const RHO_MAX = 0.05;
/** Below this G (% per unit shrink) the sensitivity is treated as this (no division by ~0). */
export const MIN_GAIN = 1e-3;

/** Steps between control updates: about 200 updates per run, at least every step, at most every 100. */
export function controlInterval(totalSteps: number): number {
  return Math.min(100, Math.max(1, Math.round(totalSteps / 200)));
}

/** Look-ahead H of the wanted rate: 5 % of the run, at least 20 steps and 4 control intervals. */
export function horizon(totalSteps: number): number {
  return Math.max(20, 4 * controlInterval(totalSteps), Math.round(totalSteps / 20));
}

/** Last step of the ramp. */
export function rampEnd(s: Pick<TargetControllerState, 'start_step' | 'total_steps' | 'ramp'>): number {
  return s.start_step + Math.max(1, Math.round((s.total_steps - s.start_step) * s.ramp));
}

/**
 * The scheduled sparsity at `step`: S_P + (S_0 − S_P)·(1 − f)³ with f the fraction of the ramp
 * done (Zhu & Gupta's GMP schedule), then S_P. Starts at the measured sparsity, so a run that
 * starts sparser than P ramps down.
 */
export function scheduledSparsity(step: number, s: Pick<TargetControllerState, 'start_step' | 'start_sparsity' | 'total_steps' | 'ramp' | 'target'>): number {
  const end = rampEnd(s);
  if (step >= end) return s.target;
  const f = Math.max(0, (step - s.start_step) / (end - s.start_step));
  return s.target + (s.start_sparsity - s.target) * Math.pow(1 - f, 3);
}

/** λ_s for a wanted relative shrink ρ at learning rate lr (see the module comment). */
export function decayForShrink(rho: number, lr: number, momentum: number, previous: number): number {
  if (!(lr > 0)) return previous; // lr 0: nothing moves, keep what was in force
  return (rho * (1 - momentum)) / lr;
}

/** A fresh controller at the run's first step: the first update() comes immediately. */
export function initialState(o: TargetControllerOptions, step: number, sparsity: number): TargetControllerState {
  return {
    target: o.target,
    total_steps: o.totalSteps,
    ramp: o.ramp,
    start_step: step,
    start_sparsity: sparsity,
    last_step: step,
    last_sparsity: sparsity,
    last_target: sparsity,
    rate: 0,
    rho: 0,
    gain: 0,
    decay: 0,
    landing: 0,
  };
}

/**
 * How much of the rate error one update corrects: half, scaled down while the interval is shorter
 * than the momentum buffer's time constant 1/(1 − μ) (a change of ρ shows fully only after it).
 */
export function correctionGain(every: number, momentum: number): number {
  return 0.5 * Math.min(1, every * (1 - momentum));
}

/**
 * One control update at `step` from the measured sparsity and sensitivity: returns the new state
 * (its `decay` is the λ_s to apply until the next update). Deterministic in its inputs.
 * Velocity form: ρ moves by β·(wanted rate − observed rate)/G, so a plant that answers more
 * weakly than G predicts (the loss pulls thresholds back harder as they rise) only makes ρ keep
 * growing until the rate is met; the wanted rate holds the proportional action on the error.
 */
export function update(
  prev: TargetControllerState,
  o: TargetControllerOptions,
  m: { step: number; sparsity: number; gain: number; lr: number },
): TargetControllerState {
  const steps = m.step - prev.last_step;
  const gain = Math.max(m.gain, MIN_GAIN);
  const h = horizon(prev.total_steps);
  let rho: number;
  let rate = prev.rate;
  if (steps > 0) {
    const observed = (m.sparsity - prev.last_sparsity) / steps;
    const wanted = (scheduledSparsity(m.step + h, prev) - m.sparsity) / h;
    rate = observed;
    rho = prev.rho + (correctionGain(steps, o.momentum) * (wanted - observed)) / gain;
  } else {
    rho = (scheduledSparsity(m.step + h, prev) - m.sparsity) / h / gain;
  }
  rho = Math.max(-RHO_MAX, Math.min(RHO_MAX, rho));
  return {
    ...prev,
    last_step: m.step,
    last_sparsity: m.sparsity,
    last_target: scheduledSparsity(m.step, prev),
    rate,
    rho,
    gain,
    decay: decayForShrink(rho, m.lr, o.momentum, prev.decay),
  };
}

/**
 * The landing: the factor k of the common rescaling s_l ← k·s_l of every threshold parameter (the
 * transformation a decay step applies) that brings the total sparsity closest to the target.
 * `sparsityAt(k)` must decrease as k grows (every s < 0: a smaller |s| is a larger threshold);
 * bisection over [0, kMax] to `iterations` halvings.
 */
export async function landingFactor(target: number, sparsityAt: (k: number) => number | Promise<number>, kMax = 4, iterations = 30): Promise<number> {
  let lo = 0;
  let hi = kMax;
  for (let i = 0; i < iterations; i++) {
    const mid = (lo + hi) / 2;
    if ((await sparsityAt(mid)) > target) lo = mid;
    else hi = mid;
  }
  return Math.abs((await sparsityAt(lo)) - target) <= Math.abs((await sparsityAt(hi)) - target) ? lo : hi;
}

const STATE_KEYS: ReadonlyArray<keyof TargetControllerState> = [
  'target', 'total_steps', 'ramp', 'start_step', 'start_sparsity', 'last_step', 'last_sparsity',
  'last_target', 'rate', 'rho', 'gain', 'decay', 'landing',
];

/** A state read back from a checkpoint, or undefined when it is missing or malformed. */
export function parseState(v: unknown): TargetControllerState | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  for (const k of STATE_KEYS) if (typeof o[k] !== 'number' || !Number.isFinite(o[k])) return undefined;
  return Object.fromEntries(STATE_KEYS.map((k) => [k, o[k]])) as unknown as TargetControllerState;
}
