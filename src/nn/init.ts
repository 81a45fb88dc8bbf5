import { makeRng, type Rng } from '../util/rng.js';

/** Weight initialisers of the reference builder (STR-SPEC §4), plus kaiming_uniform. */
export type InitName = 'kaiming_normal' | 'kaiming_uniform' | 'signed_constant' | 'unsigned_constant' | 'standard';
export type FanMode = 'fan_in' | 'fan_out';

export interface InitOptions {
  init: InitName;
  mode: FanMode;
  nonlinearity: 'relu';
  /** --scale-fan: fan ← fan·(1 − pruneRate) (not applied to 'standard'). */
  scaleFan: boolean;
  pruneRate: number;
}

export interface ConvGeometry {
  inChannels: number;
  outChannels: number;
  kernelSize: number;
  groups: number;
}

export function fanOf(g: ConvGeometry, mode: FanMode): number {
  const rf = g.kernelSize * g.kernelSize;
  return mode === 'fan_in' ? (g.inChannels / g.groups) * rf : g.outChannels * rf;
}

const RELU_GAIN = Math.SQRT2;

/**
 * PyTorch's default Conv2d init (kaiming_uniform_ with a=√5): U(−1/√fan_in, 1/√fan_in).
 * MobileNetV1's backbone convs, --first-layer-dense and --last-layer-dense use it (quirk 6/8).
 */
export function torchDefaultUniform(n: number, g: ConvGeometry, rng: Rng): Float32Array {
  const bound = 1 / Math.sqrt(fanOf(g, 'fan_in'));
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng.uniform() * 2 - 1) * bound;
  return out;
}

/** Values for a conv weight with `n` entries (order is irrelevant: every init is i.i.d.). */
export function initConvWeight(n: number, g: ConvGeometry, o: InitOptions, seed?: string): Float32Array {
  const rng = makeRng(seed);
  if (o.init === 'standard') return torchDefaultUniform(n, g, rng);
  let fan = fanOf(g, o.mode);
  if (o.scaleFan) fan *= 1 - o.pruneRate;
  const std = RELU_GAIN / Math.sqrt(fan);
  const out = new Float32Array(n);
  switch (o.init) {
    case 'kaiming_normal':
      for (let i = 0; i < n; i++) out[i] = rng.normal() * std;
      break;
    case 'kaiming_uniform': {
      const bound = Math.sqrt(3) * std;
      for (let i = 0; i < n; i++) out[i] = (rng.uniform() * 2 - 1) * bound;
      break;
    }
    case 'signed_constant': {
      // sign of a PyTorch-default weight: symmetric, so a fair coin per entry
      for (let i = 0; i < n; i++) out[i] = rng.uniform() < 0.5 ? -std : std;
      break;
    }
    case 'unsigned_constant':
      out.fill(std);
      break;
  }
  return out;
}

/** Bias of a plain (PyTorch-default) conv: U(−1/√fan_in, 1/√fan_in). */
export function torchDefaultBias(n: number, g: ConvGeometry, seed?: string): Float32Array {
  return torchDefaultUniform(n, g, makeRng(seed));
}
