/**
 * GMP's cubic schedule (STR-SPEC §9): at the start of epoch e within [init, final] (inclusive),
 * rate = p·(1 − (1 − (e − init)/T)³) with T = final − init + 1; 0 before the window; after it the
 * value of epoch `final` is kept, so p itself is never reached (quirk 16, kept: it is how the
 * reference's numbers were produced). Returns null when the rate is not changed this epoch.
 */
export function gmpRateAt(epoch: number, target: number, init: number, final: number): number | null {
  if (epoch < init || epoch > final) return null;
  const T = final - init + 1;
  const decay = Math.pow(1 - (epoch - init) / T, 3);
  return target - target * decay;
}

/** The rate in force during epoch e, replaying the schedule (what a resumed run must restore). */
export function gmpRateInForce(epoch: number, target: number, init: number, final: number): number {
  if (final < init || epoch < init) return 0;
  return gmpRateAt(Math.min(epoch, final), target, init, final) ?? 0;
}
