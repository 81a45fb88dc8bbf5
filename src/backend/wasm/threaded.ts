// Multithreaded wasm in Node. tfjs-backend-wasm ships a threaded SIMD build but never uses it in
// Node (its WASM_HAS_MULTITHREAD_SUPPORT flag is hard-wired to false there, tfjs#3830): its loader
// hands the pthread workers a Blob URL, which Node's worker_threads cannot start. Emscripten's
// own glue supports Node, so we instantiate the threaded build ourselves:
//  - the worker script (shipped as a JS string) is written to a file the workers can load;
//  - XNNPACK caps its thread pool at emscripten_num_logical_cores()/2 (it assumes
//    hyper-threading), which Node answers with os.cpus().length, so the count is doubled while
//    the module initialises, to let the pool have one thread per core;
//  - the pool's workers start without the parent's node flags;
//  - the pool's workers are unref'd so they do not keep the process alive, and emscripten's
//    process-wide uncaughtException/unhandledRejection handlers are removed again.
// Measured on this 2-core machine: large XNNPACK convolutions 1.8-2.2x faster with 2 threads (see
// select.ts for why that is not the default here).
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '../../tf.js';
import { snapshotProcessHandlers } from './process-handlers.js';

const require = createRequire(import.meta.url);

interface PThreadLike {
  unusedWorkers: Array<{ terminate(): void }>;
  runningWorkers: Array<{ unref(): void }>;
}

interface ThreadedModule {
  cwrap(name: string, ret: string | null, args: string[]): (...a: number[]) => number;
  PThread: PThreadLike;
  HEAPU8: Uint8Array;
  wasmMemory: { readonly buffer: ArrayBufferLike };
  tfjs?: unknown;
}

type Factory = (config: Record<string, unknown>) => Promise<ThreadedModule>;

/** Writes the worker script once per content hash; returns its path. */
function workerScriptPath(dir: string): string {
  const { wasmWorkerContents } = require(path.join(dir, 'tfjs-backend-wasm-threaded-simd.worker.js')) as
    { wasmWorkerContents: string };
  // The shipped string has its "\n" escapes already turned into newlines (tfjs re-escapes them too)
  const script = wasmWorkerContents.replace(/\n/g, '\\n');
  const hash = createHash('sha256').update(script).digest('hex').slice(0, 16);
  const file = path.join(os.tmpdir(), `str-train-tfjs-wasm-worker-${hash}.cjs`);
  if (!fs.existsSync(file)) {
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, script);
    fs.renameSync(tmp, file);
  }
  return file;
}

/** Keeps Module.HEAPU8 current when another thread grew the shared memory. */
function keepHeapViewFresh(mod: ThreadedModule): void {
  let view = mod.HEAPU8;
  Object.defineProperty(mod, 'HEAPU8', {
    configurable: true,
    get() {
      if (view.buffer !== mod.wasmMemory.buffer) view = new Uint8Array(mod.wasmMemory.buffer);
      return view;
    },
    set(v: Uint8Array) { view = v; },
  });
}

async function createModule(threads: number, timeoutMs: number): Promise<ThreadedModule> {
  const dir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js'));
  const factory = require(path.join(dir, 'tfjs-backend-wasm-threaded-simd.js')) as Factory;
  const worker = workerScriptPath(dir);
  const removeEmscriptenHandlers = snapshotProcessHandlers();
  // the glue calls require("os").cpus(): patch the CommonJS module object (ESM namespaces are frozen)
  const nodeOs = require('node:os') as { cpus: () => os.CpuInfo[] };
  const realCpus = nodeOs.cpus;
  const cpus = realCpus();
  const fakeCount = Math.max(cpus.length, threads) * 2;
  nodeOs.cpus = () => Array.from({ length: fakeCount }, (_, i) => cpus[i % cpus.length]);
  // The glue spawns its pool with `new (require("worker_threads").Worker)(file)`, which inherits
  // the parent's node flags; some break a worker (e.g. --input-type, used by `node -e`). The pool
  // only runs the worker script and wasm, so it gets none.
  const workerThreads = require('node:worker_threads') as { Worker: new (file: string, opts?: object) => unknown };
  const RealWorker = workerThreads.Worker;
  workerThreads.Worker = class extends (RealWorker as new (file: string, opts?: object) => object) {
    constructor(file: string, opts?: object) {
      super(file, { ...opts, execArgv: [] });
    }
  } as never;
  let timer: NodeJS.Timeout | undefined;
  try {
    const mod = await Promise.race([
      factory({
        locateFile: (p: string, prefix: string) => p.endsWith('.worker.js') ? worker
          : p.endsWith('.wasm') ? path.join(dir, 'tfjs-backend-wasm-threaded-simd.wasm') : prefix + p,
        mainScriptUrlOrBlob: path.join(dir, 'tfjs-backend-wasm-threaded-simd.js'),
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`threaded wasm did not start within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return mod;
  } finally {
    clearTimeout(timer);
    nodeOs.cpus = realCpus;
    workerThreads.Worker = RealWorker;
    removeEmscriptenHandlers();
  }
}

export interface ThreadedWasmResult {
  threads: number;
}

/**
 * Replaces the 'wasm' backend with one built on tfjs' threaded SIMD binary using `threads`
 * threads and makes it current. Must run before the wasm backend is first initialised. Throws on
 * failure, leaving tfjs' stock (single-threaded) 'wasm' registration in place.
 */
export async function installThreadedWasm(threads: number, timeoutMs = 30_000): Promise<ThreadedWasmResult> {
  const wasmPkg = await import('@tensorflow/tfjs-backend-wasm');
  const mod = await createModule(threads, timeoutMs);
  const cwrap = (name: string, ret: string | null, args: string[]) => mod.cwrap(name, ret, args);
  mod.tfjs = {
    init: cwrap('init', null, []),
    initWithThreadsCount: cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: cwrap('get_threads_count', 'number', []),
    registerTensor: cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: cwrap('dispose_data', null, ['number']),
    dispose: cwrap('dispose', null, []),
  };
  keepHeapViewFresh(mod);
  wasmPkg.setThreadsCount(threads);
  const backend = new wasmPkg.BackendWasm(mod as never);
  // the pool's threads are alive now; they must not hold the process open, and idle pre-spawned
  // workers only cost memory (emscripten spawns a new one if ever needed)
  for (const w of mod.PThread.runningWorkers) w.unref();
  for (const w of mod.PThread.unusedWorkers.splice(0)) w.terminate();
  const registry = (tf.engine() as unknown as { registryFactory: Record<string, { factory: () => unknown; priority: number }> }).registryFactory;
  const stock = registry.wasm;
  tf.removeBackend('wasm');
  tf.registerBackend('wasm', () => backend, 2);
  let ok = false;
  try {
    ok = await tf.setBackend('wasm');
  } finally {
    if (!ok) {
      tf.removeBackend('wasm');
      if (stock != null) tf.registerBackend('wasm', stock.factory as never, stock.priority);
    }
  }
  if (!ok) throw new Error('the threaded wasm backend failed to initialise');
  return { threads: wasmPkg.getThreadsCount() };
}
