// The project's wasm training kernels against the cpu backend's kernels, on random shapes.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../src/tf.js';
import { initBackend } from '../../src/backend/select.js';
import { setConv2DNativeMaxPositions } from '../../src/backend/wasm/kernels/Conv2D.js';
import { setConv2DBackpropFilterPath, setIm2colChunkBytes } from '../../src/backend/wasm/kernels/Conv2DBackpropFilter.js';
import { wasmTrainingKernels } from '../../src/backend/wasm/register.js';
import { makeRng } from '../../src/util/rng.js';
import { relErr } from '../helpers/tf.js';

type Pad = number | 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

const rng = makeRng(20240607);
function randn(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

interface Host { data: Float32Array | Int32Array; shape: number[] }
const host = (shape: number[]): Host => ({ data: randn(shape.reduce((a, b) => a * b, 1)), shape });

/** Runs kernel `name` on wasm and on cpu with the same inputs; returns both results. */
async function runBoth(name: string, inputs: Record<string, Host>, attrs: Record<string, unknown>): Promise<[Float32Array, Float32Array, number[]]> {
  const out: Float32Array[] = [];
  let shape: number[] = [];
  for (const b of ['wasm', 'cpu']) {
    await tf.setBackend(b);
    const ts: Record<string, tf.Tensor> = {};
    for (const [k, h] of Object.entries(inputs)) ts[k] = tf.tensor(h.data, h.shape, h.data instanceof Int32Array ? 'int32' : 'float32');
    const r = tf.engine().runKernel(name, ts as never, attrs as never) as tf.Tensor;
    out.push(r.dataSync() as Float32Array);
    shape = r.shape;
    tf.dispose([r, ...Object.values(ts)]);
  }
  await tf.setBackend('wasm');
  return [out[0], out[1], shape];
}

function outSize(H: number, K: number, S: number, pad: Pad, D = 1): number {
  const KE = (K - 1) * D + 1;
  if (pad === 'same') return Math.ceil(H / S);
  if (pad === 'valid') return Math.ceil((H - KE + 1) / S);
  if (typeof pad === 'number') return Math.floor((H + 2 * pad - KE) / S) + 1;
  return -1; // explicit: computed per axis by the caller
}

function outHW(H: number, W: number, K: number, S: number, pad: Pad, D = 1): [number, number] {
  if (Array.isArray(pad)) {
    const KE = (K - 1) * D + 1;
    return [Math.floor((H + pad[1][0] + pad[1][1] - KE) / S) + 1, Math.floor((W + pad[2][0] + pad[2][1] - KE) / S) + 1];
  }
  return [outSize(H, K, S, pad, D), outSize(W, K, S, pad, D)];
}

const TOL = 1e-5;

before(async () => {
  await initBackend('wasm', () => {});
});

test('the registered kernels are the project ones', () => {
  for (const k of wasmTrainingKernels) assert.equal(tf.getKernel(k.kernelName, 'wasm'), k, k.kernelName);
});

// [N, H, W, CI, CO, K, S, pad]: kernels 1/3/7, strides 1/2, PyTorch symmetric pads 3/1/0, odd and
// even sizes, batch 1 and > 1, channel counts that are not multiples of 4
const denseCases: Array<[number, number, number, number, number, number, number, Pad]> = [
  [2, 8, 8, 3, 5, 3, 1, 1],
  [1, 9, 9, 4, 6, 3, 2, 1],
  [3, 10, 10, 4, 8, 3, 2, 1],
  [2, 11, 11, 3, 8, 7, 2, 3],
  [1, 12, 12, 3, 4, 7, 2, 3],
  [2, 8, 8, 6, 5, 1, 2, 0],
  [2, 7, 7, 5, 6, 1, 2, 0],
  [2, 6, 6, 8, 4, 1, 1, 0],
  [2, 7, 9, 5, 3, 3, 1, 'same'],
  [2, 8, 8, 4, 4, 3, 2, 'same'],
  [2, 9, 9, 4, 3, 3, 2, 'valid'],
  [1, 4, 4, 16, 12, 3, 1, 1],
  [4, 2, 2, 8, 8, 3, 2, 1],
  [2, 1, 1, 8, 6, 3, 1, 1],
  [2, 9, 8, 3, 5, 3, 2, [[0, 0], [1, 2], [0, 1], [0, 0]]],
  [2, 8, 8, 4, 5, 5, 2, [[0, 0], [2, 2], [2, 2], [0, 0]]],
  // feature maps smaller than the filter: taps that only meet padding are cropped (tap-crop.ts)
  [2, 2, 3, 4, 6, 5, 1, 2],
  [3, 1, 2, 5, 4, 3, 2, 1],
  [2, 3, 3, 4, 4, 7, 2, 3],
  [2, 1, 1, 6, 5, 3, 1, [[0, 0], [2, 0], [0, 2], [0, 0]]],
  // GEMM: K in several blocks (many output channels), leftover rows (P % 4) and columns (CO % 8)
  [2, 3, 3, 64, 522, 3, 1, 1],
];

describe('Conv2D (native GEMM path for fresh filters, XNNPACK otherwise) matches cpu', () => {
  for (const [N, H, W, CI, CO, K, S, pad] of denseCases) {
    test(`N${N} ${H}x${W} ${CI}->${CO} k${K} s${S} pad ${JSON.stringify(pad)}`, async () => {
      const x = host([N, H, W, CI]), w = host([K, K, CI, CO]);
      const attrs = { strides: [S, S], pad, dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined };
      const [a, b, shape] = await runBoth(tf.Conv2D, { x, filter: w }, attrs);
      assert.deepEqual(shape, [N, ...outHW(H, W, K, S, pad), CO]);
      assert.ok(relErr(a, b) < TOL, `native rel err ${relErr(a, b)}`);
      setConv2DNativeMaxPositions(0);
      try {
        const [c, d] = await runBoth(tf.Conv2D, { x, filter: w }, attrs);
        assert.ok(relErr(c, d) < TOL, `xnnpack rel err ${relErr(c, d)}`);
      } finally {
        setConv2DNativeMaxPositions(undefined);
      }
    });
  }

  test('im2col in chunks of whole images (large inputs)', async () => {
    const x = host([3, 64, 64, 64]), w = host([3, 3, 64, 8]);
    const [a, b] = await runBoth(tf.Conv2D, { x, filter: w },
      { strides: [1, 1], pad: 1, dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined });
    assert.ok(relErr(a, b) < TOL);
  });

  test('dilated', async () => {
    const x = host([2, 9, 10, 3]), w = host([3, 3, 3, 5]);
    const [a, b, shape] = await runBoth(tf.Conv2D, { x, filter: w },
      { strides: [1, 1], pad: 2, dataFormat: 'NHWC', dilations: [2, 2], dimRoundingMode: undefined });
    assert.deepEqual(shape, [2, 9, 10, 5]);
    assert.ok(relErr(a, b) < TOL);
  });

  test('a filter used again goes to XNNPACK (cached packing) with the same result', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor(host([2, 5, 5, 4]).data, [2, 5, 5, 4]) as tf.Tensor4D;
    const w = tf.tensor(host([3, 3, 4, 6]).data, [3, 3, 4, 6]) as tf.Tensor4D;
    const first = tf.conv2d(x, w, 1, 1), second = tf.conv2d(x, w, 1, 1);
    assert.ok(relErr(first.dataSync(), second.dataSync()) < TOL);
    tf.dispose([x, w, first, second]);
  });
});

describe('Conv2DBackpropInput / Conv2DBackpropFilter match cpu', () => {
  for (const [N, H, W, CI, CO, K, S, pad] of denseCases) {
    const label = `N${N} ${H}x${W} ${CI}->${CO} k${K} s${S} pad ${JSON.stringify(pad)}`;
    test(label, async () => {
      const [OH, OW] = outHW(H, W, K, S, pad);
      const x = host([N, H, W, CI]), w = host([K, K, CI, CO]), dy = host([N, OH, OW, CO]);
      const common = { strides: [S, S], pad, dataFormat: 'NHWC', dimRoundingMode: undefined };
      const [a, b, shape] = await runBoth(tf.Conv2DBackpropInput, { dy, filter: w }, { ...common, inputShape: [N, H, W, CI] });
      assert.deepEqual(shape, [N, H, W, CI]);
      assert.ok(relErr(a, b) < TOL, `input grad rel err ${relErr(a, b)}`);
      for (const path of ['native', 'matmul'] as const) {
        setConv2DBackpropFilterPath(path);
        try {
          const [c, d, fshape] = await runBoth(tf.Conv2DBackpropFilter, { x, dy }, { ...common, filterShape: [K, K, CI, CO] });
          assert.deepEqual(fshape, [K, K, CI, CO]);
          assert.ok(relErr(c, d) < TOL, `filter grad (${path}) rel err ${relErr(c, d)}`);
        } finally {
          setConv2DBackpropFilterPath('auto');
        }
      }
    });
  }

  test('filter gradient summed over many small im2col chunks', async () => {
    setIm2colChunkBytes(3000); // forces chunks of a few positions
    setConv2DBackpropFilterPath('matmul');
    try {
      const [N, H, CI, CO, K, S] = [3, 9, 5, 7, 3, 2];
      const OH = outSize(H, K, S, 1);
      const x = host([N, H, H, CI]), dy = host([N, OH, OH, CO]);
      const [c, d] = await runBoth(tf.Conv2DBackpropFilter, { x, dy },
        { strides: [S, S], pad: 1, dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: [K, K, CI, CO] });
      assert.ok(relErr(c, d) < TOL, `rel err ${relErr(c, d)}`);
    } finally {
      setIm2colChunkBytes(16 << 20);
      setConv2DBackpropFilterPath('auto');
    }
  });

  test('native filter gradient over several position blocks (P > block size)', async () => {
    setConv2DBackpropFilterPath('native');
    try {
      for (const [K, S, P] of [[3, 1, 1], [1, 1, 0], [1, 2, 0]]) {
        const [N, H, CI, CO] = [3, 24, 5, 7];
        const OH = outSize(H, K, S, P);
        const x = host([N, H, H, CI]), dy = host([N, OH, OH, CO]);
        const [c, d] = await runBoth(tf.Conv2DBackpropFilter, { x, dy },
          { strides: [S, S], pad: P, dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: [K, K, CI, CO] });
        assert.ok(relErr(c, d) < TOL, `k${K} s${S}: rel err ${relErr(c, d)}`);
      }
    } finally {
      setConv2DBackpropFilterPath('auto');
    }
  });

  test('unequal strides take a correct (fallback) path', async () => {
    // (explicit pads: tfjs sizes numeric pads with the height stride for both dims)
    const [N, H, W, CI, CO, K] = [2, 9, 8, 3, 4, 3];
    const [OH, OW] = [outSize(H, K, 2, 1), outSize(W, K, 1, 1)];
    const w = host([K, K, CI, CO]), dy = host([N, OH, OW, CO]), x = host([N, H, W, CI]);
    const common = { strides: [2, 1], pad: [[0, 0], [1, 1], [1, 1], [0, 0]], dataFormat: 'NHWC', dimRoundingMode: undefined };
    const [a, b] = await runBoth(tf.Conv2DBackpropInput, { dy, filter: w }, { ...common, inputShape: [N, H, W, CI] });
    assert.ok(relErr(a, b) < TOL);
    const [c, d] = await runBoth(tf.Conv2DBackpropFilter, { x, dy }, { ...common, filterShape: [K, K, CI, CO] });
    assert.ok(relErr(c, d) < TOL);
  });
});

// [N, H, W, C, M, K, S, pad, dilation]
const dwCases: Array<[number, number, number, number, number, number, number, Pad, number]> = [
  [2, 8, 8, 4, 1, 3, 1, 1, 1],
  [2, 9, 9, 8, 1, 3, 2, 1, 1],
  [1, 10, 10, 16, 1, 3, 2, 1, 1],
  [3, 7, 7, 5, 1, 3, 1, 1, 1],
  [2, 8, 8, 6, 1, 3, 2, 'same', 1],
  [2, 8, 7, 3, 1, 3, 2, 'valid', 1],
  [2, 9, 9, 4, 1, 5, 2, 2, 1],
  [2, 8, 8, 4, 2, 3, 1, 1, 1],
  [2, 9, 9, 3, 2, 3, 2, 1, 1],
  [1, 4, 4, 20, 1, 3, 2, 1, 1],
];

describe('DepthwiseConv2dNativeBackpropInput / BackpropFilter match cpu', () => {
  for (const [N, H, W, C, M, K, S, pad, D] of dwCases) {
    const label = `N${N} ${H}x${W} C${C} M${M} k${K} s${S} pad ${JSON.stringify(pad)} dilation ${D}`;
    test(label, async () => {
      const [OH, OW] = outHW(H, W, K, S, pad, D);
      const x = host([N, H, W, C]), w = host([K, K, C, M]), dy = host([N, OH, OW, C * M]);
      const common = { strides: [S, S], dilations: [D, D], pad, dimRoundingMode: undefined };
      const [a, b, shape] = await runBoth(tf.DepthwiseConv2dNativeBackpropInput, { dy, filter: w }, { ...common, inputShape: [N, H, W, C] });
      assert.deepEqual(shape, [N, H, W, C]);
      assert.ok(relErr(a, b) < TOL, `input grad rel err ${relErr(a, b)}`);
      const [c, d, fshape] = await runBoth(tf.DepthwiseConv2dNativeBackpropFilter, { x, dy }, { ...common, filterShape: [K, K, C, M] });
      assert.deepEqual(fshape, [K, K, C, M]);
      assert.ok(relErr(c, d) < TOL, `filter grad rel err ${relErr(c, d)}`);
    });
  }

  test('dilated (stride 1) kernels match a direct loop (tfjs has no dilated gradient to compare with)', async () => {
    const [N, H, W, C, M, K, D, P] = [2, 9, 8, 3, 2, 3, 2, 2];
    const OH = H + 2 * P - D * (K - 1), OW = W + 2 * P - D * (K - 1);
    const x = host([N, H, W, C]), w = host([K, K, C, M]), dy = host([N, OH, OW, C * M]);
    const dx = new Float64Array(N * H * W * C), dw = new Float64Array(K * K * C * M);
    for (let n = 0; n < N; n++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++)
      for (let kh = 0; kh < K; kh++) for (let kw = 0; kw < K; kw++) {
        const h = oh + kh * D - P, ww = ow + kw * D - P;
        if (h < 0 || h >= H || ww < 0 || ww >= W) continue;
        for (let c = 0; c < C; c++) for (let m = 0; m < M; m++) {
          const g = dy.data[((n * OH + oh) * OW + ow) * C * M + c * M + m];
          dx[((n * H + h) * W + ww) * C + c] += g * w.data[((kh * K + kw) * C + c) * M + m];
          dw[((kh * K + kw) * C + c) * M + m] += g * x.data[((n * H + h) * W + ww) * C + c];
        }
      }
    const common = { strides: [1, 1], dilations: [D, D], pad: P, dimRoundingMode: undefined };
    const [a] = await runBoth(tf.DepthwiseConv2dNativeBackpropInput, { dy, filter: w }, { ...common, inputShape: [N, H, W, C] });
    assert.ok(relErr(a, dx) < TOL, `input grad rel err ${relErr(a, dx)}`);
    const [b] = await runBoth(tf.DepthwiseConv2dNativeBackpropFilter, { x, dy }, { ...common, filterShape: [K, K, C, M] });
    assert.ok(relErr(b, dw) < TOL, `filter grad rel err ${relErr(b, dw)}`);
  });

  test('filter gradient keeps cpu accuracy over a long reduction (float64 row sums)', async () => {
    // 2 * 64 * 64 = 8192 positions per tap
    const [N, H, C] = [2, 64, 4];
    const x = host([N, H, H, C]), dy = host([N, H, H, C]);
    const [c, d] = await runBoth(tf.DepthwiseConv2dNativeBackpropFilter, { x, dy },
      { strides: [1, 1], dilations: [1, 1], pad: 1, dimRoundingMode: undefined, filterShape: [3, 3, C, 1] });
    assert.ok(relErr(c, d) < TOL, `rel err ${relErr(c, d)}`);
  });
});

test('UnsortedSegmentSum (gather gradient) matches cpu, also with dropped ids', async () => {
  const x = host([5, 3, 2]);
  for (const ids of [[1, 0, 1, 3, 3], [0, -1, 2, 7, 1]]) {
    const [a, b, shape] = await runBoth(tf.UnsortedSegmentSum, { x, segmentIds: { data: Int32Array.from(ids), shape: [5] } },
      { numSegments: 4 });
    assert.deepEqual(shape, [4, 3, 2]);
    assert.ok(relErr(a, b) < TOL);
  }
});

test('Cast to the same dtype shares the data; other casts still convert', async () => {
  await tf.setBackend('wasm');
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const x = tf.tensor1d([1.5, -2.25, 3]);
  const ids = backend.numDataIds();
  const same = tf.cast(x, 'float32');
  assert.equal(backend.numDataIds(), ids, 'a same-dtype cast must not allocate');
  assert.deepEqual(Array.from(same.dataSync()), [1.5, -2.25, 3]);
  same.dispose();
  assert.deepEqual(Array.from(x.dataSync()), [1.5, -2.25, 3], 'disposing the cast keeps the source');
  const asInt = tf.cast(x, 'int32');
  assert.equal(asInt.dtype, 'int32');
  assert.deepEqual(Array.from(asInt.dataSync()), [1, -2, 3]);
  const asBool = tf.cast(tf.tensor1d([0, 2], 'int32'), 'bool');
  assert.deepEqual(Array.from(asBool.dataSync()), [0, 1]);
  tf.dispose([x, asInt, asBool]);
});

test('MaxPoolGrad matches cpu: PyTorch stem pool, same/valid, ties go to the first maximum', async () => {
  // [N, H, W, C, K, S, pad]
  const cases: Array<[number, number, number, number, number, number, Pad]> = [
    [2, 9, 9, 8, 3, 2, 1], [2, 8, 8, 5, 3, 2, 1], [1, 7, 6, 6, 2, 2, 'valid'], [2, 7, 7, 4, 3, 1, 'same'], [3, 1, 1, 3, 3, 2, 1],
  ];
  for (const [N, H, W, C, K, S, pad] of cases) {
    const [OH, OW] = outHW(H, W, K, S, pad);
    // values on a coarse grid, so windows hold ties
    const x: Host = { data: Float32Array.from(randn(N * H * W * C), (v) => Math.round(v * 2) / 2), shape: [N, H, W, C] };
    const dy = host([N, OH, OW, C]), out = host([N, OH, OW, C]);
    const [a, b, shape] = await runBoth(tf.MaxPoolGrad, { dy, input: x, output: out },
      { filterSize: K, strides: S, pad, dimRoundingMode: undefined });
    assert.deepEqual(shape, [N, H, W, C]);
    assert.ok(relErr(a, b) < 1e-6, `${JSON.stringify([N, H, W, C, K, S, pad])}: ${relErr(a, b)}`);
  }
});

test('Identity shares the data (tf.clone, tensors saved for backprop)', async () => {
  await tf.setBackend('wasm');
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const x = tf.tensor1d([1, 2, 3]);
  const ids = backend.numDataIds();
  const y = tf.clone(x);
  assert.equal(backend.numDataIds(), ids);
  x.dispose();
  assert.deepEqual(Array.from(y.dataSync()), [1, 2, 3]);
  y.dispose();
});
