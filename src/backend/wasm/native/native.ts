// Loads the project's hand-written SIMD kernels (kernels.c, embedded in binary.ts) into the memory
// of a tfjs wasm backend, so they work on tensors in place.
import type { BackendWasm } from '../ops.js';
import { plainWasm, sharedWasm } from './binary.js';

export interface NativeKernels {
  dw_filter_grad(x: number, dy: number, out: number, acc: number, rowacc: number, N: number, H: number,
    W: number, C: number, OH: number, OW: number, KH: number, KW: number, SH: number, SW: number,
    DH: number, DW: number, top: number, left: number): void;
  scatter_phase(src: number, dst: number, N: number, QH: number, QW: number, C: number, H: number, W: number,
    S: number, rh: number, rw: number, offH: number, offW: number): void;
  resample(x: number, dst: number, N: number, H: number, W: number, C: number, OH: number, OW: number,
    SH: number, SW: number, top: number, left: number): void;
  flip_filter(src: number, dst: number, KH: number, KW: number, A: number, B: number, S: number, rh: number,
    rw: number, LH: number, LW: number, transpose: number): void;
  im2col_t(x: number, colT: number, p0: number, p1: number, H: number, W: number, CI: number, OH: number, OW: number,
    KH: number, KW: number, SH: number, SW: number, DH: number, DW: number, top: number, left: number): void;
  copy_floats(dst: number, src: number, n: number): void;
  dw_input_grad(dy: number, f: number, dx: number, N: number, H: number, W: number, C: number, OH: number, OW: number,
    KH: number, KW: number, SH: number, SW: number, DH: number, DW: number, top: number, left: number): void;
  im2col(x: number, col: number, N: number, H: number, W: number, CI: number, OH: number, OW: number, KH: number,
    KW: number, SH: number, SW: number, DH: number, DW: number, top: number, left: number): void;
  gemm(A: number, B: number, C: number, P: number, K: number, N: number, bpack: number, KC: number): void;
  conv_filter_grad(x: number, dy: number, out: number, acc: number, colbuf: number, PB: number, N: number, H: number,
    W: number, CI: number, CO: number, OH: number, OW: number, KH: number, KW: number, SH: number, SW: number,
    top: number, left: number): void;
  bn_fwd(x: number, res: number, gamma: number, beta: number, y: number, mean: number, invstd: number, rm: number,
    rv: number, rmOut: number, rvOut: number, acc: number, R: number, C: number, eps: number, keep: number, m: number,
    unbias: number, relu: number): void;
  bn_bwd(dy: number, x: number, y: number, mean: number, invstd: number, gamma: number, dx: number, dres: number,
    dgamma: number, dbeta: number, acc: number, R: number, C: number): void;
  str_fwd(w: number, out: number, n: number, tau: number): void;
  /** Returns Σ dy·sign(w)·1[|w| > tau] (float64). */
  str_bwd(dy: number, w: number, dw: number, n: number, tau: number): number;
  maxpool_grad(x: number, dy: number, dx: number, N: number, H: number, W: number, C: number, OH: number, OW: number,
    KH: number, KW: number, SH: number, SW: number, top: number, left: number): void;
  /** Leaves the k-th smallest |w| (bits) in hist[0] and the count of smaller ones in hist[1]. */
  mag_kth(w: number, n: number, k: number, hist: number): void;
  /** Returns the number of ties (|w| == v) written to `ties`. */
  mask_below(w: number, mask: number, n: number, v: number, ties: number): number;
  sgd_update(p: number, g: number, buf: number, pOut: number, bufOut: number, n: number, lr: number, mu: number,
    wd: number, nesterov: number, first: number): void;
  /** Sparse inference conv (+ bias, residual, ReLU); tiles claimed through `counter` by any number of threads. */
  sparse_conv(x: number, N: number, H: number, W: number, C: number, OH: number, OW: number, KH: number, KW: number,
    SH: number, SW: number, top: number, left: number, rowptr: number, nz: number, bias: number, res: number,
    out: number, CO: number, relu: number, counter: number, scratch: number): void;
}

// The project compiles without DOM typings, which is where TypeScript declares WebAssembly.
interface WasmMemory { readonly buffer: ArrayBuffer | SharedArrayBuffer }
const WA = (globalThis as unknown as {
  WebAssembly: {
    Memory: abstract new () => WasmMemory;
    Module: new (bytes: Uint8Array) => object;
    Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  };
}).WebAssembly;

interface EmscriptenModuleLike {
  wasmMemory?: WasmMemory;
  asm?: { memory?: WasmMemory };
  _malloc(bytes: number): number;
  _free(ptr: number): void;
}

const modules = new WeakMap<object, NativeKernels>();
const compiled = new WeakMap<object, { module: object; memory: WasmMemory; shared: boolean }>();

function memoryOf(backend: BackendWasm): WasmMemory {
  const m = backend.wasm as unknown as EmscriptenModuleLike;
  const memory = m.wasmMemory ?? m.asm?.memory;
  if (memory == null || !(memory instanceof WA.Memory)) throw new Error('cannot find the tfjs wasm module memory');
  return memory;
}

/** The native kernels bound to `backend`'s memory (instantiated once per backend). */
export function nativeKernels(backend: BackendWasm): NativeKernels {
  let k = modules.get(backend.wasm);
  if (k == null) {
    const memory = memoryOf(backend);
    const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    const bytes = Uint8Array.from(atob(shared ? sharedWasm : plainWasm), (ch) => ch.charCodeAt(0));
    const module = new WA.Module(bytes);
    const instance = new WA.Instance(module, { env: { memory } });
    k = instance.exports as unknown as NativeKernels;
    modules.set(backend.wasm, k);
    compiled.set(backend.wasm, { module, memory, shared });
  }
  return k;
}

/**
 * The compiled native module and the memory it runs in, for instantiating it in other threads
 * (only useful when `shared`: the threaded tfjs build's memory is a SharedArrayBuffer).
 */
export function nativeModule(backend: BackendWasm): { module: object; memory: WasmMemory; shared: boolean } {
  nativeKernels(backend);
  return compiled.get(backend.wasm)!;
}

/** The current view of the tfjs heap (re-read after anything that may grow memory). */
export function heapBuffer(backend: BackendWasm): ArrayBufferLike {
  return memoryOf(backend).buffer;
}

/** Allocates `bytes` of scratch on the tfjs heap for the duration of `body`. */
export function withScratch<T>(backend: BackendWasm, bytes: number[], body: (ptrs: number[]) => T): T {
  const m = backend.wasm as unknown as EmscriptenModuleLike;
  const ptrs: number[] = [];
  try {
    for (const b of bytes) {
      const p = m._malloc(Math.max(16, b)) >>> 0;
      if (p === 0) throw new Error(`wasm: out of memory allocating ${b} bytes of scratch`);
      ptrs.push(p);
    }
    return body(ptrs);
  } finally {
    for (const p of ptrs) m._free(p);
  }
}

/** Heap address of a tensor's data. */
export function addressOf(backend: BackendWasm, t: { dataId: object }): number {
  return backend.dataIdMap.get(t.dataId).memoryOffset;
}
