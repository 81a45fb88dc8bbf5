/**
 * Which samples go in which batch: the per-epoch shuffle and the split of every global batch
 * across data-parallel ranks. Pure functions of (seed, epoch, rank), so every rank computes the
 * same permutation without talking to the others.
 */
import seedrandom from 'seedrandom';

/** A random permutation of 0…n−1 (Fisher–Yates), fixed by (seed, epoch). */
export function epochPermutation(n: number, seed: string, epoch: number): Uint32Array {
  const rng = seedrandom.alea(`${seed}:perm:${epoch}`);
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/**
 * Rank `rank`'s part [start, end) of a global batch holding `size` samples: floor(r·size/W) …
 * floor((r+1)·size/W). For a full batch (size = B, B divisible by W) that is exactly
 * [r·B/W, (r+1)·B/W); a last partial batch is split as evenly as possible, and when it has fewer
 * samples than ranks some ranks get an empty part.
 */
export function shardOfBatch(size: number, rank: number, worldSize: number): [number, number] {
  return [Math.floor((rank * size) / worldSize), Math.floor(((rank + 1) * size) / worldSize)];
}

export interface EpochLayout {
  /** Global batches per epoch: ceil(n / batchSize). */
  numBatches: number;
  /** Samples this rank sees per epoch. */
  numSamples: number;
}

export function epochLayout(n: number, batchSize: number, rank: number, worldSize: number): EpochLayout {
  const numBatches = Math.ceil(n / batchSize);
  const full = Math.floor(n / batchSize);
  const last = n - full * batchSize;
  const [a, b] = shardOfBatch(last, rank, worldSize);
  return { numBatches, numSamples: (full * batchSize) / worldSize + (b - a) };
}

/** Positions (into the epoch order) of rank's samples in global batch `g`. */
export function batchPositions(n: number, batchSize: number, g: number, rank: number, worldSize: number): [number, number] {
  const start = g * batchSize;
  const size = Math.min(batchSize, n - start);
  const [a, b] = shardOfBatch(size, rank, worldSize);
  return [start + a, start + b];
}
