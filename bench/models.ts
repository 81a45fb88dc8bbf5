/**
 * Model benchmark: training-step and eval images/s of ResNet18, ResNet50 and MobileNetV1 with
 * DenseConv and STRConv (and DNW/GMP for ResNet18 at 32 px) on each tfjs backend, side by side
 * with the same models and steps in PyTorch (bench/torch_models.py) when Debian's python3-torch
 * is installed; plus the tensor-count / RSS flatness run.
 *
 * One str-train worker process per backend and one PyTorch worker stay up for the whole run and
 * take turns on each configuration (ours, torch; next round torch, ours), because these machines
 * are noisy: the ratio of two runs taken minutes apart means little.
 *
 * A step is exactly what the training loop does (src/train/loop.ts): computeGradients (forward,
 * label-smoothed cross-entropy, top-1/top-5 counts, backward) + Optimizer.step (SGD, momentum
 * 0.9, coupled weight decay), on one cached random batch; the loss is read back every step (the
 * loop reads it every print-freq steps; on wasm/cpu the kernels are synchronous anyway, with
 * --gpu the read is every `window` steps). Warm-up steps are not timed; the figure is the median
 * step time. Eval = validate()'s forward + loss + top-k under tf.tidy, results read back.
 *
 * GPU mode (--gpu; bench/gpu/run.sh on the device machine): issue 11's configurations on a GPU
 * backend (webgpu or tensorflow = tfjs-node-gpu), PyTorch on CUDA twice, in strict float32 (TF32
 * off) and with its defaults; the loss is read every `window` steps (no per-step host sync), and
 * tf.memory()'s numTensors and GPU bytes are sampled after every window. --tiny shrinks the GPU
 * configurations (batch 2, 32 px, 1 step) to try the whole path on a software adapter.
 *
 *   node --import tsx bench/models.ts [--quick | --gpu [--tiny]] [--backend wasm,cpu,tensorflow,webgpu] [--cases SUBSTR,...] [--no-torch] [--json FILE]
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConvTypeName } from '../src/nn/conv/base.js';
import type * as tf from '../src/tf.js';
import { findTorchPython, LineWorker, median, REPO, round, scriptArgs, serveLines } from './common.js';

const SELF = fileURLToPath(import.meta.url);

export type Arch = 'ResNet18' | 'ResNet50' | 'MobileNetV1';
export type BenchBackend = 'wasm' | 'tensorflow' | 'cpu' | 'webgpu';
export type CaseGroup = '32px' | 'topk' | '224px' | 'smoke' | 'gpu';

export interface ModelCase {
  id: string;
  group: CaseGroup;
  arch: Arch;
  conv: ConvTypeName;
  size: number;
  batch: number;
  mode: 'train' | 'eval';
  classes: number;
  /** Only for the cpu smoke configuration (PyTorch has no width multiplier here: not compared). */
  widthMult?: number;
  /** Per round: untimed steps, then up to `steps` timed steps or `maxSeconds`, at least `minSteps`. */
  warmup: number;
  steps: number;
  minSteps: number;
  maxSeconds: number;
  /** Steps between host reads of the loss (1 = every step). */
  window: number;
  torch: boolean;
  /** Backends this case runs on (default: all). */
  backends?: BenchBackend[];
}

/** STR's threshold at the reference's ResNet50 value (dense at the start; cost is the same at any value). */
const S_INIT = -3200;
/** DNW/GMP: the reference's 90 % (GMP at the end of its schedule: the full top-k cost). */
const PRUNE_RATE = 0.9;

export interface CaseOptions {
  quick: boolean;
  /** GPU mode: issue 11's configurations (ResNet18 32 px b128; ResNet50, MobileNetV1 224 px b64). */
  gpu?: boolean;
  /** With gpu: the same cases at batch 2, 32 px, one timed step (a software adapter's dry run). */
  tiny?: boolean;
  /** Keep only cases whose id contains one of these substrings. */
  filter?: string[];
}

export function modelCases(o: CaseOptions): ModelCase[] {
  const q = o.quick;
  const cases: ModelCase[] = [];
  const add = (c: Omit<ModelCase, 'id' | 'classes' | 'window' | 'torch'> & Partial<Pick<ModelCase, 'classes' | 'window' | 'torch'>>) => {
    const id = `${c.arch}${c.widthMult ? ` x${c.widthMult}` : ''}@${c.size} b${c.batch} ${c.conv} ${c.mode}`;
    cases.push({ classes: 1000, window: 1, torch: true, ...c, id });
  };
  const convs: ConvTypeName[] = ['DenseConv', 'STRConv'];
  if (o.gpu) {
    // issue 11: 2 warm-up steps (shader / cuDNN plan compilation), then windows of 5 steps with
    // one loss read each (as the training loop reads metrics every print-freq steps)
    const timing = o.tiny
      ? { warmup: 1, steps: 1, minSteps: 1, maxSeconds: 1, window: 1 }
      : { warmup: 2, steps: q ? 10 : 15, minSteps: 2, maxSeconds: 20, window: 5 };
    const at = (size: number, batch: number) => (o.tiny ? { size: 32, batch: 2 } : { size, batch });
    for (const conv of convs) add({ group: 'gpu', arch: 'ResNet18', conv, ...at(32, 128), mode: 'train', ...timing });
    for (const mode of ['train', 'eval'] as const) {
      for (const conv of convs) add({ group: 'gpu', arch: 'ResNet50', conv, ...at(224, 64), mode, ...timing });
    }
    for (const conv of convs) add({ group: 'gpu', arch: 'MobileNetV1', conv, ...at(224, 64), mode: 'train', ...timing });
    return filterCases(cases, o.filter);
  }
  // 32 px, batch 32, the ImageNet stem (7x7/2 + max-pool; MobileNetV1's 3x3/2): the issue's setting
  const small = { size: 32, batch: 32, warmup: 2, steps: q ? 4 : 15, minSteps: q ? 2 : 5, maxSeconds: q ? 3 : 15 };
  for (const arch of ['ResNet18', 'ResNet50', 'MobileNetV1'] as const) {
    for (const conv of convs) {
      add({ group: '32px', arch, conv, mode: 'train', ...small });
      if (!q || arch === 'ResNet18') add({ group: '32px', arch, conv, mode: 'eval', ...small });
    }
  }
  for (const conv of ['DNWConv', 'GMPConv'] as const) add({ group: 'topk', arch: 'ResNet18', conv, mode: 'train', ...small });
  // 224 px, batch 16 (quick: MobileNetV1 only, one timed step)
  const large = { size: 224, batch: 16, warmup: 1, steps: q ? 2 : 3, minSteps: q ? 1 : 2, maxSeconds: q ? 3 : 40 };
  for (const arch of ['ResNet18', 'ResNet50', 'MobileNetV1'] as const) {
    if (q && arch !== 'MobileNetV1') continue;
    for (const conv of convs) {
      add({ group: '224px', arch, conv, mode: 'train', ...large });
      if (!q || conv === 'DenseConv') add({ group: '224px', arch, conv, mode: 'eval', ...large, warmup: 1, steps: q ? 2 : 5 });
    }
  }
  // every backend, the pure-JS cpu one included: a configuration small enough for it
  add({ group: 'smoke', arch: 'ResNet18', conv: 'STRConv', size: 32, batch: 4, widthMult: 0.25, mode: 'train', warmup: 1, steps: q ? 2 : 3, minSteps: 1, maxSeconds: 10, torch: false, classes: 10, backends: ['wasm', 'tensorflow', 'cpu'] });
  return filterCases(cases, o.filter);
}

function filterCases(cases: ModelCase[], filter?: string[]): ModelCase[] {
  if (!filter?.length) return cases;
  return cases.filter((c) => filter.some((f) => c.id.toLowerCase().includes(f.toLowerCase())));
}

// ---------------------------------------------------------------------------- worker side

/** One run as a worker reports it (the PyTorch worker replies with the same fields). */
export interface RunReply {
  ok: boolean;
  error?: string;
  stepMs: number[];
  loss: number;
  finite: boolean;
  rssAfterWarmupBytes: number;
  rssBytes: number;
  peakRssBytes: number;
  params: number;
  tensorsBefore?: number;
  tensorsAfterWarmup?: number;
  tensorsAfterSteps?: number;
  tensorsAfterDispose?: number;
  /** After warm-up and after every timed window: [numTensors, bytes the backend holds on the GPU (0 on CPU backends)]. */
  memTrace?: Array<[number, number]>;
  /** PyTorch on CUDA: the float32 flags in force, and its allocator's peak / current bytes. */
  precision?: { api: string; matmul: boolean | string; cudnnConv: boolean | string };
  gpuPeakBytes?: number;
  gpuBytes?: number;
}

/** Bytes of tensor data on the GPU (webgpu, webgl, tfjs-node-gpu report numBytesInGPU); 0 elsewhere. */
export function gpuBytesOf(m: { numBytesInGPU?: number }): number {
  return m.numBytesInGPU ?? 0;
}

export interface MemoryReply {
  ok: boolean;
  error?: string;
  backend: string;
  warmup: number;
  /** After every step (warm-up included). */
  numTensors: number[];
  rssBytes: number[];
  /** V8's heap (JS objects: tensor wrappers, tape, closures) and the wasm backend's linear memory. */
  heapTotalBytes: number[];
  heapUsedBytes: number[];
  wasmBytes: number[];
  /** tf.memory().numBytesInGPU after every step (0 on CPU backends). */
  gpuBytes: number[];
  stepMs: number[];
  tensorsBefore: number;
  tensorsAfterDispose: number;
  peakRssBytes: number;
}

type RunRequest = Omit<ModelCase, 'id' | 'group' | 'torch' | 'backends'>;

async function workerMain(backend: BenchBackend, threads?: number): Promise<void> {
  const tf = await import('../src/tf.js');
  const { initBackend, describeBackend } = await import('../src/backend/select.js');
  const { createModel } = await import('../src/models/registry.js');
  const { GMPConv } = await import('../src/nn/conv/index.js');
  const { Optimizer } = await import('../src/train/optimizer.js');
  const { makeCriterion } = await import('../src/train/loss.js');
  const { computeGradients } = await import('../src/train/loop.js');
  const { topkCorrect } = await import('../src/train/metrics.js');
  let initError: string | undefined;
  try {
    await initBackend(backend as Parameters<typeof initBackend>[0], (l) => process.stderr.write(l + '\n'), threads ? { threads } : undefined);
  } catch (e) {
    initError = String((e as Error)?.message ?? e);
  }

  /** A model with its cached batch and a step function (training step or eval pass). */
  function setUp(r: RunRequest) {
    const model = createModel(r.arch, {
      convType: r.conv, numClasses: r.classes, stem: 'imagenet', widthMult: r.widthMult ?? 1, seed: 0,
      sInitValue: S_INIT, pruneRate: PRUNE_RATE,
    });
    for (const [, c] of model.convLayers()) if (c instanceof GMPConv) c.setCurrPruneRate(c.pruneRate);
    const images = tf.randomNormal([r.batch, r.size, r.size, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const labels = tf.tensor1d(Array.from({ length: r.batch }, (_, i) => i % r.classes), 'int32');
    const batch = { images, labels, size: r.batch, indices: new Int32Array(r.batch) };
    const criterion = makeCriterion(0.1);
    let optimizer: InstanceType<typeof Optimizer> | undefined;
    /** One step; its result's first element is the loss (reading it back is the host sync). */
    let step: () => tf.Tensor;
    if (r.mode === 'train') {
      model.train();
      optimizer = new Optimizer(model, { optimizer: 'sgd', lr: 1e-3, momentum: 0.9, nesterov: false, weightDecay: 5e-5, noBnDecay: false });
      const opt = optimizer;
      step = () => {
        const { loss, grads, correct1, correct5 } = computeGradients(model, criterion, batch);
        opt.step(grads);
        tf.dispose([grads as never, correct1, correct5]);
        return loss;
      };
    } else {
      model.eval();
      // validate() reads the loss and both counts: one tensor [loss, top-1, top-5], read back
      // whole by steps() (asynchronously: GPU backends have no synchronous read in Node)
      step = () => tf.tidy(() => {
        const logits = model.forward(images);
        const [c1, c5] = topkCorrect(logits, labels);
        return tf.concat([criterion(logits, labels), c1, c5].map((t) => t.cast('float32').reshape([1])));
      });
    }
    const dispose = () => {
      model.dispose();
      optimizer?.dispose();
      tf.dispose([images, labels]);
    };
    return { model, step, dispose };
  }

  /** `n` steps, reading the last loss back (the host sync); the others are disposed unread. */
  async function steps(step: () => tf.Tensor, n: number): Promise<number> {
    let last: tf.Tensor | undefined;
    for (let i = 0; i < n; i++) {
      last?.dispose();
      last = step();
    }
    const v = (await last!.data())[0];
    last!.dispose();
    return v;
  }

  const rss = () => process.memoryUsage.rss();
  const peak = () => process.resourceUsage().maxRSS * 1024;

  async function run(r: RunRequest): Promise<Omit<RunReply, 'ok'>> {
    const tensorsBefore = tf.memory().numTensors;
    const s = setUp(r);
    try {
      const window = Math.max(1, r.window);
      let loss = NaN;
      for (let i = 0; i < r.warmup; i++) loss = await steps(s.step, 1);
      const tensorsAfterWarmup = tf.memory().numTensors;
      const rssAfterWarmupBytes = rss();
      const memSample = (): [number, number] => [tf.memory().numTensors, gpuBytesOf(tf.memory() as { numBytesInGPU?: number })];
      const memTrace = [memSample()];
      const stepMs: number[] = [];
      const end = performance.now() + r.maxSeconds * 1000;
      for (let done = 0; done < r.steps; done += window) {
        const t0 = performance.now();
        loss = await steps(s.step, window);
        stepMs.push((performance.now() - t0) / window);
        memTrace.push(memSample());
        if (performance.now() > end && stepMs.length >= r.minSteps) break;
      }
      const tensorsAfterSteps = tf.memory().numTensors;
      const params = s.model.numParameters();
      s.dispose();
      return {
        stepMs, loss, finite: Number.isFinite(loss), rssAfterWarmupBytes, rssBytes: rss(), peakRssBytes: peak(), params,
        tensorsBefore, tensorsAfterWarmup, tensorsAfterSteps, tensorsAfterDispose: tf.memory().numTensors, memTrace,
      };
    } catch (e) {
      s.dispose();
      throw e;
    }
  }

  /** Steps until `total`, or until `stopAfterSeconds` once past the warm-up (the GPU check's time guard). */
  async function memory(r: RunRequest & { total: number; stopAfterSeconds?: number }): Promise<Omit<MemoryReply, 'ok'>> {
    const stopAt = performance.now() + (r.stopAfterSeconds ?? Infinity) * 1000;
    const tensorsBefore = tf.memory().numTensors;
    const s = setUp(r);
    const numTensors: number[] = [];
    const rssBytes: number[] = [];
    const heapTotalBytes: number[] = [];
    const heapUsedBytes: number[] = [];
    const wasmBytes: number[] = [];
    const gpuBytes: number[] = [];
    const wasmMemory = () => (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8?.buffer.byteLength ?? 0;
    const stepMs: number[] = [];
    for (let i = 0; i < r.total && !(i > r.warmup && performance.now() > stopAt); i++) {
      const t0 = performance.now();
      await steps(s.step, 1);
      stepMs.push(performance.now() - t0);
      numTensors.push(tf.memory().numTensors);
      const u = process.memoryUsage();
      rssBytes.push(u.rss);
      heapTotalBytes.push(u.heapTotal);
      heapUsedBytes.push(u.heapUsed);
      wasmBytes.push(wasmMemory());
      gpuBytes.push(gpuBytesOf(tf.memory() as { numBytesInGPU?: number }));
    }
    s.dispose();
    return { backend: describeBackend(), warmup: r.warmup, numTensors, rssBytes, heapTotalBytes, heapUsedBytes, wasmBytes, gpuBytes, stepMs, tensorsBefore, tensorsAfterDispose: tf.memory().numTensors, peakRssBytes: peak() };
  }

  await serveLines(async (msg) => {
    if (msg.cmd === 'info') {
      if (initError) throw new Error(initError);
      return { backend: describeBackend(), tfjs: tf.version_core };
    }
    if (initError) throw new Error(initError);
    if (msg.cmd === 'run') return run(msg as unknown as RunRequest);
    if (msg.cmd === 'memory') return memory(msg as unknown as RunRequest & { total: number; stopAfterSeconds?: number });
    throw new Error(`unknown command ${String(msg.cmd)}`);
  });
}

// ---------------------------------------------------------------------------- orchestrator side

export interface SideResult {
  /** Every timed step of every round. */
  stepMs: number[];
  medianMs: number;
  imagesPerSec: number;
  peakRssMiB: number;
  finite: boolean;
  /** tf.memory().numTensors after warm-up and after the timed steps (the last round's). */
  tensorsAfterWarmup?: number;
  tensorsAfterSteps?: number;
  /** Tensors created by the timed steps and not released (0 = no leak). */
  leakedTensors?: number;
  /** Tensors still alive after the model, optimizer and batch were disposed (0 = clean). */
  tensorsLeftAfterDispose?: number;
  /** tf.memory() after warm-up and after every timed window (the last round's): numTensors and GPU MiB. */
  memory?: { numTensors: number[]; gpuMiB: number[]; flat: boolean };
  /** PyTorch on CUDA: the float32 flags in force and its allocator's peak GPU memory. */
  precision?: RunReply['precision'];
  gpuPeakMiB?: number;
  error?: string;
}

export interface CaseResult extends ModelCase {
  ours: Partial<Record<BenchBackend, SideResult>>;
  /** PyTorch; in GPU mode with TF32 off (strict float32). */
  pytorch?: SideResult;
  /** GPU mode: PyTorch with its default float32 settings (cuDNN convolutions may use TF32). */
  pytorchDefault?: SideResult;
  /** str-train images/s ÷ PyTorch images/s, per backend. */
  ratio: Partial<Record<BenchBackend, number>>;
  /** str-train images/s ÷ PyTorch-with-defaults images/s (GPU mode). */
  ratioDefault?: Partial<Record<BenchBackend, number>>;
}

export interface ModelsBenchResult {
  benchmark: 'models';
  quick: boolean;
  gpu: boolean;
  backends: Record<string, string>;
  skippedBackends: Record<string, string>;
  torch: { version: string; threads: number; device: string; gpu?: string; cuda?: string; cudnn?: number; defaultTf32?: unknown; note?: string } | { skipped: string };
  /** Cases not run because the deadline passed (GPU check's time guard). */
  skippedCases?: string[];
  rounds: number;
  /** true: a new worker process per case (peak RSS per case); false: the run's high-water mark. */
  freshWorkers: boolean;
  settings: { sInit: number; pruneRate: number; optimizer: string; labelSmoothing: number; stem: string };
  cases: CaseResult[];
}

export interface ModelsBenchOptions extends CaseOptions {
  /** Backends to try; a backend whose package is missing is skipped with its reason. */
  backends: BenchBackend[];
  torch: boolean;
  /** Rounds of alternation per case (default: quick 1, full 2). */
  rounds?: number;
  /**
   * New worker processes for every case, so each case's peak RSS is its own (default: full
   * mode). Otherwise the workers live for the whole run and peak RSS is their high-water mark.
   */
  freshWorkers?: boolean;
  wasmThreads?: number;
  /**
   * GPU mode without a CUDA PyTorch (a dry run on a CPU machine): time PyTorch on the CPU
   * anyway, labelled so, instead of skipping it.
   */
  cpuTorchFallback?: boolean;
  /** performance.now() after which no new case starts (the rest are listed as skipped). */
  deadline?: number;
  /** Called with the results so far after every case (the GPU check writes them at once). */
  onCase?: (partial: ModelsBenchResult) => void;
  log: (line: string) => void;
}

function summarise(replies: RunReply[], batch: number): SideResult {
  const bad = replies.find((r) => !r.ok);
  if (bad) return { stepMs: [], medianMs: NaN, imagesPerSec: NaN, peakRssMiB: NaN, finite: false, error: bad.error };
  const stepMs = replies.flatMap((r) => r.stepMs.map((t) => round(t, 2)));
  const med = median(stepMs);
  const out: SideResult = {
    stepMs,
    medianMs: round(med, 2),
    imagesPerSec: round((batch * 1000) / med, 2),
    peakRssMiB: round(Math.max(...replies.map((r) => r.peakRssBytes)) / 2 ** 20, 0),
    finite: replies.every((r) => r.finite),
  };
  const last = replies[replies.length - 1];
  if (last.memTrace?.length) {
    out.memory = {
      numTensors: last.memTrace.map(([n]) => n),
      gpuMiB: last.memTrace.map(([, b]) => round(b / 2 ** 20, 1)),
      flat: last.memTrace.every(([n, b]) => n === last.memTrace![0][0] && b === last.memTrace![0][1]),
    };
  }
  if (last.precision) out.precision = last.precision;
  if (replies.some((r) => r.gpuPeakBytes !== undefined)) out.gpuPeakMiB = round(Math.max(...replies.map((r) => r.gpuPeakBytes ?? 0)) / 2 ** 20, 0);
  if (replies[0].tensorsAfterSteps !== undefined) {
    const last = replies[replies.length - 1];
    out.tensorsAfterWarmup = last.tensorsAfterWarmup;
    out.tensorsAfterSteps = last.tensorsAfterSteps;
    out.leakedTensors = Math.max(...replies.map((r) => r.tensorsAfterSteps! - r.tensorsAfterWarmup!));
    out.tensorsLeftAfterDispose = Math.max(...replies.map((r) => r.tensorsAfterDispose! - r.tensorsBefore!));
  }
  return out;
}

function request(c: ModelCase, device?: string, precision?: TorchPrecision): object {
  const { id: _id, group: _g, torch: _t, backends: _b, ...r } = c;
  return { cmd: 'run', ...r, sInit: S_INIT, pruneRate: PRUNE_RATE, ...(device ? { device } : {}), ...(precision ? { precision } : {}) };
}

/** PyTorch's float32 modes on CUDA: strict (TF32 off) and its defaults. */
type TorchPrecision = 'fp32' | 'default';

export function startOursWorker(backend: BenchBackend, log: (l: string) => void, threads?: number): LineWorker {
  const args = [...scriptArgs('models'), '--worker', backend, ...(threads ? ['--threads', String(threads)] : [])];
  return new LineWorker(`str-train ${backend}`, process.execPath, args, log);
}

export async function benchModels(o: ModelsBenchOptions): Promise<ModelsBenchResult> {
  const log = o.log;
  const cases = modelCases(o);
  const rounds = o.rounds ?? (o.quick ? 1 : 2);
  const workers = new Map<BenchBackend, LineWorker>();
  const backends: Record<string, string> = {};
  const skipped: Record<string, string> = {};
  for (const b of o.backends) {
    const w = startOursWorker(b, log, o.wasmThreads);
    const info = await w.request<{ ok: boolean; backend?: string; error?: string }>({ cmd: 'info' })
      .catch((e: Error): { ok: boolean; backend?: string; error?: string } => ({ ok: false, error: e.message }));
    if (info.ok) {
      workers.set(b, w);
      backends[b] = info.backend!;
      log(`models: backend ${b}: ${info.backend}`);
    } else {
      skipped[b] = info.error ?? 'unavailable';
      log(`models: backend ${b} skipped: ${skipped[b]}`);
      await w.close();
    }
  }
  let torch: LineWorker | undefined;
  let startTorch: (() => LineWorker) | undefined;
  let torchInfo: ModelsBenchResult['torch'] = { skipped: 'disabled (--no-torch)' };
  let torchDevice = 'cpu';
  if (o.torch) {
    const py = findTorchPython();
    if (!py) {
      torchInfo = { skipped: 'python3-torch not found (apt-get install python3-torch)' };
      log(`models: PyTorch baseline skipped: ${torchInfo.skipped}`);
    } else {
      // libgomp's default busy-waiting makes 2-thread PyTorch steps 10-30x slower whenever another
      // process holds a core (measured here: 104 ms at 1 thread, 0.3-3.9 s at 2); passive waiting
      // keeps it at its 1-thread speed or better on a busy machine (108 ms there)
      startTorch = () => new LineWorker('pytorch', py, [path.join(REPO, 'bench', 'torch_models.py'), '--threads', String(o.gpu ? 8 : 2)], log,
        { OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? 'PASSIVE' });
      torch = startTorch();
      const info = await torch.request<{
        ok: boolean; torch: string; threads: number; cuda?: boolean; error?: string; device?: string; cudaVersion?: string; cudnn?: number; defaultTf32?: unknown;
      }>({ cmd: 'info' });
      if (!info.ok) {
        torchInfo = { skipped: info.error ?? 'failed to start' };
        await torch.close();
        torch = startTorch = undefined;
      } else if (o.gpu && !info.cuda && o.cpuTorchFallback) {
        torchInfo = { version: info.torch, threads: info.threads, device: 'cpu', note: 'NO CUDA: PyTorch ran on the CPU (dry run); its ratios say nothing about a GPU' };
        log(`models: PyTorch ${info.torch} has no CUDA device: timing it on the CPU (dry run only)`);
      } else if (o.gpu && !info.cuda) {
        // a CPU PyTorch against a GPU: no meaningful ratio
        torchInfo = { skipped: `torch ${info.torch} has no CUDA device` };
        await torch.close();
        torch = startTorch = undefined;
      } else {
        torchDevice = o.gpu ? 'cuda' : 'cpu';
        torchInfo = {
          version: info.torch, threads: info.threads, device: torchDevice,
          ...(o.gpu ? { gpu: info.device, cuda: info.cudaVersion, cudnn: info.cudnn, defaultTf32: info.defaultTf32 } : {}),
        };
        log(`models: PyTorch ${info.torch}, ${info.threads} threads, ${torchDevice}${info.device && o.gpu ? ` (${info.device}, CUDA ${info.cudaVersion}, cuDNN ${info.cudnn})` : ''}`);
      }
    }
  }
  const fresh = o.freshWorkers ?? !o.quick;
  /** New workers, each answered once: none is still starting up (importing torch, compiling wasm) while another is timed. */
  const restart = async (bs: BenchBackend[], withTorch: boolean) => {
    await Promise.all([...workers.values(), ...(torch ? [torch] : [])].map((w) => w.close()));
    workers.clear();
    for (const b of bs) workers.set(b, startOursWorker(b, log, o.wasmThreads));
    torch = withTorch ? startTorch?.() : undefined;
    for (const w of [...workers.values(), ...(torch ? [torch] : [])]) {
      const r = await w.request<{ ok: boolean; error?: string }>({ cmd: 'info' });
      if (!r.ok) throw new Error(`${w.name} worker failed to start: ${r.error}`);
    }
  };
  const available = [...workers.keys()];
  const results: CaseResult[] = [];
  const skippedCases: string[] = [];
  // GPU mode: PyTorch twice, strict float32 and its defaults (the same on a CPU: both run for the code path)
  const precisions: TorchPrecision[] = o.gpu ? ['fp32', 'default'] : ['fp32'];
  const partial = (): ModelsBenchResult => ({
    benchmark: 'models', quick: o.quick, gpu: !!o.gpu, backends, skippedBackends: skipped, torch: torchInfo, rounds, freshWorkers: fresh,
    settings: { sInit: S_INIT, pruneRate: PRUNE_RATE, optimizer: 'SGD lr 1e-3, momentum 0.9, weight decay 5e-5', labelSmoothing: 0.1, stem: 'imagenet (7x7/2 + max-pool; MobileNetV1 3x3/2), global average pool' },
    cases: results, ...(skippedCases.length ? { skippedCases } : {}),
  });
  try {
    for (const [k, c] of cases.entries()) {
      if (o.deadline !== undefined && performance.now() > o.deadline) {
        skippedCases.push(c.id);
        log(`models [${k + 1}/${cases.length}] ${c.id}: skipped (out of time)`);
        continue;
      }
      // the pure-JS cpu backend (~100x slower than wasm) only runs the cases that name it
      const wanted = available.filter((b) => (c.backends ? c.backends.includes(b) : b !== 'cpu'));
      if (wanted.length === 0) continue;
      if (fresh) await restart(wanted, !!startTorch && c.torch);
      const mine = [...workers.entries()].filter(([b]) => wanted.includes(b));
      const replies = new Map<BenchBackend, RunReply[]>(mine.map(([b]) => [b, []]));
      const torchReplies = new Map<TorchPrecision, RunReply[]>(precisions.map((p) => [p, []]));
      const t0 = performance.now();
      for (let r = 0; r < rounds; r++) {
        // ours then torch, the next round torch then ours: drift in the machine's load cancels out
        const order: Array<TorchPrecision | BenchBackend> = [...mine.map(([b]) => b), ...(torch && c.torch ? precisions : [])];
        const pt = torch;
        if (r % 2 === 1) order.reverse();
        for (const who of order) {
          if (who === 'fp32' || who === 'default') torchReplies.get(who)!.push(await pt!.request<RunReply>(request(c, torchDevice, o.gpu ? who : undefined)));
          else replies.get(who)!.push(await workers.get(who)!.request<RunReply>(request(c)));
        }
      }
      const res: CaseResult = { ...c, ours: {}, ratio: {} };
      for (const [b, rs] of replies) res.ours[b] = summarise(rs, c.batch);
      if (torchReplies.get('fp32')!.length) res.pytorch = summarise(torchReplies.get('fp32')!, c.batch);
      if (torchReplies.get('default')?.length) {
        res.pytorchDefault = summarise(torchReplies.get('default')!, c.batch);
        res.ratioDefault = {};
      }
      const parts: string[] = [];
      for (const [b, s] of Object.entries(res.ours) as [BenchBackend, SideResult][]) {
        if (s.error) {
          parts.push(`${b} FAILED: ${s.error}`);
          continue;
        }
        if (res.pytorch && !res.pytorch.error) res.ratio[b] = round(s.imagesPerSec / res.pytorch.imagesPerSec, 3);
        if (res.ratioDefault && !res.pytorchDefault!.error) res.ratioDefault[b] = round(s.imagesPerSec / res.pytorchDefault!.imagesPerSec, 3);
        const mem = s.memory && o.gpu ? `, ${s.memory.numTensors.at(-1)} tensors / ${s.memory.gpuMiB.at(-1)} MiB GPU${s.memory.flat ? '' : ' NOT FLAT'}` : '';
        parts.push(`${b} ${s.medianMs.toFixed(0)} ms = ${s.imagesPerSec.toFixed(1)} img/s${s.leakedTensors ? ` (LEAK ${s.leakedTensors} tensors)` : ''}${mem}`);
      }
      const torchPart = (name: string, t?: SideResult) => {
        if (t) parts.push(t.error ? `${name} FAILED: ${t.error}` : `${name} ${t.medianMs.toFixed(0)} ms = ${t.imagesPerSec.toFixed(1)} img/s`);
      };
      torchPart(o.gpu ? 'torch fp32' : 'torch', res.pytorch);
      torchPart('torch default', res.pytorchDefault);
      const ratios = [
        ...Object.entries(res.ratio).map(([b, x]) => `${b}/torch${o.gpu ? ' fp32' : ''} ${x!.toFixed(2)}x`),
        ...Object.entries(res.ratioDefault ?? {}).map(([b, x]) => `${b}/torch default ${x!.toFixed(2)}x`),
      ];
      log(`models [${k + 1}/${cases.length}] ${c.id}: ${[...parts, ...ratios].join(' | ')} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
      results.push(res);
      o.onCase?.(partial());
    }
  } finally {
    await Promise.all([...workers.values(), ...(torch ? [torch] : [])].map((w) => w.close()));
  }
  return partial();
}

// ---------------------------------------------------------------------------- memory flatness

export interface MemoryBenchResult {
  benchmark: 'memory';
  config: string;
  backend: string;
  /** Steps measured after the warm-up steps. */
  steps: number;
  warmup: number;
  numTensors: { afterWarmup: number; min: number; max: number; final: number; flat: boolean; leftAfterDispose: number };
  /** tf.memory().numBytesInGPU (GPU backends; all 0 on CPU backends). */
  gpuMiB: { afterWarmup: number; min: number; max: number; final: number; flat: boolean };
  rssMiB: {
    afterWarmup: number; final: number; max: number; growthPct: number; peakMiB: number;
    /** Growth over the second half of the measured steps: a leak keeps growing, heap sizing has settled. */
    midpoint: number; secondHalfGrowthPct: number;
  };
  /** Where RSS growth (warm-up end → final) comes from, MiB: V8's heap reservation, and the wasm linear memory. */
  growthMiB: { rss: number; v8HeapTotal: number; wasmMemory: number };
  medianStepMs: number;
  /** Every few steps: [step, numTensors, RSS MiB, V8 heapTotal MiB, V8 heapUsed MiB, wasm memory MiB]. */
  samples: Array<[number, number, number, number, number, number]>;
}

/** numTensors and RSS over `steps` training steps of one configuration, in a fresh process. */
export async function benchMemory(o: {
  quick: boolean; backend?: BenchBackend; log: (l: string) => void;
  /** Default: STR ResNet18 at 32 px, batch 32 (the issue's configuration). */
  config?: { arch: Arch; conv: ConvTypeName; size: number; batch: number };
  /** Override the step counts (default: quick 5 + 20, full 10 + 300). */
  warmup?: number;
  steps?: number;
  /** Stop measuring after this many seconds (at least one step past the warm-up); `steps` then says how many ran. */
  maxSeconds?: number;
}): Promise<MemoryBenchResult> {
  const warmup = o.warmup ?? (o.quick ? 5 : 10);
  // long enough to pass V8's first major collection (~step 120 here): until then its heap only grows
  const planned = o.steps ?? (o.quick ? 20 : 300);
  const total = warmup + planned;
  const c = { ...(o.config ?? { arch: 'ResNet18' as const, conv: 'STRConv' as const, size: 32, batch: 32 }), mode: 'train' as const, classes: 1000 };
  const config = `${c.arch}@${c.size} b${c.batch} ${c.conv} ${c.mode}`;
  const backend = o.backend ?? 'wasm';
  const w = startOursWorker(backend, o.log);
  try {
    const r = await w.request<MemoryReply>({ cmd: 'memory', ...c, warmup, total, window: 1, sInit: S_INIT, pruneRate: PRUNE_RATE, stopAfterSeconds: o.maxSeconds });
    if (!r.ok) throw new Error(`memory benchmark failed: ${r.error}`);
    const measured = r.numTensors.length - warmup;
    const after = r.numTensors.slice(warmup);
    const mib = (xs: number[]) => xs.map((b) => b / 2 ** 20);
    const rss = mib(r.rssBytes);
    const heapTotal = mib(r.heapTotalBytes);
    const heapUsed = mib(r.heapUsedBytes);
    const wasm = mib(r.wasmBytes);
    const base = rss[warmup - 1];
    const final = rss[rss.length - 1];
    const mid = Math.floor((warmup - 1 + rss.length - 1) / 2);
    const res: MemoryBenchResult = {
      benchmark: 'memory', config, backend: r.backend, steps: measured, warmup,
      numTensors: {
        afterWarmup: r.numTensors[warmup - 1], min: Math.min(...after), max: Math.max(...after), final: after[after.length - 1],
        flat: after.every((n) => n === r.numTensors[warmup - 1]), leftAfterDispose: r.tensorsAfterDispose - r.tensorsBefore,
      },
      gpuMiB: (() => {
        const g = mib(r.gpuBytes).map((x) => round(x, 2));
        const rest = g.slice(warmup);
        return { afterWarmup: g[warmup - 1], min: Math.min(...rest), max: Math.max(...rest), final: g[g.length - 1], flat: rest.every((x) => x === g[warmup - 1]) };
      })(),
      rssMiB: {
        afterWarmup: round(base, 1), final: round(final, 1), max: round(Math.max(...rss.slice(warmup)), 1),
        growthPct: round((100 * (final - base)) / base, 2), peakMiB: round(r.peakRssBytes / 2 ** 20, 1),
        midpoint: round(rss[mid], 1), secondHalfGrowthPct: round((100 * (final - rss[mid])) / rss[mid], 2),
      },
      growthMiB: {
        rss: round(final - base, 1), v8HeapTotal: round(heapTotal[heapTotal.length - 1] - heapTotal[warmup - 1], 1),
        wasmMemory: round(wasm[wasm.length - 1] - wasm[warmup - 1], 1),
      },
      medianStepMs: round(median(r.stepMs.slice(warmup)), 1),
      samples: r.numTensors.map((n, i) => [i + 1, n, round(rss[i], 1), round(heapTotal[i], 1), round(heapUsed[i], 1), round(wasm[i], 1)] as [number, number, number, number, number, number])
        .filter(([s]) => s % (o.quick ? 5 : 20) === 0 || s === warmup),
    };
    o.log(`memory ${config} (${backend}), ${warmup} + ${measured} steps: numTensors ${res.numTensors.afterWarmup} after warm-up, ${res.numTensors.min}..${res.numTensors.max} after (${res.numTensors.flat ? 'flat' : 'NOT flat'}); ` +
      (r.gpuBytes.some((b) => b > 0) ? `GPU ${res.gpuMiB.afterWarmup} -> ${res.gpuMiB.min}..${res.gpuMiB.max} MiB (${res.gpuMiB.flat ? 'flat' : 'NOT flat'}); ` : '') +
      `RSS ${res.rssMiB.afterWarmup} -> ${res.rssMiB.final} MiB (${res.rssMiB.growthPct >= 0 ? '+' : ''}${res.rssMiB.growthPct} %; second half ${res.rssMiB.secondHalfGrowthPct >= 0 ? '+' : ''}${res.rssMiB.secondHalfGrowthPct} %), ` +
      `V8 heap ${res.growthMiB.v8HeapTotal >= 0 ? '+' : ''}${res.growthMiB.v8HeapTotal} MiB, wasm memory ${res.growthMiB.wasmMemory >= 0 ? '+' : ''}${res.growthMiB.wasmMemory} MiB; peak ${res.rssMiB.peakMiB} MiB`);
    return res;
  } finally {
    await w.close();
  }
}

// ---------------------------------------------------------------------------- CLI

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
  const describe = opt('--describe');
  if (describe) {
    // the backend line str-train prints for `--backend <describe>` (the GPU check's adapter part)
    const { initBackend, describeBackend } = await import('../src/backend/select.js');
    await initBackend(describe as Parameters<typeof initBackend>[0], (l) => process.stderr.write(l + '\n'));
    process.stdout.write(describeBackend() + '\n');
    process.exit(0);
  }
  const worker = opt('--worker');
  if (worker) {
    await workerMain(worker as BenchBackend, opt('--threads') ? Number(opt('--threads')) : undefined);
    return;
  }
  const log = (l: string) => console.log(l);
  const res = await benchModels({
    quick: args.includes('--quick'),
    gpu: args.includes('--gpu'),
    backends: (opt('--backend') ?? (args.includes('--gpu') ? 'tensorflow' : 'wasm')).split(',') as BenchBackend[],
    torch: !args.includes('--no-torch'),
    filter: opt('--cases')?.split(','),
    log,
  });
  const json = opt('--json');
  if (json) writeFileSync(json, JSON.stringify(res, null, 2) + '\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === SELF) {
  main().catch((e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
