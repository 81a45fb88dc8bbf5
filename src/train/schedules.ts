import { UserError } from '../util/errors.js';

export type LrPolicy = 'constant_lr' | 'cosine_lr' | 'multistep_lr' | 'efficientnet_lr';

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
