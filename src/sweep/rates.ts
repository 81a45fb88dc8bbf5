/**
 * The prune rates that land a DNW or GMP run at a chosen TOTAL sparsity: the share of zeros over
 * every conv/fc weight of the model (the sweep's "achieved sparsity", `modelSummary`'s), not the
 * per-layer rate. Layers of another conv type (a dense first or last layer) keep all their
 * weights, so the sparse layers must prune more; each sparse layer zeroes ⌊rate·n⌋ weights
 * (topk-mask.ts, in float64), so the rate is searched on those integer counts.
 */
import { gmpDecayInForce } from '../sparsity/gmp-schedule.js';
import { pruneCount } from '../sparsity/topk-mask.js';
import { UserError } from '../util/errors.js';

export interface LayerSize {
  numel: number;
  /** True for the layers the method prunes (its own conv type). */
  sparse: boolean;
}

/** Zeros the sparse layers hold at per-layer rate r: Σ ⌊r·n⌋ (float64, as the masks count them). */
export function zerosAtRate(layers: readonly LayerSize[], rate: number): number {
  let z = 0;
  for (const l of layers) if (l.sparse) z += pruneCount(rate, l.numel);
  return z;
}

export interface GmpWindow {
  epochs: number;
  initPruneEpoch: number;
  finalPruneEpoch: number;
}

/** The per-layer rate a GMP run with prune_rate p has in force in its last epoch: p − p·d (what run.ts sets). */
export function gmpFinalRate(p: number, w: GmpWindow): number {
  return p - p * gmpDecayInForce(w.epochs - 1, w.initPruneEpoch, w.finalPruneEpoch);
}

/**
 * The smallest `prune_rate` x in [0, 1) whose final per-layer rate rateOf(x) zeroes `targetPercent`
 * of ALL the layers' weights (rounded to a whole weight). DNW applies x itself; GMP's cubic
 * schedule ends at x·(1 − d) (d = the decay in force in the last epoch, (1/T)³ when the window
 * ends before it, STR-SPEC §9), so its rate is searched through gmpFinalRate: the exact float64
 * value the run sets, so the floor of every layer lands as planned. Bisection on the monotone
 * zero count; a target the sparse layers cannot carry is a UserError.
 */
export function rateForTotal(layers: readonly LayerSize[], targetPercent: number, o: { rateOf?: (x: number) => number; what?: string; hint?: string } = {}): number {
  const rateOf = o.rateOf ?? ((x: number) => x);
  const what = o.what ?? `target ${targetPercent}`;
  const all = layers.reduce((a, l) => a + l.numel, 0);
  const sparse = layers.reduce((a, l) => a + (l.sparse ? l.numel : 0), 0);
  if (sparse === 0) throw new UserError(`${what}: the model has no layers of this conv type to prune`);
  const want = Math.round((targetPercent / 100) * all);
  let lo = 0;
  let hi = 1 - Number.EPSILON;
  if (zerosAtRate(layers, rateOf(hi)) < want) {
    throw new UserError(`${what}: ${targetPercent} % of all ${all} conv/fc weights needs ${want} zeros, more than the prunable layers reach (${zerosAtRate(layers, rateOf(hi))} of their ${sparse} weights at prune_rate → 1)${o.hint ? `; ${o.hint}` : ''}`);
  }
  for (let i = 0; i < 64 && hi - lo > 0; i++) {
    const mid = (lo + hi) / 2;
    if (mid === lo || mid === hi) break;
    if (zerosAtRate(layers, rateOf(mid)) >= want) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** The GMP window's check: a window that never prunes within the run is a UserError. */
export function checkGmpWindow(w: GmpWindow): void {
  const d = gmpDecayInForce(w.epochs - 1, w.initPruneEpoch, w.finalPruneEpoch);
  if (!(d < 1)) {
    throw new UserError(`GMP window ${w.initPruneEpoch}-${w.finalPruneEpoch} prunes nothing in a run of ${w.epochs} epochs; give --gmp-window INIT,FINAL inside 0-${w.epochs - 1}`);
  }
}
