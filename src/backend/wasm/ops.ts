// Building blocks for the project's wasm kernels. Kernels compose tfjs-backend-wasm's own kernel
// functions (XNNPACK convolutions, BatchMatMul, ...) the way tfjs backends do internally - call
// `getKernel(name, 'wasm').kernelFunc` with the same backend - plus the project's SIMD kernels
// (native/), and release every intermediate with `backend.disposeData`, so a kernel leaves exactly
// one new tensor behind (its output).
import * as tf from '../../tf.js';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { addressOf, nativeKernels, type NativeKernels } from './native/native.js';

export type { BackendWasm, TensorInfo };

/** Explicit [before, after] paddings per spatial dim; entries may be negative (= crop). */
export interface Pads {
  top: number;
  bottom: number;
  left: number;
  right: number;
}

/** Owns the intermediates a kernel creates; `dispose()` frees all but those handed out by `keep`. */
export class Scope {
  private readonly owned: TensorInfo[] = [];

  readonly native: NativeKernels;

  constructor(readonly backend: BackendWasm) {
    this.native = nativeKernels(backend);
  }

  /** Heap address of a tensor's data, for the native kernels. */
  addr(t: TensorInfo): number {
    return addressOf(this.backend, t);
  }

  /** A new float32 tensor (uninitialised), tracked. */
  alloc(shape: number[]): TensorInfo {
    return this.track(this.backend.makeOutput(shape, 'float32'));
  }

  /** Frees an intermediate now (to lower peak memory) instead of at the end. */
  release(t: TensorInfo): void {
    const i = this.owned.findIndex((o) => o.dataId === t.dataId);
    if (i < 0) return;
    this.owned.splice(i, 1);
    this.backend.disposeData(t.dataId);
  }

  /** Runs a wasm kernel and tracks its output. */
  run(kernelName: string, inputs: Record<string, TensorInfo> | TensorInfo[], attrs: NamedAttrMap = {}): TensorInfo {
    const kernel = tf.getKernel(kernelName, 'wasm');
    if (kernel == null) throw new Error(`wasm kernel ${kernelName} is not registered`);
    const out = kernel.kernelFunc({ inputs: inputs as never, backend: this.backend, attrs });
    const info = (Array.isArray(out) ? out[0] : out) as TensorInfo;
    this.owned.push(info);
    return info;
  }

  /** Tracks a tensor created outside `run` (e.g. by `backend.makeOutput`). */
  track(t: TensorInfo): TensorInfo {
    this.owned.push(t);
    return t;
  }

  /** Removes `t`'s data from the disposal list and returns it (the kernel's result). */
  keep(t: TensorInfo): TensorInfo {
    for (let i = this.owned.length - 1; i >= 0; i--) {
      if (this.owned[i].dataId === t.dataId) this.owned.splice(i, 1);
    }
    return t;
  }

  dispose(): void {
    for (const t of this.owned) this.backend.disposeData(t.dataId);
    this.owned.length = 0;
  }

  // ---- thin wrappers over wasm kernels ----

  sum(x: TensorInfo, axis: number[]): TensorInfo {
    return this.run('Sum', { x }, { axis, keepDims: false });
  }

  tile(x: TensorInfo, reps: number[]): TensorInfo {
    return this.run('Tile', { x }, { reps });
  }

  /**
   * NHWC spatial resampling with zero fill: out[n,oh,ow] = x[n, oh*SH - top, ow*SW - left] (0
   * outside x). Crops, pads and subsamples in one pass (wasm's Slice copies the whole input).
   */
  resample(x: TensorInfo, OH: number, OW: number, SH: number, SW: number, top: number, left: number): TensorInfo {
    const [N, H, W, C] = x.shape;
    const out = this.alloc([N, OH, OW, C]);
    this.native.resample(this.addr(x), this.addr(out), N, H, W, C, OH, OW, SH, SW, top, left);
    return out;
  }

  /** Crops a 4-D NHWC tensor to rows [h0, h0+hs) and columns [w0, w0+ws) (no copy when whole). */
  cropHW(x: TensorInfo, h0: number, hs: number, w0: number, ws: number): TensorInfo {
    if (h0 === 0 && w0 === 0 && hs === x.shape[1] && ws === x.shape[2]) return x;
    return this.resample(x, hs, ws, 1, 1, -h0, -w0);
  }

  /**
   * Stride-`strides`, dilation-`dilations` convolution (dense, or depthwise with `filter`
   * [KH,KW,C,M]) with explicit paddings; negative paddings crop the input first, since XNNPACK
   * only pads.
   */
  conv(kind: 'dense' | 'depthwise', x: TensorInfo, filter: TensorInfo, pads: Pads,
    strides: [number, number] = [1, 1], dilations: [number, number] = [1, 1]): TensorInfo {
    const cropTop = Math.max(0, -pads.top), cropBottom = Math.max(0, -pads.bottom);
    const cropLeft = Math.max(0, -pads.left), cropRight = Math.max(0, -pads.right);
    const xc = this.cropHW(x, cropTop, x.shape[1] - cropTop - cropBottom, cropLeft, x.shape[2] - cropLeft - cropRight);
    const pad = [[0, 0], [Math.max(0, pads.top), Math.max(0, pads.bottom)],
      [Math.max(0, pads.left), Math.max(0, pads.right)], [0, 0]];
    const attrs = { strides, pad, dilations, dataFormat: 'NHWC', dimRoundingMode: undefined } as unknown as NamedAttrMap;
    return this.run(kind === 'dense' ? 'Conv2D' : 'DepthwiseConv2dNative', { x: xc, filter }, attrs);
  }
}

/** Same data, another shape (NHWC reshapes never move data); not tracked separately. */
export function view(t: TensorInfo, shape: number[]): TensorInfo {
  return { dataId: t.dataId, shape, dtype: t.dtype };
}

/** Runs `body` with a fresh scope; frees every intermediate, also when `body` throws. */
export function withScope(backend: BackendWasm, body: (s: Scope) => TensorInfo): TensorInfo {
  const s = new Scope(backend);
  try {
    return s.keep(body(s));
  } finally {
    s.dispose();
  }
}
