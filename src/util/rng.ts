import seedrandom from 'seedrandom';
import { randomBytes } from 'node:crypto';

/** A seeded random source: uniform in [0, 1) and standard normal (Box-Muller). */
export interface Rng {
  uniform(): number;
  normal(): number;
  /** Integer in [0, n). */
  int(n: number): number;
}

export function makeRng(seed?: number | string): Rng {
  const s = seed === undefined ? randomBytes(8).toString('hex') : String(seed);
  const next = seedrandom.alea(s);
  let spare: number | undefined;
  return {
    uniform: () => next(),
    int: (n) => Math.floor(next() * n),
    normal() {
      if (spare !== undefined) {
        const v = spare;
        spare = undefined;
        return v;
      }
      let u = 0;
      while (u === 0) u = next();
      const v = next();
      const r = Math.sqrt(-2 * Math.log(u));
      spare = r * Math.sin(2 * Math.PI * v);
      return r * Math.cos(2 * Math.PI * v);
    },
  };
}

/** A child seed derived from a parent seed and a label (e.g. a layer name), stable across runs. */
export function deriveSeed(seed: number | string | undefined, label: string): string | undefined {
  return seed === undefined ? undefined : `${seed}/${label}`;
}
