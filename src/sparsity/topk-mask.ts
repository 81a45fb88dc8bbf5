import * as tf from '../tf.js';

/**
 * Number of weights DNW/GMP zero at prune rate p: ⌊p·n⌋ computed in float64, exactly Python's
 * int(p * n) (e.g. ⌊0.29·100⌋ = 28 because 0.29·100 = 28.999999999999996).
 */
export function pruneCount(p: number, n: number): number {
  return Math.floor(p * n);
}

/**
 * For a conv weight stored internally as [kh, kw, cinPerGroup, cout] (depthwise: cinPerGroup = 1,
 * cout = C), the PyTorch flat index (OIHW order) of every internal flat position. Ties in the
 * top-k are broken by this index so the pruned set does not depend on our memory layout.
 */
export function torchFlatIndex(kh: number, kw: number, cin: number, cout: number): Int32Array {
  const out = new Int32Array(kh * kw * cin * cout);
  let i = 0;
  for (let h = 0; h < kh; h++)
    for (let w = 0; w < kw; w++)
      for (let c = 0; c < cin; c++)
        for (let o = 0; o < cout; o++) out[i++] = ((o * cin + c) * kh + h) * kw + w;
  return out;
}

/** k-th smallest (0-based) of `a` by iterative quickselect; reorders `a` in place. O(n) expected. */
function quickselect(a: Float32Array, k: number): number {
  let lo = 0;
  let hi = a.length - 1;
  while (hi > lo) {
    // median of three as pivot: robust to sorted and constant runs
    const mid = (lo + hi) >>> 1;
    const x = a[lo], y = a[mid], z = a[hi];
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        const t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k];
  }
  return a[k];
}

/**
 * Keep-mask (1 = keep, 0 = pruned) zeroing the k entries of smallest magnitude; ties at the
 * boundary are pruned in ascending PyTorch flat index (the rule STR-SPEC §5.2 recommends:
 * a stable ascending sort of |W|). Linear time: selection, not a full sort.
 */
export function pruneMaskHost(values: Float32Array, k: number, torchIndex: Int32Array): Float32Array {
  const n = values.length;
  const mask = new Float32Array(n).fill(1);
  if (k <= 0) return mask;
  if (k >= n) return mask.fill(0);
  const mags = new Float32Array(n);
  for (let i = 0; i < n; i++) mags[i] = Math.abs(values[i]);
  const scratch = mags.slice();
  const v = quickselect(scratch, k - 1);
  const ties: number[] = [];
  let pruned = 0;
  for (let i = 0; i < n; i++) {
    if (mags[i] < v) {
      mask[i] = 0;
      pruned++;
    } else if (mags[i] === v) ties.push(i);
  }
  ties.sort((a, b) => torchIndex[a] - torchIndex[b]);
  for (let t = 0; pruned < k; t++, pruned++) mask[ties[t]] = 0;
  return mask;
}

/**
 * The same mask computed on the device with tf.topk (stable: among equal values the lower index
 * comes first), so GPU backends never synchronise with the host per step.
 * `toTorchOrder` / `fromTorchOrder` permute between the internal layout and PyTorch's.
 */
export function pruneMaskDevice(
  w: tf.Tensor,
  k: number,
  toTorchOrder: (t: tf.Tensor) => tf.Tensor,
  fromTorchOrder: (t: tf.Tensor) => tf.Tensor,
): tf.Tensor {
  const select = (ww: tf.Tensor) => tf.tidy(() => {
    const n = ww.size;
    if (k <= 0) return tf.onesLike(ww);
    const flat = tf.reshape(tf.neg(tf.abs(toTorchOrder(ww))), [n]);
    const { indices } = tf.topk(flat, k, false);
    const pruned = tf.scatterND(tf.reshape(indices, [k, 1]), tf.ones([k]), [n]);
    const torchShape = toTorchOrder(ww).shape;
    return fromTorchOrder(tf.reshape(tf.sub(1, pruned), torchShape));
  });
  // The mask is a constant of the graph (GMP: pruned weights get no gradient): one tape node
  // with a zero gradient, so autograd never looks for TopK's or ScatterNd's (tfjs has none).
  const constant = tf.customGrad((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => ({
    value: select(inputs[0] as tf.Tensor),
    gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
  }));
  return constant(w);
}

/** Host selection on CPU-resident backends (cheap readback), device top-k elsewhere. */
export function usesHostMasks(): boolean {
  const b = tf.getBackend();
  return b === 'cpu' || b === 'wasm';
}
