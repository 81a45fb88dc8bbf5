// All-reduce bandwidth for a ResNet50-sized gradient (25.6M float32 = 102.4 MB) across 2 processes
// on this machine, for each transport: the local ring over Unix sockets, and MPI (Open MPI through
// koffi, both sum modes) when mpirun and libmpi are available.
//   node --import tsx bench/allreduce.ts [--quick] [--json FILE] [--floats N] [--ranks N]
// Time = median over repetitions of one allReduceSum, started together after a barrier, as seen by
// rank 0. algBW = bytes / time; busBW = algBW · 2(N−1)/N (the traffic each link carries in a
// bandwidth-optimal all-reduce, NCCL's convention, comparable across N).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { connectLocal } from '../src/distributed/local.js';
import { initMpi, mpiUnavailableReason, mpirunArgs, type MpiSumMode } from '../src/distributed/mpi.js';
import type { Collective } from '../src/distributed/collective.js';
import { workerExecArgv } from '../src/distributed/launcher.js';

const RESNET50_FLOATS = 25_556_032; // trainable parameters of the STR ResNet50 (≈25.6M; its fc has no bias)
const WORKER_ENV = 'STR_BENCH_ALLREDUCE_WORKER';

interface WorkerCfg {
  out: string;
  floats: number;
  reps: number;
  transport: 'local' | 'mpi';
  rank?: number;
  worldSize?: number;
  rendezvous?: string;
  mpiSum?: MpiSumMode;
  segmentBytes?: number;
}

export interface AllReduceTiming {
  transport: string;
  ranks: number;
  floats: number;
  megabytes: number;
  reps: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
  algBandwidthGBs: number;
  busBandwidthGBs: number;
  correct: boolean;
  /** The warm-up sum of non-integer data had the same SHA-256 on every rank. */
  bitIdentical: boolean;
}

async function worker(cfg: WorkerCfg): Promise<void> {
  const c: Collective =
    cfg.transport === 'mpi'
      ? initMpi({ sum: cfg.mpiSum })
      : await connectLocal({ rank: cfg.rank as number, worldSize: cfg.worldSize as number, rendezvous: cfg.rendezvous as string, segmentBytes: cfg.segmentBytes });
  const buf = new Float32Array(cfg.floats);
  const times: number[] = [];
  let correct = true;
  // warm-up with non-integer data whose sum depends on the order of additions: must agree bitwise
  for (let i = 0; i < buf.length; i++) buf[i] = Math.sin(i * 0.37 + c.rank * 1.3) * 10 ** ((i % 5) - 2);
  await c.allReduceSum(buf);
  const hash = createHash('sha256').update(new Uint8Array(buf.buffer)).digest('hex');
  for (let rep = 0; rep < cfg.reps; rep++) {
    // integers: the sum is exact, so correctness is checkable by value
    buf.fill(c.rank + 1);
    await c.barrier();
    const t0 = performance.now();
    await c.allReduceSum(buf);
    const ms = performance.now() - t0;
    times.push(ms);
    const want = (c.worldSize * (c.worldSize + 1)) / 2;
    for (let i = 0; i < buf.length; i += 4093) if (buf[i] !== want) correct = false;
    if (buf[buf.length - 1] !== want) correct = false;
  }
  writeFileSync(join(cfg.out, `rank-${c.rank}.json`), JSON.stringify({ times, correct, hash }));
  await c.close();
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited with ${code}: ${err.slice(-2000)}`))));
  });
}

function summarise(transport: string, ranks: number, floats: number, out: string, reps: number): AllReduceTiming {
  const results = Array.from({ length: ranks }, (_, r) => JSON.parse(readFileSync(join(out, `rank-${r}.json`), 'utf8')) as { times: number[]; correct: boolean; hash: string });
  const t = [...results[0].times].sort((a, b) => a - b);
  const median = t[Math.floor(t.length / 2)];
  const bytes = floats * 4;
  const alg = bytes / (median / 1000) / 1e9;
  return {
    transport,
    ranks,
    floats,
    megabytes: bytes / 1e6,
    reps,
    medianMs: +median.toFixed(1),
    minMs: +t[0].toFixed(1),
    maxMs: +t[t.length - 1].toFixed(1),
    algBandwidthGBs: +alg.toFixed(2),
    busBandwidthGBs: +((alg * 2 * (ranks - 1)) / ranks).toFixed(2),
    correct: results.every((r) => r.correct),
    bitIdentical: results.every((r) => r.hash === results[0].hash),
  };
}

const self = fileURLToPath(import.meta.url);

export async function benchLocal(floats: number, ranks: number, reps: number, segmentBytes?: number): Promise<AllReduceTiming> {
  const out = mkdtempSync(join(tmpdir(), 'str-bench-ar-'));
  try {
    await Promise.all(
      Array.from({ length: ranks }, (_, rank) => {
        const cfg: WorkerCfg = { out, floats, reps, transport: 'local', rank, worldSize: ranks, rendezvous: out, segmentBytes };
        return run(process.execPath, [...workerExecArgv(), self], { [WORKER_ENV]: JSON.stringify(cfg) });
      }),
    );
    return summarise(segmentBytes ? `local (segment ${segmentBytes >> 10} KiB)` : 'local', ranks, floats, out, reps);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

export async function benchMpi(floats: number, ranks: number, reps: number, mpiSum: MpiSumMode): Promise<AllReduceTiming> {
  const out = mkdtempSync(join(tmpdir(), 'str-bench-ar-'));
  try {
    const cfg: WorkerCfg = { out, floats, reps, transport: 'mpi', mpiSum };
    await run('mpirun', [...mpirunArgs(ranks), '-x', WORKER_ENV, process.execPath, ...workerExecArgv(), self], { [WORKER_ENV]: JSON.stringify(cfg) });
    return summarise(`mpi (${mpiSum})`, ranks, floats, out, reps);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/**
 * Host-side cost of reduceGradientsHook around the all-reduce (flatten·scale, download, divide,
 * rebuild tensors) for the STR ResNet50's gradients on the cpu backend (or `backend`), with a no-op 2-rank sum.
 */
export async function benchHookOverhead(reps: number, backend: 'cpu' | 'tensorflow' = 'cpu'): Promise<{ tensors: number; floats: number; medianMs: number; backend: string }> {
  const tf = await import('../src/tf.js');
  const { createModel } = await import('../src/models/registry.js');
  const { reduceGradientsHook } = await import('../src/distributed/gradients.js');
  const { initBackend } = await import('../src/backend/select.js');
  await initBackend(backend, () => undefined); // (not tf.setBackend: that prints tfjs' "install tfjs-node" banner)
  const model = createModel('ResNet50');
  const vars = model.trainableVariables();
  const noop: Collective = { rank: 0, worldSize: 2, transport: 'local', allReduceSum: async () => {}, broadcast: async () => {}, barrier: async () => {}, close: async () => {} };
  const hook = reduceGradientsHook(noop, vars.map((v) => v.name));
  const grads = Object.fromEntries(vars.map((v) => [v.name, tf.onesLike(v)]));
  const times: number[] = [];
  for (let k = 0; k <= reps; k++) {
    const t0 = performance.now();
    const out = await hook(grads, 64);
    if (k > 0) times.push(performance.now() - t0);
    tf.dispose(Object.values(out));
  }
  tf.dispose([...Object.values(grads), ...vars]);
  times.sort((a, b) => a - b);
  return { tensors: vars.length, floats: vars.reduce((s, v) => s + v.size, 0), medianMs: +times[Math.floor(times.length / 2)].toFixed(1), backend };
}

export async function benchAllReduce(opts: {
  quick: boolean; floats?: number; ranks?: number; log?: (l: string) => void;
  /** Backend of the host-overhead measurement (default cpu; tensorflow for the GPU figures). */
  hookBackend?: 'cpu' | 'tensorflow';
}): Promise<object> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const floats = opts.floats ?? RESNET50_FLOATS;
  const ranks = opts.ranks ?? 2;
  const reps = opts.quick ? 3 : 10;
  const results: AllReduceTiming[] = [];
  const show = (r: AllReduceTiming) => {
    results.push(r);
    log(
      `${r.transport.padEnd(22)} ${r.ranks} ranks  ${r.megabytes.toFixed(1)} MB  median ${r.medianMs} ms (min ${r.minMs}, max ${r.maxMs})  ` +
        `algBW ${r.algBandwidthGBs} GB/s  busBW ${r.busBandwidthGBs} GB/s${r.correct ? '' : '  WRONG RESULT'}${r.bitIdentical ? '' : '  RANKS DIFFER'}`,
    );
  };
  show(await benchLocal(floats, ranks, reps));
  const noMpi = mpiUnavailableReason();
  if (noMpi) log(`mpi: skipped (${noMpi})`);
  else for (const mode of ['reduce-scatter', 'allreduce'] as const) show(await benchMpi(floats, ranks, reps, mode));
  const hook = await benchHookOverhead(opts.quick ? 2 : 5, opts.hookBackend);
  log(`reduceGradientsHook host overhead (${hook.backend} backend, ${hook.tensors} tensors, ${hook.floats} floats, sum excluded): median ${hook.medianMs} ms`);
  return { benchmark: 'allreduce', floats, ranks, reps, results, hookOverhead: hook, mpi: noMpi ? `skipped: ${noMpi}` : 'measured' };
}

const workerCfg = process.env[WORKER_ENV];
if (workerCfg) {
  await worker(JSON.parse(workerCfg) as WorkerCfg);
} else if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const val = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const res = await benchAllReduce({
    quick: args.includes('--quick'),
    floats: val('--floats') ? Number(val('--floats')) : undefined,
    ranks: val('--ranks') ? Number(val('--ranks')) : undefined,
  });
  const json = val('--json');
  if (json) writeFileSync(json, JSON.stringify(res, null, 2) + '\n');
}
