// Extra threads for the native kernels. The project's kernels run on the JS main thread, and
// tfjs' own pool (XNNPACK's pthreads) cannot run foreign code, so a kernel written to share its
// work (sparse_conv claims tiles through an atomic counter) gets `threads − 1` Node workers, each
// with its own instance of the native module on the same shared memory. A call posts its
// arguments into a SharedArrayBuffer, wakes the workers (Atomics.notify), runs its own share and
// waits (Atomics.wait) until every worker has finished: ~10-50 µs per call.
import { Worker } from 'node:worker_threads';
import type { BackendWasm } from '../ops.js';
import { nativeKernels, nativeModule, type NativeKernels } from './native.js';

/** The kernels a worker may run (by index, so a call posts only numbers). */
const SHARED_KERNELS = ['sparse_conv'] as const;
type SharedKernel = (typeof SHARED_KERNELS)[number];

const MAX_ARGS = 48;
// control words: 0 generation, 1 workers done, 2 stop, 3 argc, 4 index of the scratch argument,
// 5 kernel index, 6 a worker failed, 7 worker count; then float64 arguments from byte 64
const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const { memory, module, control, index, names } = workerData;
const k = new WebAssembly.Instance(module, { env: { memory } }).exports;
const ctl = new Int32Array(control, 0, 16);
const args = new Float64Array(control, 64, ${MAX_ARGS + 1});
let seen = 0;
parentPort.postMessage('ready');
for (;;) {
  Atomics.wait(ctl, 0, seen);
  seen = Atomics.load(ctl, 0);
  if (Atomics.load(ctl, 2) === 1) break;
  const n = ctl[3];
  const a = Array.from(args.subarray(0, n));
  a[ctl[4]] += index * args[n];
  try { k[names[ctl[5]]](...a); } catch (e) { Atomics.store(ctl, 6, 1); }
  if (Atomics.add(ctl, 1, 1) === ctl[7] - 1) Atomics.notify(ctl, 1);
}
`;

export class NativeWorkers {
  private readonly ctl: Int32Array;
  private readonly args: Float64Array;
  private readonly workers: Worker[] = [];
  private readonly kernels: NativeKernels;
  private generation = 0;
  private closed = false;

  private constructor(backend: BackendWasm, extra: number) {
    const { module, memory } = nativeModule(backend);
    this.kernels = nativeKernels(backend);
    const control = new SharedArrayBuffer(64 + 8 * (MAX_ARGS + 1));
    this.ctl = new Int32Array(control, 0, 16);
    this.args = new Float64Array(control, 64, MAX_ARGS + 1);
    for (let i = 1; i <= extra; i++) {
      const w = new Worker(WORKER_SOURCE, {
        eval: true, execArgv: [], workerData: { memory, module, control, index: i, names: SHARED_KERNELS },
      });
      w.unref(); // blocked in Atomics.wait between calls; must not keep the process alive
      this.workers.push(w);
    }
  }

  /** Starts `threads − 1` workers (none when 1 or the memory is not shared); resolves when all are ready. */
  static async start(backend: BackendWasm, threads: number): Promise<NativeWorkers> {
    const extra = nativeModule(backend).shared ? Math.max(0, threads - 1) : 0;
    const pool = new NativeWorkers(backend, extra);
    await Promise.all(pool.workers.map((w) => new Promise<void>((resolve, reject) => {
      w.once('message', () => resolve());
      w.once('error', reject);
    })));
    return pool;
  }

  get threads(): number {
    return this.workers.length + 1;
  }

  /**
   * Runs `name(...args)` on every thread at once; argument `scratchArg` is offset by
   * `index · scratchStride` bytes on thread `index` (the caller's thread is 0).
   */
  run(name: SharedKernel, args: number[], scratchArg: number, scratchStride: number): void {
    const fn = this.kernels[name] as (...a: number[]) => void;
    const W = this.workers.length;
    if (W === 0 || this.closed) {
      fn(...args);
      return;
    }
    if (args.length > MAX_ARGS) throw new Error(`native workers: ${args.length} arguments (max ${MAX_ARGS})`);
    this.args.set(args);
    this.args[args.length] = scratchStride;
    const c = this.ctl;
    c[3] = args.length;
    c[4] = scratchArg;
    c[5] = SHARED_KERNELS.indexOf(name);
    c[6] = 0;
    c[7] = W;
    Atomics.store(c, 1, 0);
    Atomics.store(c, 0, ++this.generation);
    Atomics.notify(c, 0);
    try {
      fn(...args);
    } finally {
      for (let d = Atomics.load(c, 1); d !== W; d = Atomics.load(c, 1)) Atomics.wait(c, 1, d, 1000);
    }
    if (Atomics.load(c, 6) !== 0) throw new Error(`native workers: ${name} failed in a worker`);
  }

  /** Stops the workers. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.ctl, 2, 1);
    Atomics.store(this.ctl, 0, ++this.generation);
    Atomics.notify(this.ctl, 0);
    for (const w of this.workers) void w.terminate();
  }
}

const pools = new WeakMap<object, { ready?: NativeWorkers; starting: Promise<NativeWorkers> }>();

/** Starts (once per backend) the worker threads of the native kernels; `threads` includes the caller's. */
export function startNativeWorkers(backend: BackendWasm, threads: number): Promise<NativeWorkers> {
  let p = pools.get(backend.wasm);
  if (p == null) {
    const entry: { ready?: NativeWorkers; starting: Promise<NativeWorkers> } = {
      starting: NativeWorkers.start(backend, threads).then((pool) => (entry.ready = pool)),
    };
    entry.starting.catch(() => pools.delete(backend.wasm));
    pools.set(backend.wasm, entry);
    p = entry;
  }
  return p.starting;
}

/** The backend's started workers, if any (kernels run single-threaded until they are ready). */
export function nativeWorkersOf(backend: BackendWasm): NativeWorkers | undefined {
  return pools.get(backend.wasm)?.ready;
}
