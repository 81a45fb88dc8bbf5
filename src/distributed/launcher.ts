/**
 * `--multigpu 0,1,…` with the local transport: one worker process per device running the same
 * CLI, each seeing only its device (CUDA_VISIBLE_DEVICES), joined through a rendezvous directory,
 * and supervised so that one failing worker stops the whole run promptly and completely.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { constants as osConstants } from 'node:os';
import { UserError } from '../util/errors.js';
import { EXIT_PEER_LOST } from './collective.js';

export const ENV_RANK = 'STR_TRAIN_RANK';
export const ENV_WORLD_SIZE = 'STR_TRAIN_WORLD_SIZE';
export const ENV_RENDEZVOUS = 'STR_TRAIN_RENDEZVOUS';
export const ENV_DEVICE = 'STR_TRAIN_DEVICE';
export const ENV_LAUNCHER_PID = 'STR_TRAIN_LAUNCHER_PID';

/** `--multigpu` value ("0,1,2,3", or numbers from a config) → device ids, checked for shape only. */
export function parseDeviceList(value: string | number | ReadonlyArray<string | number>, flag = '--multigpu'): number[] {
  const items = typeof value === 'number' ? [value] : typeof value === 'string' ? value.split(',') : [...value];
  if (items.length === 0 || (items.length === 1 && String(items[0]).trim() === '')) {
    throw new UserError(`${flag}: expected a comma-separated list of device ids such as 0,1,2,3, got an empty list`);
  }
  const ids = items.map((it) => {
    const s = String(it).trim();
    if (!/^\d+$/.test(s)) throw new UserError(`${flag}: device id "${s}" is not a non-negative integer (expected e.g. 0,1,2,3)`);
    return Number(s);
  });
  validateDevices(ids, flag);
  return ids;
}

/** Duplicates, negatives and non-integers are user errors; ids are not checked against hardware here. */
export function validateDevices(devices: readonly number[], flag = '--multigpu'): void {
  if (devices.length === 0) throw new UserError(`${flag}: expected at least one device id`);
  const seen = new Set<number>();
  for (const d of devices) {
    if (!Number.isInteger(d) || d < 0) throw new UserError(`${flag}: device id ${d} is not a non-negative integer`);
    if (seen.has(d)) throw new UserError(`${flag}: device id ${d} is listed twice (${devices.join(',')})`);
    seen.add(d);
  }
}

/**
 * GPU ids `nvidia-smi -L` reports, or undefined when nvidia-smi is not available (no NVIDIA driver:
 * cpu/wasm runs, where device ids are only worker slots and any distinct ids are fine).
 */
export function listNvidiaGpus(): number[] | undefined {
  const r = spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8', timeout: 15_000 });
  if (r.error || r.status !== 0) return undefined;
  const ids: number[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /^GPU (\d+):/.exec(line.trim());
    if (m) ids.push(Number(m[1]));
  }
  return ids;
}

/** Checks the ids against the GPUs nvidia-smi lists; without nvidia-smi there is nothing to check. */
export function checkDevicesExist(devices: readonly number[], flag = '--multigpu', gpus = listNvidiaGpus()): void {
  if (gpus === undefined) return;
  const missing = devices.filter((d) => !gpus.includes(d));
  if (missing.length > 0) {
    const have = gpus.length === 0 ? 'none' : gpus.join(',');
    throw new UserError(`${flag}: device ${missing.join(',')} does not exist (nvidia-smi lists GPUs ${have})`);
  }
}

export interface WorkerInfo {
  rank: number;
  worldSize: number;
  /** 'local': started by launchWorkers; 'mpi': started by mpirun (Open MPI's env); 'none': a plain run. */
  launcher: 'local' | 'mpi' | 'none';
  /** Rendezvous directory of the local transport. */
  rendezvous?: string;
  /** Physical device id this worker was given (local launcher), or MPI's local rank under mpirun. */
  device?: number;
  /** Rank among the workers on this machine (MPI local rank; equals rank for the local launcher). */
  localRank: number;
}

/**
 * Where this process stands in a data-parallel run, from the environment only (no connection is
 * made): the local launcher's STR_TRAIN_* variables, else Open MPI's OMPI_COMM_WORLD_* variables
 * (set by mpirun before the program starts), else a single process.
 */
export function workerInfo(env: NodeJS.ProcessEnv = process.env): WorkerInfo {
  const int = (name: string): number | undefined => {
    const v = env[name];
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new UserError(`environment variable ${name}=${v} is not a non-negative integer`);
    return n;
  };
  const rank = int(ENV_RANK);
  if (rank !== undefined) {
    const worldSize = int(ENV_WORLD_SIZE);
    const rendezvous = env[ENV_RENDEZVOUS];
    if (worldSize === undefined || rank >= worldSize || !rendezvous) {
      throw new UserError(`${ENV_RANK}=${rank} needs ${ENV_WORLD_SIZE} > rank and ${ENV_RENDEZVOUS} (these are set by --multigpu; do not set them by hand)`);
    }
    return { rank, worldSize, launcher: 'local', rendezvous, device: int(ENV_DEVICE), localRank: rank };
  }
  const mpiRank = int('OMPI_COMM_WORLD_RANK') ?? int('PMIX_RANK');
  const mpiSize = int('OMPI_COMM_WORLD_SIZE');
  if (mpiRank !== undefined && mpiSize !== undefined) {
    const localRank = int('OMPI_COMM_WORLD_LOCAL_RANK') ?? 0;
    return { rank: mpiRank, worldSize: mpiSize, launcher: 'mpi', device: localRank, localRank };
  }
  return { rank: 0, worldSize: 1, launcher: 'none', localRank: 0 };
}

/**
 * Under mpirun: the CUDA_VISIBLE_DEVICES value for this rank, chosen by MPI's local rank — the
 * local-rank-th entry of an existing CUDA_VISIBLE_DEVICES list (a node shared with other jobs), else
 * the local rank itself. Set it before the GPU backend loads (TensorFlow reads it once). Undefined
 * when not under mpirun. A UserError when a node runs more ranks than the listed devices.
 */
export function mpiDeviceForRank(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const info = workerInfo(env);
  if (info.launcher !== 'mpi') return undefined;
  const listed = env.CUDA_VISIBLE_DEVICES?.split(',').map((d) => d.trim()).filter((d) => d !== '');
  if (!listed || listed.length === 0) return String(info.localRank);
  if (info.localRank >= listed.length) {
    throw new UserError(`--distributed mpi: local rank ${info.localRank} has no device (CUDA_VISIBLE_DEVICES=${env.CUDA_VISIBLE_DEVICES} lists ${listed.length}); start at most ${listed.length} ranks per node`);
  }
  return listed[info.localRank];
}

/**
 * In a worker started by launchWorkers: exits the process when the launcher disappears (e.g. it was
 * SIGKILLed and could not stop us), so no orphan keeps a device busy. Timer is unref'd.
 */
export function exitWhenLauncherGone(env: NodeJS.ProcessEnv = process.env, pollMs = 1000): void {
  const pid = Number(env[ENV_LAUNCHER_PID]);
  if (!Number.isInteger(pid) || pid <= 0) return;
  const timer = setInterval(() => {
    if (process.ppid !== pid) {
      process.stderr.write(`worker rank ${env[ENV_RANK]}: launcher (pid ${pid}) is gone; exiting\n`);
      // the launcher can no longer remove the rendezvous directory: the workers do
      const dir = env[ENV_RENDEZVOUS];
      if (dir) rmSync(dir, { recursive: true, force: true });
      process.exit(EXIT_PEER_LOST);
    }
  }, pollMs);
  timer.unref();
}

export interface LaunchOptions {
  /** Device ids, one worker each; rank i gets devices[i]. */
  devices: number[];
  /** Arguments after the script, the same for every worker. */
  argv: string[];
  /** The entry script every worker runs (e.g. the CLI's bin). */
  script: string;
  /** Extra environment for the workers (on top of process.env). */
  env?: NodeJS.ProcessEnv;
  /** Node flags for the workers (default workerExecArgv(): the parent's, e.g. `--import tsx`). */
  execArgv?: string[];
  /**
   * 'nvidia-smi' (default): when nvidia-smi is available, every id must be a GPU it lists.
   * 'none': ids are worker slots (cpu/wasm backends), any distinct non-negative ids.
   */
  checkDevices?: 'nvidia-smi' | 'none';
  /** Where the launcher's own lines go (default: stderr). */
  log?: (line: string) => void;
  /** Time between SIGTERM and SIGKILL when stopping workers (default 3000 ms). */
  graceMs?: number;
  /** Stop on SIGINT/SIGTERM to this process (default true). */
  handleSignals?: boolean;
}

export interface WorkerExit {
  rank: number;
  device: number;
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  lastLine?: string;
}

export interface LaunchResult {
  /** 0 when every worker exited 0; otherwise the exit code the launcher should use. */
  exitCode: number;
  /** The worker that brought the run down (absent on success or on a signal to the launcher). */
  failed?: WorkerExit;
  /** The one-line reason printed, when the run failed. */
  message?: string;
  workers: WorkerExit[];
}

/**
 * The parent's Node flags minus those that must not reach a worker: code to evaluate (-e/-p, which
 * would run instead of the script), the test runner's flags, and debugger ports (would collide).
 * Loader flags such as `--import tsx` are kept.
 */
export function workerExecArgv(execArgv: readonly string[] = process.execArgv): string[] {
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const a = execArgv[i];
    if (a === '-e' || a === '--eval' || a === '-p' || a === '--print' || a === '--input-type') {
      i++; // and its value
      continue;
    }
    if (/^(--eval|--print|--input-type)=/.test(a) || /^--test(\b|-)/.test(a) || /^--inspect/.test(a) || a === '--watch') continue;
    out.push(a);
  }
  return out;
}

const TAIL_LINES = 20;

/** Keeps the last lines of a stream (the stream is always drained so a worker never blocks on a full pipe). */
class Tail {
  lines: string[] = [];
  private partial = '';
  push(chunk: Buffer | string): void {
    const parts = (this.partial + chunk.toString()).split('\n');
    this.partial = parts.pop() ?? '';
    for (const p of parts) this.add(p);
    if (this.partial.length > 8192) {
      this.add(this.partial);
      this.partial = '';
    }
  }
  end(): void {
    if (this.partial) this.add(this.partial);
    this.partial = '';
  }
  private add(l: string): void {
    const line = l.replace(/\r$/, '');
    if (line.trim() === '') return;
    this.lines.push(line);
    if (this.lines.length > TAIL_LINES) this.lines.shift();
  }
  last(): string | undefined {
    return this.partial.trim() || this.lines[this.lines.length - 1];
  }
}

function socketDirBase(): string {
  // Unix socket paths are limited to ~107 bytes: fall back to /tmp for a long TMPDIR
  const t = tmpdir();
  return t.length > 60 ? '/tmp' : t;
}

function describeExit(w: WorkerExit): string {
  const who = `worker rank ${w.rank} (device ${w.device}, pid ${w.pid})`;
  let cause: string;
  if (w.signal) {
    cause = `was killed by ${w.signal}`;
    if (w.signal === 'SIGKILL') cause += ' (out of memory, or killed from outside?)';
  } else if (w.code === EXIT_PEER_LOST) {
    cause = `stopped because a peer worker disappeared (exit code ${w.code})`;
  } else {
    cause = `exited with code ${w.code}`;
  }
  const last = w.lastLine ? `: ${w.lastLine.trim().slice(0, 300)}` : '';
  return `${who} ${cause}${last}`;
}

function exitCodeOf(w: WorkerExit): number {
  if (w.signal) return 128 + (osConstants.signals[w.signal] ?? 0);
  return w.code && w.code > 0 ? w.code : 1;
}

/**
 * Starts one worker per device and supervises them. Resolves when all workers have exited; never
 * rejects for a worker failure (the result says what happened, and the failure line was logged).
 * Invalid device lists throw UserError before anything starts.
 */
export async function launchWorkers(o: LaunchOptions): Promise<LaunchResult> {
  validateDevices(o.devices);
  if ((o.checkDevices ?? 'nvidia-smi') === 'nvidia-smi') checkDevicesExist(o.devices);
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const grace = o.graceMs ?? 3000;
  const n = o.devices.length;
  const rendezvous = mkdtempSync(join(socketDirBase(), 'str-train-rdv-'));
  const execArgv = o.execArgv ?? workerExecArgv();

  interface W {
    rank: number;
    device: number;
    child: ChildProcess;
    out: Tail;
    err: Tail;
    exit?: WorkerExit;
    closed: Promise<void>;
  }
  const workers: W[] = [];
  let stopping = false;
  let cause: WorkerExit | undefined;
  let signalCause: NodeJS.Signals | undefined;
  let peerLostTimer: NodeJS.Timeout | undefined;
  let killTimer: NodeJS.Timeout | undefined;

  const killGroup = (w: W, sig: NodeJS.Signals) => {
    if (w.child.pid === undefined) return;
    try {
      // each worker leads its own process group: this also reaches its children (decoders, …)
      process.kill(-w.child.pid, sig);
    } catch {
      /* already gone */
    }
  };
  const stopAll = (sig: NodeJS.Signals = 'SIGTERM') => {
    if (stopping) return;
    stopping = true;
    clearTimeout(peerLostTimer);
    for (const w of workers) if (!w.exit) killGroup(w, sig);
    killTimer = setTimeout(() => {
      for (const w of workers) if (!w.exit) killGroup(w, 'SIGKILL');
    }, grace);
  };

  const onExit = (w: W, code: number | null, signal: NodeJS.Signals | null) => {
    w.exit = { rank: w.rank, device: w.device, pid: w.child.pid ?? -1, code, signal };
    if (stopping || (code === 0 && !signal)) return;
    if (code === EXIT_PEER_LOST && !signal) {
      // likely a consequence: give the worker that really failed a moment to be reported first
      cause ??= w.exit;
      peerLostTimer ??= setTimeout(() => stopAll(), 2000);
      return;
    }
    if (!cause || (cause.code === EXIT_PEER_LOST && !cause.signal)) cause = w.exit;
    stopAll();
  };

  const onSignal = (sig: NodeJS.Signals) => {
    signalCause ??= sig;
    stopAll(sig);
  };
  const handleSignals = o.handleSignals ?? true;
  if (handleSignals) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }

  const stderrTTY = process.stderr.isTTY === true;
  for (let rank = 0; rank < n; rank++) {
    const device = o.devices[rank];
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...o.env,
      CUDA_VISIBLE_DEVICES: String(device),
      [ENV_RANK]: String(rank),
      [ENV_WORLD_SIZE]: String(n),
      [ENV_RENDEZVOUS]: rendezvous,
      [ENV_DEVICE]: String(device),
      [ENV_LAUNCHER_PID]: String(process.pid),
    };
    // rank 0 speaks for the run: its stdout (and stderr on a terminal, so progress bars work) is
    // inherited; everything else is piped, kept as a tail, and shown only if that worker fails
    const rank0 = rank === 0;
    const child = spawn(process.execPath, [...execArgv, o.script, ...o.argv], {
      env,
      stdio: ['ignore', rank0 ? 'inherit' : 'pipe', rank0 && stderrTTY ? 'inherit' : 'pipe'],
      detached: true,
    });
    const w: W = { rank, device, child, out: new Tail(), err: new Tail(), closed: Promise.resolve() };
    child.stdout?.on('data', (d: Buffer) => w.out.push(d));
    child.stderr?.on('data', (d: Buffer) => {
      w.err.push(d);
      if (rank0) process.stderr.write(d);
    });
    w.closed = new Promise<void>((resolve) => {
      child.on('error', (e) => {
        w.err.push(`cannot start worker: ${e.message}\n`);
        if (!w.exit) onExit(w, 127, null);
        resolve();
      });
      child.on('exit', (code, signal) => onExit(w, code, signal));
      child.on('close', () => {
        w.out.end();
        w.err.end();
        resolve();
      });
    });
    workers.push(w);
  }

  await Promise.all(workers.map((w) => w.closed));
  clearTimeout(peerLostTimer);
  clearTimeout(killTimer);
  // workers are gone; sweep their process groups for stragglers (grandchildren)
  for (const w of workers) killGroup(w, 'SIGKILL');
  if (handleSignals) {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  rmSync(rendezvous, { recursive: true, force: true });

  const exits = workers.map((w) => ({ ...(w.exit as WorkerExit), lastLine: w.err.last() ?? w.out.last() }));
  if (signalCause) {
    const message = `str-train: received ${signalCause}; stopped all ${n} workers`;
    log(message);
    return { exitCode: 128 + (osConstants.signals[signalCause] ?? 0), message, workers: exits };
  }
  if (!cause) return { exitCode: 0, workers: exits };
  const failed = exits[cause.rank];
  const fw = workers[cause.rank];
  // a failed non-zero rank's output was hidden so far: show its tail, prefixed, before the verdict
  if (failed.rank !== 0) {
    const tail = [...fw.out.lines.slice(-5), ...fw.err.lines];
    if (tail.length > 1) for (const l of tail) log(`[device ${failed.device}] ${l}`);
  }
  const message = `str-train: ${describeExit(failed)}; stopped all ${n} workers`;
  log(message);
  return { exitCode: exitCodeOf(failed), failed, message, workers: exits };
}
