import assert from 'node:assert/strict';
import * as tf from '../../src/tf.js';
import { initBackend } from '../../src/backend/select.js';

/** Switch the test process to a backend ('wasm' gets the project's training kernels). */
export async function useBackend(name: 'cpu' | 'wasm'): Promise<void> {
  await initBackend(name, () => {});
  assert.equal(tf.getBackend(), name);
}

/** Max |a-b| / max(1, |b|) over all entries. */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'length mismatch');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return m;
}

/** max |a − b| / max |b|: the error relative to the result's scale (kernel comparisons). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / Math.max(m, 1e-30);
}

export function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-6, msg = ''): void {
  const d = maxRelDiff(a, b);
  assert.ok(d <= tol, `${msg} max relative difference ${d} > ${tol}`);
}

/** Runs f and asserts it leaves no tensor behind. */
export async function assertNoLeak<T>(f: () => T | Promise<T>): Promise<T> {
  const before = tf.memory().numTensors;
  const out = await f();
  assert.equal(tf.memory().numTensors, before, 'tensor leak');
  return out;
}
