// Checks the outputs of fixtures/worker-allreduce across ranks (shared by the local and MPI tests).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { rankData } from './fixtures/common.js';

export const SIZES = [1, 7, 1000, 1_000_000];

const readF32 = (p: string) => {
  const b = readFileSync(p);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};

/** Checks every rank's results in dir against a float64 sum and against each other, bit for bit. */
export function checkAllReduceOutputs(dir: string, worldSize: number, sizes = SIZES): void {
  for (const n of sizes) {
    const exact = new Float64Array(n);
    const absSum = new Float64Array(n);
    const inputs = Array.from({ length: worldSize }, (_, r) => rankData(n, r));
    for (const x of inputs) {
      for (let i = 0; i < n; i++) {
        exact[i] += x[i];
        absSum[i] += Math.abs(x[i]);
      }
    }
    const r0 = readFileSync(join(dir, `r0-sum-${n}.bin`));
    const got = readF32(join(dir, `r0-sum-${n}.bin`));
    assert.equal(got.length, n);
    for (let i = 0; i < n; i++) {
      // float32 summation of worldSize terms: error ≤ (worldSize−1)·ε·Σ|x|
      const tol = worldSize * 1.2e-7 * absSum[i] + 1e-30;
      if (Math.abs(got[i] - exact[i]) > tol) assert.fail(`size ${n}, element ${i}: ${got[i]} vs exact ${exact[i]}`);
    }
    if (worldSize === 2) {
      // a two-term float32 sum is a single correctly rounded addition, whatever the order
      for (let i = 0; i < n; i++) if (got[i] !== Math.fround(inputs[0][i] + inputs[1][i])) assert.fail(`size ${n}, element ${i} not the rounded sum`);
    }
    for (let r = 1; r < worldSize; r++) {
      assert.ok(readFileSync(join(dir, `r${r}-sum-${n}.bin`)).equals(r0), `size ${n}: rank ${r} differs from rank 0 in some bit`);
    }
  }
  const last = readFileSync(join(dir, `r0-sum-${sizes[sizes.length - 1]}.bin`));
  for (let r = 0; r < worldSize; r++) {
    assert.ok(readFileSync(join(dir, `r${r}-again.bin`)).equals(last), `rank ${r}: a repeated all-reduce gave different bits`);
  }
  const rootBytes = Uint8Array.from({ length: 1001 }, (_, i) => (i * 31 + 5) & 0xff);
  const f = rankData(100_003, 42);
  const fBytes = Buffer.from(f.buffer, f.byteOffset, f.byteLength);
  for (let r = 0; r < worldSize; r++) {
    assert.ok(readFileSync(join(dir, `r${r}-bcast-u8.bin`)).equals(rootBytes), `rank ${r}: byte broadcast from the last rank`);
    assert.ok(readFileSync(join(dir, `r${r}-bcast-f32.bin`)).equals(fBytes), `rank ${r}: float broadcast from rank 0`);
  }
}

