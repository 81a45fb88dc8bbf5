// End-to-end training step time with 1 and 2 workers through the real CLI (`--multigpu 0,1`: two
// worker processes joined by the local ring, gradients all-reduced before every step), on the wasm
// backend, global batch 32, for the quickstart model (configs/smallscale/fmnist-resnet18-str.yaml:
// STR ResNet18 at 1/4 width, small stem, 32 px) and a full-width ResNet18 with the ImageNet stem at
// 32 px (11.2M parameters: a 45 MB gradient all-reduce per step).
//   node --import tsx bench/multiworker.ts [--quick] [--json FILE]
//   node --import tsx bench/multiworker.ts --gpu 0,1,2,3 [--batch 256] [--steps 20] [--json FILE]
// --gpu (tfjs-node-gpu; see bench/README.md): STR and Dense ResNet50 at 224 px on synthetic
// ImageNet-sized JPEGs, batch 256 on device 0 alone, then over all listed devices with the same
// global batch (the reference's setting: --batch-size is global) and with 256 per device; print
// frequency 5, so the loop reads metrics back as it does in a real run (no per-step host sync),
// and the per-step time is the mean over the window from the meters' running averages.
// Each case is one epoch over synthetic images with --print-freq 1; ms/step is the median of the
// per-step "Time" values rank 0 prints (forward, backward, all-reduce, update, data wait), leaving
// out the first warm-up steps. On a CPU-only machine the workers share its cores, so two workers
// measure the overhead of the data-parallel path (and how the cores are shared), not GPU scaling:
// "1 worker, 2 threads" is the fair single-process baseline on 2 cores.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { writeSyntheticImageFolder } from '../src/data/synthetic.js';

const FROM_TS = import.meta.url.endsWith('.ts');
const REPO = fileURLToPath(new URL(FROM_TS ? '../' : '../../', import.meta.url));
const MAIN = fileURLToPath(new URL(`../src/cli/main.${FROM_TS ? 'ts' : 'js'}`, import.meta.url));
const QUICKSTART = join(REPO, 'configs/smallscale/fmnist-resnet18-str.yaml');

const MODELS: Record<string, string[]> = {
  'quickstart (STR ResNet18 x0.25, small stem, 32 px)': ['--config', QUICKSTART],
  'ResNet18 x1, ImageNet stem, 32 px (DenseConv)': ['--arch', 'ResNet18', '--stem', 'imagenet', '--width-mult', '1', '--conv-type', 'DenseConv', '--num-classes', '10'],
};

const CASES = [
  { name: '1 worker, 1 wasm thread', workers: 1, threads: 1 },
  { name: '1 worker, 2 wasm threads', workers: 1, threads: 2 },
  { name: '2 workers (--multigpu 0,1), 1 wasm thread each', workers: 2, threads: 1 },
];

export interface StepTimes {
  model: string;
  case: string;
  workers: number;
  wasmThreads: number;
  globalBatch: number;
  /** Steps timed (after warm-up). */
  steps: number;
  medianMs: number;
  meanMs: number;
  minMs: number;
  maxMs: number;
  imagesPerSecond: number;
  /** The wall time of the whole command (start-up, epoch, validation, checkpoints). */
  wallSeconds: number;
}

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string; ms: number }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, FROM_TS ? ['--import', 'tsx', MAIN, ...args] : [MAIN, ...args], { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve({ stdout, stderr, ms: performance.now() - t0 });
      else reject(new Error(`str-train ${args.join(' ')} exited with ${code}:\n${stdout.slice(-2000)}\n${stderr.slice(-2000)}`));
    });
  });
}

/** Per-step "Time" values (seconds) of rank 0's plain progress lines for epoch 0. */
export function stepTimes(stdout: string): number[] {
  return [...stdout.matchAll(/^Epoch: \[0\]\[ *\d+\/\d+\]\tTime +([\d.]+)/gm)].map((m) => Number(m[1]));
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Progress lines of epoch 0 as [step index, Time avg, Data avg] (seconds). */
export function meterAverages(stdout: string): Array<[number, number, number]> {
  return [...stdout.matchAll(/^Epoch: \[0\]\[ *(\d+)\/\d+\]\tTime +[\d.]+ \( *([\d.]+)\)\tData +[\d.]+ \( *([\d.]+)\)/gm)]
    .map((m) => [Number(m[1]), Number(m[2]), Number(m[3])]);
}

/** Mean per-step Time and Data (ms) over the steps after `warmup`, from the running averages. */
export function windowMeans(lines: Array<[number, number, number]>, warmup: number): { timeMs: number; dataMs: number; steps: number } | null {
  const a = lines.find(([i]) => i >= warmup - 1);
  const b = lines[lines.length - 1];
  if (!a || !b || b[0] <= a[0]) return null;
  const [na, nb] = [a[0] + 1, b[0] + 1];
  // (the averages are printed to 1 ms: a near-zero data wait can come out slightly negative)
  return { timeMs: (1000 * (b[1] * nb - a[1] * na)) / (nb - na), dataMs: Math.max(0, (1000 * (b[2] * nb - a[2] * na)) / (nb - na)), steps: nb - na };
}

export interface GpuOptions {
  /** Device ids, e.g. ['0', '1', '2', '3']. */
  devices: string[];
  /** Per-device batch (default 256). */
  batch?: number;
  /** Global steps per measured epoch at the largest global batch (default 20). */
  steps?: number;
  /** Decode threads per worker process (default: cores / devices). */
  workers?: number;
  /** Default 'tensorflow' (tfjs-node-gpu); 'wasm' only to try the code path on a machine without a GPU. */
  backend?: 'tensorflow' | 'wasm';
  log?: (l: string) => void;
}

/** ResNet50 images/s on tfjs-node-gpu over 1 and N devices (see the header). */
export async function benchMultiGpu(o: GpuOptions): Promise<object> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const per = o.batch ?? 256;
  const n = o.devices.length;
  const steps = o.steps ?? 20;
  const warmup = 5;
  const workers = o.workers ?? Math.max(1, Math.floor(cpus().length / n));
  const perClass = Math.ceil((per * n * steps) / 10);
  const data = join(tmpdir(), `str-train-bench-multigpu-${perClass * 10}`);
  if (!existsSync(join(data, '.complete'))) {
    log(`multigpu: writing ${perClass * 10} synthetic 500x375 JPEGs to ${data} (once)`);
    await writeSyntheticImageFolder({ out: data, classes: 10, perClass, valPerClass: 1, size: [500, 375], seed: 1 });
    writeFileSync(join(data, '.complete'), '');
  }
  const cases = [
    { devices: o.devices[0], batch: per },
    ...(n > 1 ? [{ devices: o.devices.join(','), batch: per }, { devices: o.devices.join(','), batch: per * n }] : []),
  ];
  const root = mkdtempSync(join(tmpdir(), 'str-bench-multigpu-'));
  const results: object[] = [];
  try {
    for (const conv of ['STRConv', 'DenseConv']) {
      for (const c of cases) {
        const args = [
          '--arch', 'ResNet50', '--conv-type', conv, '--num-classes', '10', '--data', data, '--set', 'ImageFolder',
          '--image-size', '224', '--val-resize', '256', '--backend', o.backend ?? 'tensorflow', '--batch-size', String(c.batch),
          '--epochs', '1', '--print-freq', '5', '--progress', 'plain', '--seed', '0', '--workers', String(workers),
          '--multigpu', c.devices, '--log-dir', join(root, `runs-${results.length}`),
        ];
        const r = await run(args, {});
        const m = windowMeans(meterAverages(r.stdout), warmup);
        if (!m) throw new Error(`no progress lines in the output of ${args.join(' ')}`);
        const devs = c.devices.split(',').length;
        const res = {
          model: `ResNet50 ${conv} 224 px`, devices: c.devices, globalBatch: c.batch, perDeviceBatch: c.batch / devs, steps: m.steps,
          msPerStep: +m.timeMs.toFixed(1), dataWaitMsPerStep: +m.dataMs.toFixed(1),
          imagesPerSecond: +((c.batch * 1000) / m.timeMs).toFixed(1),
          imagesPerSecondExcludingDataWait: +((c.batch * 1000) / (m.timeMs - m.dataMs)).toFixed(1),
          wallSeconds: +(r.ms / 1000).toFixed(1),
        };
        log(`multigpu ResNet50 ${conv} | devices ${c.devices}, global batch ${c.batch}: ${res.msPerStep} ms/step (data wait ${res.dataWaitMsPerStep}), ${res.imagesPerSecond} img/s`);
        results.push(res);
      }
    }
    return {
      benchmark: 'multigpu', machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version },
      devices: o.devices, perDeviceBatch: per, decodeThreadsPerWorker: workers, dataset: `${data} (500x375 JPEGs, 10 classes)`,
      note: 'ms/step = mean over the steps after the first 5 (from the Time/Data running averages, print frequency 5); '
        + 'imagesPerSecondExcludingDataWait shows what the GPUs do when the loader keeps up.',
      results,
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

export async function benchMultiworker(opts: { quick: boolean }): Promise<object> {
  const batch = 32;
  const steps = opts.quick ? 5 : 20; // multiples of 5: 10 classes × (steps·32/10) images
  const warmup = opts.quick ? 2 : 4;
  const root = mkdtempSync(join(tmpdir(), 'str-bench-multiworker-'));
  const log = (l: string) => process.stderr.write(l + '\n');
  try {
    const data = join(root, 'data');
    // 10 classes like the quickstart's data; exactly `steps` global batches per epoch
    await writeSyntheticImageFolder({ out: data, classes: 10, perClass: (steps * batch) / 10, valPerClass: 1, size: [36, 36], seed: 1 });
    const results: StepTimes[] = [];
    for (const [model, modelArgs] of Object.entries(MODELS)) {
      for (const c of CASES) {
        const args = [
          ...modelArgs, '--data', data, '--set', 'ImageFolder', '--image-size', '32', '--val-resize', '32', '--backend', 'wasm',
          '--batch-size', String(batch), '--epochs', '1', '--print-freq', '1', '--progress', 'plain', '--seed', '0', '--workers', '1',
          '--log-dir', join(root, `runs-${results.length}`),
          ...(c.workers > 1 ? ['--multigpu', Array.from({ length: c.workers }, (_, i) => i).join(',')] : []),
        ];
        const r = await run(args, { STR_TRAIN_WASM_THREADS: String(c.threads) });
        const times = stepTimes(r.stdout).slice(warmup).map((s) => s * 1000);
        if (times.length === 0) throw new Error(`no step times in the output of ${args.join(' ')}`);
        const med = median(times);
        const t: StepTimes = {
          model,
          case: c.name,
          workers: c.workers,
          wasmThreads: c.threads,
          globalBatch: batch,
          steps: times.length,
          medianMs: +med.toFixed(1),
          meanMs: +(times.reduce((a, b) => a + b, 0) / times.length).toFixed(1),
          minMs: +Math.min(...times).toFixed(1),
          maxMs: +Math.max(...times).toFixed(1),
          imagesPerSecond: +((batch * 1000) / med).toFixed(1),
          wallSeconds: +(r.ms / 1000).toFixed(1),
        };
        log(`${model} | ${c.name}: ${t.medianMs} ms/step (median of ${t.steps}; min ${t.minMs}, max ${t.maxMs}), ${t.imagesPerSecond} img/s, wall ${t.wallSeconds} s`);
        results.push(t);
      }
    }
    return {
      benchmark: 'multiworker',
      machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version },
      note:
        'CPU only: the workers share the machine\'s cores, so "2 workers" shows the cost of the data-parallel path ' +
        '(per-step all-reduce of the whole gradient over the local ring, process start-up) against "1 worker, 2 threads", not GPU scaling.',
      quick: opts.quick,
      results,
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const argv = process.argv.slice(2);
  const jsonAt = argv.indexOf('--json');
  const gpuAt = argv.indexOf('--gpu');
  const arg = (name: string) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
  const out = gpuAt >= 0
    ? await benchMultiGpu({
      devices: (argv[gpuAt + 1] ?? '0').split(','), batch: arg('--batch') ? Number(arg('--batch')) : undefined,
      steps: arg('--steps') ? Number(arg('--steps')) : undefined, backend: arg('--backend') as 'wasm' | undefined,
    })
    : await benchMultiworker({ quick: argv.includes('--quick') });
  const text = JSON.stringify(out, null, 2);
  if (jsonAt >= 0 && argv[jsonAt + 1]) writeFileSync(argv[jsonAt + 1], text + '\n');
  else process.stdout.write(text + '\n');
}
