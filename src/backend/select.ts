// `--backend auto|tensorflow|webgpu|wasm|cpu`: picks and initialises the TensorFlow.js backend.
import * as os from 'node:os';
import * as tf from '../tf.js';
import { UserError } from '../util/errors.js';
import { registerWasmTrainingKernels } from './wasm/register.js';
import { snapshotProcessHandlers } from './wasm/process-handlers.js';
import { installThreadedWasm } from './wasm/threaded.js';
import { findHardwareAdapter, findSoftwareAdapter, type AdapterResult } from './webgpu/dawn.js';
import { activateWebgpu, activeWebgpuAdapter, releaseWebgpu } from './webgpu/backend.js';
import { describeAdapter } from './webgpu/adapter-info.js';
import { webgpuMultiDeviceError } from './webgpu/multi-device.js';

export type BackendChoice = 'auto' | 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';

export const backendChoices: readonly BackendChoice[] = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'];

export interface BackendOptions {
  /**
   * wasm threads (XNNPACK thread pool; at most 8). Default: env STR_TRAIN_WASM_THREADS, else
   * one per core. 1 uses tfjs' stock single-threaded SIMD
   * build. Fixed by the first wasm initialisation in a process.
   */
  threads?: number;
  /**
   * Set when this process is one of several workers on one machine (`--multigpu`, mpirun): each
   * needs its own GPU, which webgpu cannot select (see webgpu/multi-device.ts). The flag named
   * in the error. `auto` then skips webgpu; `--backend webgpu` is an error.
   */
  sharedMachineFlag?: string;
}

interface State {
  name: string;
  /** e.g. '@tensorflow/tfjs-node-gpu', 'wasm threaded-simd' */
  detail: string;
  wasmThreads?: number;
  wasmMode?: 'threaded-simd' | 'simd' | 'plain';
}

let state: State | undefined;
/** Outcome of setting up wasm, kept because the wasm module can only be created once. */
let wasmSetup: Promise<{ threads: number; mode: 'threaded-simd' | 'simd' | 'plain'; note: string }> | undefined;

function silenceCpuBanner(): void {
  // The cpu backend prints "Hi, looks like you are running TensorFlow.js in Node.js..." on its
  // first write unless firstUse is false; our one backend line replaces it.
  const cpu = tf.findBackend('cpu') as { firstUse?: boolean } | null;
  if (cpu != null) cpu.firstUse = false;
}

function shortCause(e: unknown): string {
  const err = e as { code?: string; message?: string };
  if (err?.code === 'ERR_MODULE_NOT_FOUND' || err?.code === 'MODULE_NOT_FOUND') return 'not installed';
  const line = String(err?.message ?? e).split('\n')[0].trim();
  return line.length > 120 ? `${line.slice(0, 117)}...` : line;
}

/** Imports a tfjs-node flavour and switches to its 'tensorflow' backend; returns an error text on failure. */
async function tryTensorflow(pkg: '@tensorflow/tfjs-node-gpu' | '@tensorflow/tfjs-node'): Promise<string | undefined> {
  try {
    const name: string = pkg; // a variable: the package is optional, tsc must not resolve it
    await import(name);
    if (tf.findBackend('tensorflow') == null) return 'it registered no "tensorflow" backend with this copy of tfjs';
    if (!(await tf.setBackend('tensorflow'))) return 'the "tensorflow" backend failed to initialise';
    await tf.ready();
    return undefined;
  } catch (e) {
    return shortCause(e);
  }
}

// Threads pay off for large convolutions (1.8-2.2x per conv with 2 threads) but every small op
// then waits on the pool, and a training step shares the cores with the data loader. Measured on
// this 2-core machine: when other jobs held the cores (load 3-6), 1 thread was faster; on the idle
// machine 2 threads win: quickstart (ResNet18 w0.25, b64) 283-291 vs 360-369 ms/step, the
// quickstart run end to end 245 vs 230 img/s, ResNet50 eval at 224 px b16 2.4 vs 3.0 s. So the
// default is one thread per core (at most 8); STR_TRAIN_WASM_THREADS=1 suits a busy machine.
function defaultThreads(opts?: BackendOptions): number {
  const fromEnv = Number(process.env.STR_TRAIN_WASM_THREADS);
  const requested = opts?.threads ?? (Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : undefined);
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, Math.min(8, requested ?? cores));
}

async function setUpWasm(opts?: BackendOptions): Promise<{ threads: number; mode: 'threaded-simd' | 'simd' | 'plain'; note: string }> {
  await import('@tensorflow/tfjs-backend-wasm'); // registers the stock 'wasm' backend and kernels
  registerWasmTrainingKernels();
  const threads = defaultThreads(opts);
  let note = '';
  const alreadyUp = (tf.engine() as unknown as { registry: Record<string, unknown> }).registry.wasm != null;
  if (threads > 1 && !alreadyUp) {
    try {
      const r = await installThreadedWasm(threads);
      return { threads: r.threads, mode: 'threaded-simd', note };
    } catch (e) {
      note = `threaded wasm unavailable: ${shortCause(e)}`;
    }
  }
  const removeEmscriptenHandlers = snapshotProcessHandlers();
  const ok = await tf.setBackend('wasm');
  removeEmscriptenHandlers();
  if (!ok) throw new Error('the wasm backend failed to initialise');
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  const wasmPkg = await import('@tensorflow/tfjs-backend-wasm');
  const actual = wasmPkg.getThreadsCount();
  const mode = actual > 1 ? 'threaded-simd' : simd ? 'simd' : 'plain';
  return { threads: Math.max(1, actual), mode, note };
}

async function useWasm(opts?: BackendOptions): Promise<State> {
  wasmSetup ??= setUpWasm(opts);
  let setup;
  try {
    setup = await wasmSetup;
  } catch (e) {
    wasmSetup = undefined;
    throw e;
  }
  registerWasmTrainingKernels();
  if (tf.getBackend() !== 'wasm' && !(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
  await tf.ready();
  return {
    name: 'wasm', detail: `${setup.mode}, ${setup.threads} thread${setup.threads === 1 ? '' : 's'}${setup.note ? `; ${setup.note}` : ''}`,
    wasmThreads: setup.threads, wasmMode: setup.mode,
  };
}

const WEBGPU_PACKAGES = 'the optional packages webgpu and @tensorflow/tfjs-backend-webgpu';

function missingWhy(r: AdapterResult): string {
  return 'missing' in r ? r.missing : '';
}

/** `--backend webgpu`: a hardware adapter, else the software one (for tests, with a warning). */
async function useWebgpuAsRequested(log: (line: string) => void): Promise<State> {
  const hw = await findHardwareAdapter();
  if ('found' in hw) {
    await activateWebgpu(hw.found);
    return { name: 'webgpu', detail: describeAdapter(hw.found.info) };
  }
  if (hw.notInstalled) throw new UserError(`--backend webgpu: ${WEBGPU_PACKAGES} could not be loaded (${hw.missing}); install them, or use --backend wasm`);
  const sw = await findSoftwareAdapter();
  if (!('found' in sw)) throw new UserError(`--backend webgpu: no WebGPU adapter (${hw.missing}; software: ${sw.missing}); use --backend wasm`);
  await activateWebgpu(sw.found);
  log(`warning: --backend webgpu: no hardware GPU adapter (${hw.missing}); using the ${sw.found.software ? 'software' : 'OpenGL ES'} adapter ${sw.found.info.device || sw.found.info.description}, which is for tests only (far slower than --backend wasm)`);
  return { name: 'webgpu', detail: `${sw.found.software ? 'SOFTWARE adapter, for tests only: ' : ''}${describeAdapter(sw.found.info)}` };
}

/**
 * Initialises the backend for `choice` and returns its tfjs name and why it was chosen. Logs one
 * line through `log`. Idempotent; safe to call from tests.
 */
export async function initBackend(choice: BackendChoice, log: (line: string) => void = (l) => console.error(l),
  opts?: BackendOptions): Promise<{ name: string; reason: string }> {
  silenceCpuBanner();
  let reason: string;
  switch (choice) {
    case 'tensorflow': {
      const gpu = await tryTensorflow('@tensorflow/tfjs-node-gpu');
      if (gpu == null) {
        state = { name: 'tensorflow', detail: '@tensorflow/tfjs-node-gpu' };
        reason = 'as requested; tfjs-node-gpu (TensorFlow with CUDA)';
        break;
      }
      const cpuTf = await tryTensorflow('@tensorflow/tfjs-node');
      if (cpuTf == null) {
        state = { name: 'tensorflow', detail: '@tensorflow/tfjs-node' };
        reason = `as requested; tfjs-node (native TensorFlow on CPU; tfjs-node-gpu: ${gpu})`;
        break;
      }
      const cause = gpu === cpuTf ? gpu : `tfjs-node-gpu: ${gpu}; tfjs-node: ${cpuTf}`;
      throw new UserError(`--backend tensorflow: neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node could be loaded (${cause}); install one, or use --backend wasm`);
    }
    case 'webgpu':
      if (opts?.sharedMachineFlag) throw new UserError(webgpuMultiDeviceError(opts.sharedMachineFlag));
      state = await useWebgpuAsRequested(log);
      reason = `as requested; ${state.detail}`;
      break;
    case 'auto': {
      const gpu = await tryTensorflow('@tensorflow/tfjs-node-gpu');
      // libtensorflow loads CUDA lazily: without a usable GPU tfjs-node-gpu still loads, on the CPU
      const tfSeesGpu = gpu == null && (tf.backend() as { isUsingGpuDevice?: boolean }).isUsingGpuDevice !== false;
      if (tfSeesGpu) {
        state = { name: 'tensorflow', detail: '@tensorflow/tfjs-node-gpu' };
        reason = 'tfjs-node-gpu loaded: TensorFlow with CUDA (GPU)';
        break;
      }
      const gpuWhy = gpu == null ? 'tfjs-node-gpu sees no GPU' : `tfjs-node-gpu ${gpu === 'not installed' ? 'not installed' : `failed (${gpu})`}`;
      // never a software adapter, and never with several workers per machine (one GPU for all)
      const hw: AdapterResult = opts?.sharedMachineFlag
        ? { missing: `not with ${opts.sharedMachineFlag} (cannot select a GPU per worker)` }
        : await findHardwareAdapter();
      if ('found' in hw) {
        await activateWebgpu(hw.found);
        state = { name: 'webgpu', detail: describeAdapter(hw.found.info) };
        reason = `${gpuWhy}; WebGPU (Dawn) on ${state.detail}`;
        break;
      }
      const webgpuWhy = `webgpu: ${missingWhy(hw)}`;
      if (gpu == null) {
        // tfjs-node-gpu is up on the CPU: as fast as tfjs-node (which cannot load beside it)
        if (!(await tf.setBackend('tensorflow'))) throw new Error('the tensorflow backend failed to initialise');
        state = { name: 'tensorflow', detail: '@tensorflow/tfjs-node-gpu (CPU)' };
        reason = `${gpuWhy}; ${webgpuWhy}; native TensorFlow on CPU`;
        break;
      }
      const cpuTf = await tryTensorflow('@tensorflow/tfjs-node');
      if (cpuTf == null) {
        state = { name: 'tensorflow', detail: '@tensorflow/tfjs-node' };
        reason = `${gpuWhy}; ${webgpuWhy}; tfjs-node loaded: native TensorFlow on CPU`;
        break;
      }
      state = await useWasm(opts);
      const why = gpu === 'not installed' && cpuTf === 'not installed' ? 'tfjs-node-gpu and tfjs-node not installed'
        : `tfjs-node-gpu: ${gpu}; tfjs-node: ${cpuTf}`;
      reason = `${why}; ${webgpuWhy}; wasm is the fastest npm-only backend that can train; ${state.detail}`;
      break;
    }
    case 'wasm':
      state = await useWasm(opts);
      reason = `as requested; ${state.detail}`;
      break;
    case 'cpu':
      if (!(await tf.setBackend('cpu'))) throw new Error('the cpu backend failed to initialise');
      await tf.ready();
      state = { name: 'cpu', detail: 'pure JavaScript' };
      reason = 'as requested; pure JavaScript, very slow for training (use --backend wasm)';
      break;
    default:
      throw new UserError(`--backend: expected one of ${backendChoices.join(', ')}, got '${String(choice)}'`);
  }
  silenceCpuBanner();
  log(`backend: ${state.name} (${reason})`);
  return { name: state.name, reason };
}

/** One line describing the active backend, for benchmark reports. */
export function describeBackend(): string {
  const name = tf.getBackend();
  if (name === 'wasm') {
    const s = state?.name === 'wasm' ? state : undefined;
    return `wasm (${s?.wasmMode ?? 'unknown build'}, ${s?.wasmThreads ?? '?'} thread(s), project training kernels; tfjs ${tf.version_core})`;
  }
  if (name === 'tensorflow') return `tensorflow (${state?.detail ?? 'tfjs-node'}; tfjs ${tf.version_core})`;
  if (name === 'webgpu') {
    const a = activeWebgpuAdapter();
    return `webgpu (${a ? `${a.software ? 'SOFTWARE adapter, ' : ''}${describeAdapter(a.info)}` : 'unknown adapter'}; tfjs ${tf.version_core})`;
  }
  return `${name} (tfjs ${tf.version_core})`;
}

/**
 * Releases what keeps the process alive after training (the webgpu backend's Dawn instance);
 * call when done with tfjs. Harmless on every backend.
 */
export function releaseBackend(): void {
  releaseWebgpu();
}
