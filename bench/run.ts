/**
 * The benchmark suite: `npm run bench` (full) or `npm run bench -- --quick` (a few minutes).
 * Runs each benchmark, writes bench/results/<name>.json (machine facts around each result) and
 * bench/results/RESULTS.md (every table, str-train / PyTorch ratios, the goals of issue 7).
 * Quick results go to bench/results/quick/, GPU results to bench/results/gpu/. See bench/README.md.
 *
 *   npm run bench -- [--quick] [--only models,memory,pipeline,loader,allreduce,multiworker,kernels,sparse]
 *                    [--skip NAMES] [--backend wasm,tensorflow,cpu,webgpu] [--cases SUBSTR,...] [--no-torch]
 *                    [--gpu [--multigpu 0,1,2,3]] [--out DIR] [--report]
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { machineFacts, REPO, round, scriptArgs } from './common.js';
import { benchMemory, benchModels, type BenchBackend } from './models.js';
import { benchPipeline } from './pipeline.js';
import { benchLoader } from './loader.js';
import { benchAllReduce } from './allreduce.js';
import { benchMultiGpu, benchMultiworker } from './multiworker.js';
import { renderResults, type ResultFile } from './report.js';
import { benchSparse } from './sparse.js';

const SELF = fileURLToPath(import.meta.url);
const ALL = ['models', 'memory', 'pipeline', 'loader', 'allreduce', 'multiworker', 'kernels', 'sparse'] as const;
const GPU_ALL = ['models', 'memory', 'loader', 'allreduce', 'multigpu'] as const;
type Name = (typeof ALL)[number] | 'multigpu';

interface Options {
  quick: boolean;
  gpu: boolean;
  devices: string[];
  only: Name[];
  backends: BenchBackend[];
  cases?: string[];
  torch: boolean;
  out: string;
  reportOnly: boolean;
}

class UsageError extends Error {}

function parseArgs(argv: string[]): Options {
  const known = new Set(['--quick', '--gpu', '--no-torch', '--report', '--only', '--skip', '--backend', '--cases', '--out', '--multigpu', '--help', '-h']);
  for (const a of argv) if (a.startsWith('-') && !known.has(a)) throw new UsageError(`unknown option ${a} (see bench/README.md)`);
  const val = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new UsageError(`${name} needs a value`);
    return v;
  };
  const list = (name: string) => val(name)?.split(',').map((s) => s.trim()).filter(Boolean);
  const quick = argv.includes('--quick');
  const gpu = argv.includes('--gpu');
  const names: readonly Name[] = gpu ? GPU_ALL : ALL;
  const check = (flag: string, xs: string[] | undefined) => {
    for (const x of xs ?? []) if (!names.includes(x as Name)) throw new UsageError(`${flag}: unknown benchmark '${x}' (expected ${names.join(', ')})`);
    return xs as Name[] | undefined;
  };
  const only = check('--only', list('--only'));
  const skip = check('--skip', list('--skip')) ?? [];
  let selected = (only ?? [...names]).filter((n) => !skip.includes(n));
  // the per-layer kernel timings are a diagnostic: full runs only, unless asked for
  if (quick && !only) selected = selected.filter((n) => n !== 'kernels');
  const backends = (list('--backend') ?? (gpu ? ['tensorflow'] : ['wasm', 'tensorflow', 'cpu'])) as BenchBackend[];
  for (const b of backends) if (!['wasm', 'tensorflow', 'cpu', 'webgpu'].includes(b)) throw new UsageError(`--backend: expected wasm, tensorflow, cpu or webgpu, got '${b}'`);
  const devices = list('--multigpu') ?? ['0'];
  if (argv.includes('--multigpu') && !gpu) throw new UsageError('--multigpu is for the GPU mode: add --gpu');
  const out = path.resolve(val('--out') ?? path.join(REPO, 'bench', 'results', ...(gpu ? ['gpu'] : quick ? ['quick'] : [])));
  return { quick, gpu, devices, only: selected, backends, cases: list('--cases'), torch: !argv.includes('--no-torch'), out, reportOnly: argv.includes('--report') };
}

/** A bench script's own CLI in a child process (its lines are passed to the log), for those that set up tf in-process. */
function runScript(name: string, args: string[], log: (l: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...scriptArgs(name), ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    createInterface({ input: child.stdout }).on('line', (l) => log(`  ${l}`));
    createInterface({ input: child.stderr }).on('line', (l) => (tail = (tail + l + '\n').slice(-3000)));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`bench/${name} exited with ${code}: ${tail.trim().split('\n').slice(-3).join(' | ')}`))));
  });
}

async function runKernels(o: Options, log: (l: string) => void): Promise<object> {
  const file = path.join(os.tmpdir(), `str-bench-kernels-${process.pid}.json`);
  try {
    await runScript('kernels', [...(o.quick ? ['--quick'] : []), '--backend', o.gpu ? 'tensorflow' : 'wasm', '--json', file], log);
    return JSON.parse(readFileSync(file, 'utf8')) as object;
  } finally {
    rmSync(file, { force: true });
  }
}

function tfjsNodeInstalled(): string | null {
  const req = createRequire(path.join(REPO, 'package.json'));
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      req.resolve(pkg);
      return pkg;
    } catch {
      // not installed
    }
  }
  return null;
}

async function runOne(name: Name, o: Options, log: (l: string) => void): Promise<object> {
  switch (name) {
    case 'models':
      return benchModels({ quick: o.quick, gpu: o.gpu, backends: o.backends, torch: o.torch, filter: o.cases, log });
    case 'memory':
      return benchMemory({
        quick: o.quick, log, backend: o.gpu ? o.backends[0] : o.backends.includes('wasm') ? 'wasm' : o.backends[0],
        config: o.gpu ? { arch: 'ResNet50', conv: 'STRConv', size: 224, batch: 64 } : undefined,
      });
    case 'pipeline':
      return benchPipeline({ quick: o.quick, log });
    case 'loader':
      return benchLoader({ quick: o.quick, torch: o.torch, log });
    case 'allreduce':
      return benchAllReduce({ quick: o.quick, ranks: o.gpu ? Math.max(2, o.devices.length) : 2, hookBackend: o.gpu ? 'tensorflow' : 'cpu', log });
    case 'multiworker':
      return benchMultiworker({ quick: o.quick });
    case 'kernels':
      return runKernels(o, log);
    case 'sparse':
      // the crossover table (~2 min, single-threaded CPU time) only in full runs
      return benchSparse({ quick: o.quick, torch: o.torch, crossover: !o.quick, models: true, log });
    case 'multigpu':
      return benchMultiGpu({ devices: o.devices, steps: o.quick ? 10 : 20, log });
  }
}

function writeReport(out: string, log: (l: string) => void): void {
  const md = renderResults(out);
  writeFileSync(path.join(out, 'RESULTS.md'), md + '\n');
  log(`wrote ${path.relative(REPO, path.join(out, 'RESULTS.md'))}`);
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(0)} s`;
  const log = (l: string) => console.log(l);
  if (o.reportOnly) {
    writeReport(o.out, log);
    return 0;
  }
  if (o.gpu && o.backends.includes('tensorflow') && tfjsNodeInstalled() !== '@tensorflow/tfjs-node-gpu') {
    throw new UsageError('--gpu --backend tensorflow measures tfjs-node-gpu: install it first (npm install @tensorflow/tfjs-node-gpu), on a machine with CUDA; or use --backend webgpu (bench/gpu/run.sh)');
  }
  mkdirSync(o.out, { recursive: true });
  const m = machineFacts();
  log(`str-train benchmarks (${o.gpu ? 'GPU' : o.quick ? 'quick' : 'full'}): ${o.only.join(', ')}; ${m.cpu}, ${m.cores} cores, node ${m.node}, tfjs ${m.tfjs}; load average ${m.loadAvg}`);
  log(`results: ${path.relative(REPO, o.out) || '.'}/`);
  let failures = 0;
  for (const [i, name] of o.only.entries()) {
    const start = performance.now();
    log(`== [${i + 1}/${o.only.length}] ${name} (at ${elapsed()})`);
    const file: ResultFile = { benchmark: name, quick: o.quick, gpu: o.gpu, machine: machineFacts(), loadAvgAtEnd: NaN, seconds: NaN };
    try {
      file.result = await runOne(name, o, (l) => log(`  ${l}`));
    } catch (e) {
      failures++;
      file.error = String((e as Error)?.message ?? e).split('\n').slice(0, 3).join(' ');
      log(`  ${name} FAILED: ${file.error}`);
    }
    file.loadAvgAtEnd = round(os.loadavg()[0], 2);
    file.seconds = round((performance.now() - start) / 1000, 1);
    writeFileSync(path.join(o.out, `${name}.json`), JSON.stringify(file, null, 2) + '\n');
    log(`== ${name} done in ${file.seconds} s`);
    writeReport(o.out, () => undefined); // a partial report survives an interrupted run
  }
  writeReport(o.out, log);
  log(`all done in ${elapsed()}${failures ? `; ${failures} benchmark(s) failed` : ''}`);
  return failures ? 1 : 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === SELF) {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      if (e instanceof UsageError) {
        process.stderr.write(`bench: ${e.message}\n`);
        process.exit(2);
      }
      process.stderr.write(`${(e as Error).stack ?? e}\n`);
      process.exit(1);
    },
  );
}
