/**
 * Data-parallel glue between tf tensors and a Collective: gradient averaging with DataParallel
 * semantics, the initial parameter broadcast, and a bitwise parameter-identity check.
 */
import { createHash } from 'node:crypto';
import * as tf from '../tf.js';
import { type Collective, CollectiveError, allGatherBytes } from './collective.js';

type Grads = Record<string, tf.Tensor>;

/** Backends whose tensors live in host memory, where scaling and dividing in JS is cheapest. */
const HOST_BACKENDS = new Set(['cpu', 'wasm']);

/**
 * The training loop's reduceGradients hook. `order` lists the variable names (tf.Variable.name, the
 * keys tf.variableGrads uses) in an order every rank agrees on — the model's parameter order, NOT
 * sorted names: tf auto-numbers variable names per process.
 *
 * Each rank passes its mean gradient over its `samples` examples. The hook sums the sample counts
 * over all ranks (G), then sums (samples / G)·grad: the gradient of the mean loss over the global
 * batch (what DataParallel computes), also for uneven shards and ranks with no samples at all.
 * Every rank ends with bit-identical gradients (the all-reduce leaves the same bits on all ranks).
 * `hostMath` (default: on cpu/wasm) weights the gradients in JS; otherwise on the device.
 */
export function reduceGradientsHook(
  c: Collective,
  order: readonly string[],
  opts: { hostMath?: boolean } = {},
): (grads: Grads, samples: number) => Promise<Grads> {
  if (new Set(order).size !== order.length) throw new CollectiveError('reduceGradientsHook: duplicate variable names in the order');
  return async (grads, samples) => {
    if (c.worldSize === 1) return grads;
    const keys = Object.keys(grads);
    if (keys.length !== order.length || order.some((n) => !(n in grads))) {
      const missing = order.filter((n) => !(n in grads)).slice(0, 3);
      const extra = keys.filter((k) => !order.includes(k)).slice(0, 3);
      throw new CollectiveError(`reduceGradientsHook: gradients do not match the parameter order (missing ${missing.join(',') || '-'}, unexpected ${extra.join(',') || '-'})`);
    }
    if (!Number.isInteger(samples) || samples < 0) throw new CollectiveError(`reduceGradientsHook: sample count ${samples} must be a non-negative integer`);
    const shapes = order.map((n) => grads[n].shape);
    const sizes = order.map((n) => grads[n].size);
    const total = sizes.reduce((a, b) => a + b, 0);
    const onHost = opts.hostMath ?? HOST_BACKENDS.has(tf.getBackend());
    // The global sample count first (a few bytes), so that each rank can weight its gradient by
    // samples / globalSamples while it is packed, and the summed buffer is the answer as it is.
    const count = new Float32Array([samples]);
    await c.allReduceSum(count);
    const globalSamples = count[0];
    if (!(globalSamples > 0)) throw new CollectiveError('reduceGradientsHook: no rank had any samples in this step');
    const weight = samples / globalSamples;
    let flat: Float32Array;
    if (samples === 0) {
      flat = new Float32Array(total); // contributes nothing (its mean gradient is 0/0)
    } else if (onHost) {
      // host backends: copy (a memcpy), then one in-place pass (faster than scaling while copying)
      flat = new Float32Array(total);
      let off = 0;
      for (const n of order) {
        const d = (await grads[n].data()) as Float32Array;
        flat.set(d, off);
        off += d.length;
      }
      if (weight !== 1) scaleInPlace(flat, weight);
    } else {
      // device backends: one device→host transfer of the weighted, flattened gradients
      const t = tf.tidy(() => tf.concat(order.map((n) => grads[n].reshape([-1]))).mul(tf.scalar(weight)));
      try {
        // a fresh result tensor, disposed below, so its host array may be summed into in place
        flat = (await t.data()) as Float32Array;
      } finally {
        t.dispose();
      }
    }
    await c.allReduceSum(flat);
    const out: Grads = {};
    if (onHost) {
      // host backends: the tensors take the host array as is
      let off = 0;
      for (let k = 0; k < order.length; k++) {
        out[order[k]] = tf.tensor(flat.subarray(off, off + sizes[k]), shapes[k], 'float32');
        off += sizes[k];
      }
    } else {
      // device backends: one upload, the split runs on the device
      const parts = tf.tidy(() => tf.split(tf.tensor1d(flat), sizes));
      for (let k = 0; k < order.length; k++) {
        out[order[k]] = parts[k].reshape(shapes[k]);
        parts[k].dispose();
      }
    }
    return out;
  };
}

// a small monomorphic loop, so V8 optimises it on its own
function scaleInPlace(a: Float32Array, k: number): void {
  for (let i = 0; i < a.length; i++) a[i] *= k;
}

type Syncable = tf.Variable | { variable: tf.Variable };
const varOf = (v: Syncable): tf.Variable => (v instanceof tf.Variable ? v : v.variable);

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1 };

async function hostBytes(v: tf.Variable): Promise<Uint8Array> {
  const d = await v.data();
  if (!(d instanceof Float32Array || d instanceof Int32Array || d instanceof Uint8Array)) {
    throw new CollectiveError(`cannot synchronise variable ${v.name} of dtype ${v.dtype}`);
  }
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/**
 * Overwrites the variables on every rank with root's values (in the given order, which must agree
 * across ranks): call once after building the model (and after loading a checkpoint or pretrained
 * weights on root only) so that all workers start from identical parameters. Also usable for
 * BatchNorm running statistics before evaluating or saving on one rank.
 */
export async function broadcastParameters(c: Collective, vars: readonly Syncable[], root = 0): Promise<void> {
  if (c.worldSize === 1) return;
  const vs = vars.map(varOf);
  const sizes = vs.map((v) => {
    const b = BYTES[v.dtype];
    if (b === undefined) throw new CollectiveError(`cannot broadcast variable ${v.name} of dtype ${v.dtype}`);
    return b * v.size;
  });
  const total = sizes.reduce((a, b) => a + b, 0);
  // 4-byte aligned offsets so float/int views work (bool entries are padded)
  const offsets: number[] = [];
  let off = 0;
  for (const s of sizes) {
    offsets.push(off);
    off += (s + 3) & ~3;
  }
  const flat = new Uint8Array(Math.max(off, total));
  if (c.rank === root) {
    for (let k = 0; k < vs.length; k++) flat.set(await hostBytes(vs[k]), offsets[k]);
  }
  await c.broadcast(flat, root);
  if (c.rank === root) return;
  for (let k = 0; k < vs.length; k++) {
    const v = vs[k];
    const bytes = flat.slice(offsets[k], offsets[k] + sizes[k]);
    const values = v.dtype === 'float32' ? new Float32Array(bytes.buffer) : v.dtype === 'int32' ? new Int32Array(bytes.buffer) : bytes;
    const t = tf.tensor(values, v.shape, v.dtype);
    v.assign(t);
    t.dispose();
  }
}

/** SHA-256 over the variables' bytes (name-independent: shapes, dtypes and values in order). */
export async function hashVariables(vars: readonly Syncable[]): Promise<Buffer> {
  const h = createHash('sha256');
  for (const v of vars.map(varOf)) {
    h.update(`${v.dtype}[${v.shape.join(',')}]`);
    h.update(await hostBytes(v));
  }
  return h.digest();
}

export interface IdentityReport {
  identical: boolean;
  /** Hex SHA-256 per rank. */
  hashes: string[];
}

/** Whether the variables are bitwise identical on all ranks (a hash per rank, all-gathered). */
export async function checkParametersIdentical(c: Collective, vars: readonly Syncable[]): Promise<IdentityReport> {
  const mine = await hashVariables(vars);
  const all = await allGatherBytes(c, mine);
  const hashes = all.map((b) => Buffer.from(b).toString('hex'));
  return { identical: hashes.every((h) => h === hashes[0]), hashes };
}
