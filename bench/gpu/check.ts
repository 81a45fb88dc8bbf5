/**
 * The GPU check of issue 11 (item 4), one part per process so that bench/gpu/run.sh can put a
 * time limit on each and a hung part cannot take the others' results with it. Every part writes
 * DIR/<part>.json (the files committed to bench/results/gpu/<device>/); `report` renders
 * DIR/RESULTS.md from whichever exist.
 *
 *   node dist/bench/gpu/check.js adapter     --out DIR [--tiny]
 *   node dist/bench/gpu/check.js correctness --out DIR [--seconds S]
 *   node dist/bench/gpu/check.js models      --out DIR [--tiny] [--seconds S] [--backend webgpu] [--cases SUBSTR,...]
 *   node dist/bench/gpu/check.js memory      --out DIR [--tiny] [--backend webgpu]
 *   node dist/bench/gpu/check.js data        --out DIR [--tiny] [--data DIR]    (writes the JPEGs only, no file in DIR)
 *   node dist/bench/gpu/check.js loader      --out DIR [--tiny] [--data DIR]
 *   node dist/bench/gpu/check.js feed        --out DIR [--tiny] [--seconds S] [--data DIR] [--backend webgpu]
 *   node dist/bench/gpu/check.js report      --out DIR [--skipped PART,...]
 *
 * --tiny: the same parts at sizes a software adapter (llvmpipe) finishes in minutes — the dry
 * run on a machine without a GPU; its numbers mean nothing and RESULTS.md says so.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findTorchPython, FROM_TS, machineFacts, REPO, round, scriptArgs } from '../common.js';
import { benchLoader } from '../loader.js';
import { benchMemory, benchModels, type BenchBackend, type CaseResult, type MemoryBenchResult, type ModelsBenchResult, type SideResult } from '../models.js';
import { meterAverages, windowMeans } from '../multiworker.js';

const SELF = fileURLToPath(import.meta.url);
const PARTS = ['adapter', 'correctness', 'models', 'memory', 'data', 'loader', 'feed', 'report'] as const;
type Part = (typeof PARTS)[number];

/** Issue 11's goals, checked in RESULTS.md. */
export const GOALS = { resnet50TrainVsTorchFp32: 0.3, strOverDense: 1.15 };
/** Decode threads / DataLoader workers for the loader comparison and the feed run (the GPU machine has 16 cores). */
const GPU_WORKERS = 14;

interface Options {
  part: Part;
  out: string;
  tiny: boolean;
  seconds: number;
  backend: BenchBackend;
  cases?: string[];
  data?: string;
  /** Parts run.sh skipped for lack of time (named in RESULTS.md). */
  skipped: string[];
}

function parseArgs(argv: string[]): Options {
  const part = argv[0] as Part;
  if (!PARTS.includes(part)) throw new Error(`check: expected a part (${PARTS.join(', ')}), got '${argv[0] ?? ''}'`);
  const val = (name: string) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
  const out = val('--out');
  if (!out) throw new Error('check: --out DIR is required');
  return {
    part, out: path.resolve(out), tiny: argv.includes('--tiny'), seconds: Number(val('--seconds') ?? 300),
    backend: (val('--backend') ?? 'webgpu') as BenchBackend, cases: val('--cases')?.split(','), data: val('--data'),
    skipped: val('--skipped')?.split(',').filter(Boolean) ?? [],
  };
}

/** Written atomically: a part killed by its time limit leaves the previous complete file. */
function writeJson(o: Options, name: string, value: object): void {
  const file = path.join(o.out, `${name}.json`);
  writeFileSync(`${file}.tmp`, JSON.stringify(value, null, 2) + '\n');
  renameSync(`${file}.tmp`, file);
}

function readJson<T>(dir: string, name: string): T | undefined {
  const file = path.join(dir, `${name}.json`);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

const log = (l: string) => console.log(l);

/** nvidia-smi's view of the GPUs, or why there is none. */
function nvidiaSmi(): { gpus?: Array<Record<string, string>>; error?: string } {
  const fields = ['name', 'driver_version', 'memory.total', 'memory.used', 'pci.bus_id', 'clocks.sm', 'clocks.max.sm', 'power.limit', 'temperature.gpu', 'utilization.gpu'];
  try {
    const csv = execFileSync('nvidia-smi', [`--query-gpu=${fields.join(',')}`, '--format=csv,noheader'], { encoding: 'utf8', timeout: 20_000 });
    return { gpus: csv.trim().split('\n').map((line) => Object.fromEntries(line.split(', ').map((v, i) => [fields[i], v.trim()]))) };
  } catch (e) {
    return { error: String((e as Error).message).split('\n')[0] };
  }
}

/** A node child process to its end or `timeoutMs` (code null: killed, or it could not start; stderr says which). */
function node(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000): { code: number | null; stdout: string; stderr: string; ms: number } {
  const t0 = performance.now();
  try {
    const stdout = execFileSync(process.execPath, args, {
      cwd: REPO, env: { ...process.env, ...env }, encoding: 'utf8', timeout: Math.max(1, Math.floor(timeoutMs)), stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26,
    });
    return { code: 0, stdout, stderr: '', ms: performance.now() - t0 };
  } catch (e) {
    const err = e as { status?: number | null; signal?: string | null; stdout?: string; stderr?: string; message?: string };
    const why = err.signal ? `killed by ${err.signal}` : err.status == null ? String(err.message).split('\n')[0] : '';
    return { code: err.status ?? null, stdout: err.stdout ?? '', stderr: `${err.stderr ?? ''}${why ? `\n${why}` : ''}`, ms: performance.now() - t0 };
  }
}

// ------------------------------------------------------------------------------------ parts

async function partAdapter(o: Options): Promise<void> {
  const adapters: object[] = [];
  for (const instance of ['default', 'opengles']) {
    const probe = node([...scriptArgs('gpu/adapter'), '--instance', instance], {}, 30_000);
    if (probe.code === 0) adapters.push(...(JSON.parse(probe.stdout.trim().split('\n').pop()!) as object[]));
    else adapters.push({ instance, featureLevel: '-', adapter: null, error: `${probe.stderr.trim().split('\n').slice(-3).join(' | ')} (exit ${probe.code})` });
  }
  // str-train's own choice: the backend line of the models worker (the same code as `--backend webgpu`)
  const backendLine = node([...scriptArgs('models'), '--describe', o.backend], {}, 90_000);
  const smi = nvidiaSmi();
  let torch: unknown;
  try {
    const py = findTorchPython('torch, torchvision');
    if (!py) throw new Error('no python3 with torch and torchvision');
    torch = JSON.parse(execFileSync(py, ['-c', 'import json, torch, torchvision; print(json.dumps({"torch": torch.__version__, "torchvision": torchvision.__version__, "cuda": torch.version.cuda, "cudaAvailable": torch.cuda.is_available(), "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}))'], { encoding: 'utf8', timeout: 60_000 }));
  } catch (e) {
    torch = { error: String((e as Error).message).split('\n')[0] };
  }
  const res = {
    part: 'adapter', tiny: o.tiny, machine: machineFacts(), nvidiaSmi: smi,
    // the device gets no .git: the commit comes from .gpu/MANIFEST (run.sh)
    build: process.env.STR_GPU_BUILD ?? null,
    env: Object.fromEntries(['VK_DRIVER_FILES', 'VK_ICD_FILENAMES', 'EGL_PLATFORM', '__EGL_VENDOR_LIBRARY_FILENAMES'].filter((k) => process.env[k]).map((k) => [k, process.env[k]])),
    dawn: adapters,
    strTrainBackend: backendLine.code === 0 ? backendLine.stdout.trim().split('\n').pop() : `FAILED: ${backendLine.stderr.trim().split('\n').slice(-3).join(' | ')}`,
    strTrainBackendLog: backendLine.stderr.trim().split('\n').slice(-10),
    torch,
  };
  for (const g of smi.gpus ?? []) log(`nvidia-smi: ${g.name}, driver ${g.driver_version}, ${g['memory.total']}`);
  if (smi.error) log(`nvidia-smi: ${smi.error}`);
  for (const a of adapters as Array<{ instance: string; featureLevel: string; adapter: { info: Record<string, unknown>; fallback: boolean } | null; error?: string }>) {
    log(`dawn ${a.instance}, ${a.featureLevel}: ${a.adapter ? `${JSON.stringify(a.adapter.info)}${a.adapter.fallback ? ' (fallback)' : ''}` : a.error ?? 'no adapter'}`);
  }
  log(`str-train --backend ${o.backend}: ${res.strTrainBackend}`);
  log(`torch: ${JSON.stringify(torch)}`);
  writeJson(o, 'adapter', res);
}

/** The webgpu-vs-cpu kernel comparisons and SGD-step parity tests (test/backend/webgpu-*.test.ts) on this machine's adapter. */
async function partCorrectness(o: Options): Promise<void> {
  const dir = path.join(REPO, FROM_TS ? 'test' : 'dist/test', 'backend');
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => /^webgpu-.*\.test\.(js|ts)$/.test(f) && f.endsWith(FROM_TS ? '.ts' : '.js')).sort() : [];
  if (files.length === 0) {
    writeJson(o, 'correctness', { part: 'correctness', skipped: `no webgpu-*.test files in ${path.relative(REPO, dir)}` });
    log('correctness: no webgpu test files; skipped');
    return;
  }
  const per: Array<Record<string, unknown>> = [];
  const deadline = performance.now() + o.seconds * 1000;
  for (const f of files) {
    const left = deadline - performance.now();
    if (left < 5_000) {
      per.push({ file: f, skipped: 'out of time' });
      continue;
    }
    const r = node(['--test', '--test-reporter=tap', path.join(dir, f)], {}, left);
    // the summary lines, or (a run stopped at its limit has none) the top-level results so far
    const complete = /^# tests \d+/m.test(r.stdout);
    const top = (re: RegExp) => [...r.stdout.matchAll(re)].length;
    const count = (k: string) => Number(r.stdout.match(new RegExp(`^# ${k} (\\d+)`, 'm'))?.[1] ?? NaN);
    const tally = complete
      ? { tests: count('tests'), pass: count('pass'), fail: count('fail'), skipped: count('skipped') }
      : { tests: top(/^(?:not )?ok \d+ - /gm), pass: top(/^ok \d+ - (?!.*# SKIP)/gm), fail: top(/^not ok \d+ - /gm), skipped: top(/^ok \d+ - .*# SKIP/gm) };
    const failures = [...r.stdout.matchAll(/^\s*not ok \d+ - (.*)$/gm)].map((m) => m[1]);
    const skips = [...r.stdout.matchAll(/^\s*ok \d+ - (.*) # SKIP(.*)$/gm)].map((m) => `${m[1]}:${m[2]}`);
    const row = {
      file: f, exit: r.code, complete, seconds: round(r.ms / 1000, 1), ...tally,
      failures, skips, ...(r.code !== 0 ? { tail: (r.stdout + r.stderr).slice(-3000) } : {}),
    };
    per.push(row);
    log(`correctness ${f}: ${row.pass} pass, ${row.fail} fail, ${row.skipped} skipped (${row.seconds} s)${complete ? '' : ', STOPPED before the end'}${failures.length ? `; failed: ${failures.join('; ')}` : ''}${skips.length ? `; skipped: ${skips.slice(0, 3).join('; ')}` : ''}`);
    if (r.code === null) log(`correctness ${f}: ${r.stderr.trim().split('\n').pop()}`);
    // after every file: a part stopped at its limit keeps the files done
    writeJson(o, 'correctness', { part: 'correctness', files: [...per, ...files.slice(per.length).map((file) => ({ file, skipped: 'not reached' }))], passed: false, complete: false });
  }
  writeJson(o, 'correctness', { part: 'correctness', files: per, passed: per.every((p) => p.exit === 0 && !p.skipped) });
}

async function partModels(o: Options): Promise<void> {
  const res = await benchModels({
    quick: false, gpu: true, tiny: o.tiny, backends: [o.backend], torch: true, rounds: 1, freshWorkers: false,
    cpuTorchFallback: true, filter: o.cases, deadline: performance.now() + o.seconds * 1000, log,
    onCase: (partial) => writeJson(o, 'models', { ...partial, tiny: o.tiny, complete: false }),
  });
  writeJson(o, 'models', { ...res, tiny: o.tiny, complete: true });
}

async function partMemory(o: Options): Promise<void> {
  const res = await benchMemory({
    quick: false, backend: o.backend, log,
    config: o.tiny ? { arch: 'ResNet18', conv: 'STRConv', size: 32, batch: 2 } : { arch: 'ResNet18', conv: 'STRConv', size: 32, batch: 128 },
    warmup: o.tiny ? 2 : 5, steps: o.tiny ? 3 : 200, maxSeconds: Math.max(5, o.seconds - 15),
  });
  writeJson(o, 'memory', { ...res, tiny: o.tiny });
}

/** The synthetic ImageNet-like folder the loader and feed parts share (written once per machine). */
function dataDir(o: Options): string {
  return o.data ?? path.join(os.tmpdir(), `str-gpu-check-data${o.tiny ? '-tiny' : ''}`);
}
/** Train images per class (10 classes): enough for 31 feed steps of batch 64; val gets half. */
const perClass = (o: Options) => (o.tiny ? 6 : 200);

/** The dataset alone (run.sh starts this in the background while the GPU parts run). */
async function partData(o: Options): Promise<void> {
  await benchLoader({ quick: true, dir: dataDir(o), perClass: perClass(o), workers: [], torch: false, overlap: false, log });
  log(`data: ${dataDir(o)} ready`);
}

async function partLoader(o: Options): Promise<void> {
  const workers = o.tiny ? 2 : GPU_WORKERS;
  const res = await benchLoader({
    quick: false, dir: dataDir(o), perClass: perClass(o), workers: [workers], epochs: o.tiny ? 2 : 3, reps: 1, overlap: false, log,
  });
  writeJson(o, 'loader', { ...res, part: 'loader', tiny: o.tiny });
}

/** A real-data training run through the CLI on the GPU backend, --workers N: how long each step waits for data. */
async function partFeed(o: Options): Promise<void> {
  const data = dataDir(o);
  if (!existsSync(path.join(data, '.complete'))) await partData(o); // run alone
  const workers = o.tiny ? 2 : GPU_WORKERS;
  const batch = o.tiny ? 6 : 64;
  const size = o.tiny ? 32 : 224;
  const printFreq = o.tiny ? 1 : 5;
  const logDir = path.join(os.tmpdir(), `str-gpu-check-feed-${process.pid}`);
  const args = [
    '--arch', o.tiny ? 'ResNet18' : 'ResNet50', ...(o.tiny ? ['--width-mult', '0.25'] : []), '--conv-type', 'STRConv', '--num-classes', '10', '--data', data, '--set', 'ImageFolder',
    '--image-size', String(size), '--val-resize', String(o.tiny ? 36 : 256), '--backend', o.backend, '--batch-size', String(batch),
    '--epochs', '1', '--print-freq', String(printFreq), '--progress', 'plain', '--seed', '0', '--workers', String(workers), '--log-dir', logDir,
  ];
  const main = path.join(REPO, FROM_TS ? 'src/cli/main.ts' : 'dist/src/cli/main.js');
  const t0 = performance.now();
  const child = spawn(process.execPath, [...process.execArgv, main, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d;
    process.stdout.write(d);
  });
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d).slice(-20_000)));
  const timer = setTimeout(() => child.kill('SIGTERM'), o.seconds * 1000);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  rmSync(logDir, { recursive: true, force: true });
  // per-step lines: "Epoch: [0][ 5/31]\tTime  0.412 ( 0.530)\tData  0.002 ( 0.080)"
  const steps = [...stdout.matchAll(/^Epoch: \[0\]\[ *(\d+)\/(\d+)\]\tTime +([\d.]+) \( *([\d.]+)\)\tData +([\d.]+) \( *([\d.]+)\)/gm)]
    .map((m) => ({ step: Number(m[1]), of: Number(m[2]), timeMs: round(1000 * Number(m[3]), 1), dataMs: round(1000 * Number(m[5]), 1) }));
  const warmup = o.tiny ? 1 : 5;
  const m = windowMeans(meterAverages(stdout), warmup);
  const res = {
    part: 'feed', tiny: o.tiny, command: `str-train ${args.join(' ')}`, exit: code, wallSeconds: round((performance.now() - t0) / 1000, 1),
    backendLine: stderr.split('\n').find((l) => /backend/i.test(l)) ?? null,
    workers, batch, imageSize: size,
    note: `step = the loop's Time (data wait + forward + backward + update); data = the wait for the next batch; the mean is over the steps after the first ${warmup} (from the printed running averages, every ${printFreq} steps)`,
    afterWarmup: m ? { steps: m.steps, msPerStep: round(m.timeMs, 1), dataWaitMsPerStep: round(m.dataMs, 1), imagesPerSec: round((batch * 1000) / m.timeMs, 1), dataWaitShare: round(m.dataMs / m.timeMs, 3) } : null,
    printedSteps: steps,
    ...(code !== 0 ? { tail: (stdout.slice(-2000) + '\n' + stderr.slice(-3000)).trim() } : {}),
  };
  if (res.afterWarmup) log(`feed: ${res.afterWarmup.msPerStep} ms/step, data wait ${res.afterWarmup.dataWaitMsPerStep} ms/step (${(100 * res.afterWarmup.dataWaitShare).toFixed(1)} %), ${res.afterWarmup.imagesPerSec} img/s with --workers ${workers}`);
  else log(`feed: no timed steps (exit ${code})${code !== 0 ? `: ${stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}`);
  writeJson(o, 'feed', res);
}

// ------------------------------------------------------------------------------------ report

const fmt = (x: number | undefined, d = 1) => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));

interface Adapter { build?: string | null; nvidiaSmi?: { gpus?: Array<Record<string, string>>; error?: string }; strTrainBackend?: string; torch?: Record<string, unknown>; dawn?: unknown; tiny?: boolean; machine?: { cpu: string; cores: number; node: string; commit: string | null; date: string } }

/** RESULTS.md from the parts' JSON files in `dir`. */
export function renderGpuReport(dir: string, skipped: string[] = []): string {
  const adapter = readJson<Adapter>(dir, 'adapter');
  const correctness = readJson<{ skipped?: string; passed?: boolean; files?: Array<Record<string, unknown>> }>(dir, 'correctness');
  const models = readJson<ModelsBenchResult & { tiny?: boolean; complete?: boolean }>(dir, 'models');
  const memory = readJson<MemoryBenchResult & { tiny?: boolean }>(dir, 'memory');
  const loader = readJson<{ results: Array<Record<string, number | string>>; torch?: Record<string, string> | null; dataset?: { images: Record<string, number> } }>(dir, 'loader');
  const feed = readJson<{ command: string; exit: number | null; afterWarmup: { steps: number; msPerStep: number; dataWaitMsPerStep: number; imagesPerSec: number; dataWaitShare: number } | null; workers: number; tail?: string; backendLine?: string | null }>(dir, 'feed');
  const tiny = adapter?.tiny || models?.tiny;
  const gpu = adapter?.nvidiaSmi?.gpus?.[0];
  const out: string[] = [];
  out.push(`# GPU check (issue 11): str-train on WebGPU vs PyTorch CUDA${gpu ? ` — ${gpu.name}` : ''}`, '');
  if (tiny) out.push('**DRY RUN (--tiny) on a machine without a GPU: software adapter, tiny sizes, PyTorch on the CPU. The numbers below only show that every part runs; they say nothing about GPU speed.**', '');
  out.push('Written by `bench/gpu/run.sh` (see bench/gpu/README.md). Every figure comes from the same run on the same machine.', '');
  if (skipped.length) out.push(`**Not run for lack of time: ${skipped.join(', ')}.**`, '');
  out.push('## Device', '');
  if (gpu) out.push(`- GPU: ${gpu.name}, driver ${gpu.driver_version}, ${gpu['memory.total']} (nvidia-smi; SM clock ${gpu['clocks.sm']} of ${gpu['clocks.max.sm']}, power limit ${gpu['power.limit']})`);
  else out.push(`- nvidia-smi: ${adapter?.nvidiaSmi?.error ?? 'not run'}`);
  out.push(`- str-train backend: ${adapter?.strTrainBackend ?? 'not run'}`);
  const t = adapter?.torch;
  if (t) out.push(`- PyTorch: ${t.error ? t.error : `${t.torch}, torchvision ${t.torchvision}, CUDA ${t.cuda ?? 'none'}${t.device ? `, ${t.device}` : ''}`}`);
  if (models && 'version' in models.torch && models.torch.cudnn) out.push(`- cuDNN ${models.torch.cudnn}; PyTorch's default TF32 flags: ${JSON.stringify(models.torch.defaultTf32)}`);
  if (adapter?.machine) out.push(`- host: ${adapter.machine.cpu}, ${adapter.machine.cores} cores, node ${adapter.machine.node}, ${adapter.build ?? `commit ${adapter.machine.commit ?? '?'}`}, ${adapter.machine.date}`);
  out.push('');

  out.push('## Correctness on this adapter', '');
  if (!correctness) out.push('Not run.');
  else if (correctness.skipped) out.push(`Skipped: ${correctness.skipped}.`);
  else {
    out.push('| test file | pass | fail | skipped | s |', '| --- | --- | --- | --- | --- |');
    for (const f of correctness.files ?? []) {
      if (typeof f.skipped === 'string') out.push(`| ${f.file} | not run: ${f.skipped} | | | |`);
      else out.push(`| ${f.file}${f.complete === false ? ' (stopped at its time limit)' : ''} | ${f.pass} | ${f.fail} | ${f.skipped} | ${f.seconds} |`);
    }
    const failed = (correctness.files ?? []).flatMap((f) => (f.failures as string[] | undefined) ?? []);
    if (failed.length) out.push('', `Failed: ${failed.join('; ')}`);
  }
  out.push('');

  out.push('## Training and eval steps', '');
  if (!models) out.push('Not run.', '');
  else {
    const b = Object.keys(models.backends)[0] as BenchBackend | undefined;
    const torchCpu = 'device' in models.torch && models.torch.device === 'cpu';
    if (b) out.push(`str-train backend \`${b}\`: ${models.backends[b]}.`);
    for (const [k, v] of Object.entries(models.skippedBackends)) out.push(`Backend ${k} skipped: ${v}.`);
    if ('skipped' in models.torch) out.push(`PyTorch skipped: ${models.torch.skipped}.`);
    else if (torchCpu) out.push(`**PyTorch ran on the CPU (no CUDA)**: ${models.torch.note ?? ''}`);
    out.push('', 'Median step time after warm-up; the loss is read back every 5 steps (1 in --tiny). "fp32" = PyTorch with TF32 off (strict float32); "default" = PyTorch\'s defaults (cuDNN may use TF32). ratio = str-train images/s ÷ PyTorch images/s. Memory = tf.memory() after warm-up → after the last window (tensors; MiB of tensor data on the GPU).', '');
    out.push('| configuration | str-train ms/step | img/s | PyTorch fp32 ms | img/s | ratio | PyTorch default ms | img/s | ratio | tensors | GPU MiB |', '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    const side = (s?: SideResult) => (s ? (s.error ? [`FAILED: ${s.error.slice(0, 80)}`, ''] : [fmt(s.medianMs), fmt(s.imagesPerSec)]) : ['–', '–']);
    for (const c of models.cases) {
      const ours = b ? c.ours[b] : undefined;
      const mem = ours?.memory;
      out.push(`| ${c.id} | ${side(ours).join(' | ')} | ${side(c.pytorch).join(' | ')} | ${fmt(b ? c.ratio[b] : undefined, 2)} | ${side(c.pytorchDefault).join(' | ')} | ${fmt(b ? c.ratioDefault?.[b] : undefined, 2)} | ` +
        `${mem ? `${mem.numTensors[0]} → ${mem.numTensors.at(-1)}${mem.flat ? '' : ' ⚠'}` : '–'} | ${mem ? `${mem.gpuMiB[0]} → ${mem.gpuMiB.at(-1)}` : '–'} |`);
    }
    if (models.skippedCases?.length) out.push('', `Not run (out of time): ${models.skippedCases.join('; ')}.`);
    if (models.complete === false) out.push('', '**Incomplete**: the models part was stopped at its time limit.');
    out.push('', '### STRConv step ÷ DenseConv step', '', '| configuration | str-train | PyTorch fp32 | PyTorch default |', '| --- | --- | --- | --- |');
    const pairs = strDensePairs(models.cases, b);
    for (const p of pairs) out.push(`| ${p.id} | ${fmt(p.ours, 2)} | ${fmt(p.torch, 2)} | ${fmt(p.torchDefault, 2)} |`);
    out.push('', '### Goals (issue 11)', '', '| goal | measured | |', '| --- | --- | --- |');
    const r50 = models.cases.filter((c) => c.arch === 'ResNet50' && c.mode === 'train');
    for (const c of r50) {
      const r = b ? c.ratio[b] : undefined;
      out.push(`| ${c.id}: str-train ≥ ${GOALS.resnet50TrainVsTorchFp32}× PyTorch strict-fp32 images/s | ${fmt(r, 2)}× | ${verdict(r !== undefined ? r >= GOALS.resnet50TrainVsTorchFp32 : undefined, tiny || torchCpu)} |`);
    }
    for (const p of pairs) out.push(`| ${p.id}: STRConv step ≤ ${GOALS.strOverDense}× DenseConv step | ${fmt(p.ours, 2)}× | ${verdict(p.ours !== undefined ? p.ours <= GOALS.strOverDense : undefined, tiny)} |`);
    const mems = models.cases.map((c) => (b ? c.ours[b]?.memory : undefined)).filter((m): m is NonNullable<SideResult['memory']> => !!m);
    if (mems.length) out.push(`| tf.memory() numTensors and GPU bytes flat over each configuration's timed steps | ${mems.filter((m) => m.flat).length} of ${mems.length} flat | ${verdict(mems.every((m) => m.flat), false)} |`);
    if (memory) out.push(`| numTensors and GPU bytes flat over ${memory.steps} steps of ${memory.config} | tensors ${memory.numTensors.afterWarmup} → ${memory.numTensors.min}..${memory.numTensors.max}; GPU ${memory.gpuMiB.afterWarmup} → ${memory.gpuMiB.min}..${memory.gpuMiB.max} MiB | ${verdict(memory.numTensors.flat && memory.gpuMiB.flat, false)} |`);
    out.push('');
  }
  if (memory && !models) out.push(`Memory: ${memory.config}, ${memory.steps} steps: tensors ${memory.numTensors.afterWarmup} → ${memory.numTensors.min}..${memory.numTensors.max}, GPU ${memory.gpuMiB.afterWarmup} → ${memory.gpuMiB.min}..${memory.gpuMiB.max} MiB.`, '');

  out.push('## Loader: str-train vs torchvision', '');
  if (!loader) out.push('Not run.');
  else {
    out.push(`Synthetic ImageNet-like JPEGs (≈ 500×375), ${JSON.stringify(loader.dataset?.images ?? {})} images, batch 32, median epoch after one warm-up epoch. torchvision: ${loader.torch ? `${loader.torch.torchvision} (torch ${loader.torch.torch})` : 'not found'}.`, '');
    out.push('| transform | workers | str-train img/s | CPU ms/img | torchvision img/s | CPU ms/img | ratio |', '| --- | --- | --- | --- | --- | --- | --- |');
    for (const r of loader.results) out.push(`| ${r.transform} | ${r.workers} | ${fmt(r.imagesPerSec as number, 0)} | ${fmt(r.cpuMsPerImage as number, 2)} | ${fmt(r.torchImagesPerSec as number, 0)} | ${fmt(r.torchCpuMsPerImage as number, 2)} | ${fmt(r.ratio as number, 2)} |`);
  }
  out.push('', '## Does the loader feed the GPU? (real-data training run)', '');
  if (!feed) out.push('Not run.');
  else {
    out.push(`\`${feed.command}\``, '');
    if (feed.afterWarmup) {
      const a = feed.afterWarmup;
      out.push(`${a.steps} steps after warm-up: **${a.msPerStep} ms/step, of which ${a.dataWaitMsPerStep} ms waiting for data (${(100 * a.dataWaitShare).toFixed(1)} %)**, ${a.imagesPerSec} img/s, --workers ${feed.workers}.`);
    } else out.push(`No timed steps (exit ${feed.exit}).${feed.tail ? `\n\n\`\`\`\n${feed.tail.slice(-1500)}\n\`\`\`` : ''}`);
  }
  out.push('');
  return out.join('\n');
}

function verdict(ok: boolean | undefined, notMeaningful: boolean | undefined): string {
  if (notMeaningful) return 'n/a (dry run)';
  return ok === undefined ? 'not measured' : ok ? '**met**' : '**not met**';
}

export function strDensePairs(cases: CaseResult[], b?: BenchBackend): Array<{ id: string; ours?: number; torch?: number; torchDefault?: number }> {
  const key = (c: CaseResult) => `${c.arch}@${c.size} b${c.batch} ${c.mode}`;
  const out = [];
  for (const s of cases.filter((c) => c.conv === 'STRConv')) {
    const d = cases.find((c) => c.conv === 'DenseConv' && key(c) === key(s));
    if (!d) continue;
    const ratio = (x?: SideResult, y?: SideResult) => (x && y && !x.error && !y.error ? x.medianMs / y.medianMs : undefined);
    out.push({ id: key(s), ours: b ? ratio(s.ours[b], d.ours[b]) : undefined, torch: ratio(s.pytorch, d.pytorch), torchDefault: ratio(s.pytorchDefault, d.pytorchDefault) });
  }
  return out;
}

// ------------------------------------------------------------------------------------ CLI

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  mkdirSync(o.out, { recursive: true });
  switch (o.part) {
    case 'adapter': return partAdapter(o);
    case 'correctness': return partCorrectness(o);
    case 'models': return partModels(o);
    case 'memory': return partMemory(o);
    case 'data': return partData(o);
    case 'loader': return partLoader(o);
    case 'feed': return partFeed(o);
    case 'report': {
      writeFileSync(path.join(o.out, 'RESULTS.md'), renderGpuReport(o.out, o.skipped));
      log(`wrote ${path.join(o.out, 'RESULTS.md')}`);
    }
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === SELF) {
  main().then(
    () => process.exit(0), // dawn.node and worker pools can keep the loop alive
    (e: unknown) => {
      process.stderr.write(`${(e as Error).stack ?? e}\n`);
      process.exit(1);
    },
  );
}
