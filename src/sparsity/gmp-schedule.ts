/**
 * GMP's cubic schedule (STR-SPEC §9): at the start of epoch e within [init, final] (inclusive),
 * decay = (1 − (e − init)/T)³ with T = final − init + 1, and each GMP layer's current rate
 * becomes p − p·decay for its own target p. Before the window nothing changes (rate 0); after
 * it the value of epoch `final` stays, so p itself is never reached (quirk 16, kept: it is how
 * the reference's numbers were produced). Returns null outside the window.
 */
export function gmpDecay(epoch: number, init: number, final: number): number | null {
  if (epoch < init || epoch > final) return null;
  const T = final - init + 1;
  return Math.pow(1 - (epoch - init) / T, 3);
}

/** The decay in force during epoch e, replaying the schedule (what a resumed run restores). */
export function gmpDecayInForce(epoch: number, init: number, final: number): number {
  if (final < init || epoch < init) return 1;
  return gmpDecay(Math.min(epoch, final), init, final)!;
}

/** Current rate of a layer with target p, set at the start of epoch e (null: unchanged). */
export function gmpRateAt(epoch: number, p: number, init: number, final: number): number | null {
  const d = gmpDecay(epoch, init, final);
  return d === null ? null : p - p * d;
}

/** The rate in force during epoch e for target p. */
export function gmpRateInForce(epoch: number, p: number, init: number, final: number): number {
  return p - p * gmpDecayInForce(epoch, init, final);
}
