import { UserError } from '../util/errors.js';

export type LrPolicy = 'constant_lr' | 'cosine_lr' | 'multistep_lr' | 'efficientnet_lr';
export type LrGranularity = 'epoch' | 'step';

export interface ScheduleOptions {
  lr: number;
  /** Warm-up length in epochs (the reference's help text says iterations; it is epochs, quirk 5). */
  warmupLength: number;
  epochs: number;
  /** multistep_lr: multiply by gamma every `adjust` epochs (quirk 4: the flags work here). */
  multistepGamma: number;
  multistepAdjust: number;
}

/** Linear warm-up over the first W epochs: base·(e+1)/W. */
function warmup(base: number, w: number, e: number): number {
  return (base * (e + 1)) / w;
}

/**
 * Learning rate for 0-based epoch e, evaluated once at the start of each epoch, as the
 * reference's utils/schedulers.py (STR-SPEC §7; values in §17.4 / Appendix B).
 */
export function learningRate(policy: LrPolicy, e: number, o: ScheduleOptions): number {
  const { lr: base, warmupLength: w, epochs } = o;
  if (policy !== 'multistep_lr' && e < w) return warmup(base, w, e);
  switch (policy) {
    case 'constant_lr':
      return base;
    case 'cosine_lr': {
      const span = epochs - w;
      return 0.5 * (1 + Math.cos((Math.PI * (e - w)) / span)) * base;
    }
    case 'efficientnet_lr':
      return base * Math.pow(0.97, e / 2.4);
    case 'multistep_lr':
      return base * Math.pow(o.multistepGamma, Math.floor(e / o.multistepAdjust));
    default:
      throw new UserError(`--lr-policy ${String(policy)}: unknown policy (expected constant_lr, cosine_lr, multistep_lr or efficientnet_lr)`);
  }
}

/**
 * Learning rate at global iteration `step` (0-based, `stepsPerEpoch` per epoch), evaluated every
 * step as timm's and torchvision's per-iteration schedulers do: the reference's formulas at the
 * fractional epoch x = step / stepsPerEpoch, so epoch starts agree with learningRate. Warm-up is
 * base·(step+1)/(W·stepsPerEpoch), the per-epoch warm-up's (e+1)/W with the epoch cut into steps;
 * cosine anneals within each epoch, ending at ½(1+cos(π(1 − 1/((E−W)·stepsPerEpoch))))·base, near 0,
 * where the per-epoch schedule's last epoch runs at ½(1+cos(π(E−W−1)/(E−W)))·base throughout.
 */
export function stepLearningRate(policy: LrPolicy, step: number, stepsPerEpoch: number, o: ScheduleOptions): number {
  const { lr: base, warmupLength: w, epochs } = o;
  const x = step / stepsPerEpoch;
  if (policy !== 'multistep_lr' && x < w) return (base * (step + 1)) / (w * stepsPerEpoch);
  switch (policy) {
    case 'constant_lr':
      return base;
    case 'cosine_lr':
      return 0.5 * (1 + Math.cos((Math.PI * (x - w)) / (epochs - w))) * base;
    case 'efficientnet_lr':
      return base * Math.pow(0.97, x / 2.4);
    case 'multistep_lr':
      // decays land on epoch boundaries either way
      return base * Math.pow(o.multistepGamma, Math.floor(step / (stepsPerEpoch * o.multistepAdjust)));
    default:
      return learningRate(policy, Math.floor(x), o);
  }
}

/** The learning rate of iteration `iteration` of 0-based epoch `epoch`. */
export type LrAt = (epoch: number, iteration: number) => number;

/**
 * The run's schedule as one function of (epoch, iteration). The global step is derived from the
 * epoch, so a run resumed at an epoch boundary continues the per-step schedule exactly.
 */
export function lrSchedule(policy: LrPolicy, o: ScheduleOptions, granularity: LrGranularity, stepsPerEpoch: number): LrAt {
  if (granularity === 'epoch') return (epoch) => learningRate(policy, epoch, o);
  const n = Math.max(1, stepsPerEpoch);
  return (epoch, iteration) => stepLearningRate(policy, epoch * n + iteration, n, o);
}

/** The epoch line's lr: one value, or first→last step when it moves within the epoch. */
export function formatEpochLr(lrAt: LrAt, epoch: number, stepsPerEpoch: number): string {
  const first = lrAt(epoch, 0);
  const last = lrAt(epoch, Math.max(0, stepsPerEpoch - 1));
  return first === last ? first.toPrecision(4) : `${first.toPrecision(4)}→${last.toPrecision(4)}`;
}
