// Helpers shared by the benchmark suite (bench/run.ts, bench/models.ts, bench/pipeline.ts):
// statistics, machine facts, and a line-protocol child process for the alternating runs.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** True when running from the TypeScript sources under tsx (false: compiled into dist/bench). */
export const FROM_TS = import.meta.url.endsWith('.ts');
/** The repository root, from either bench/ or dist/bench/. */
export const REPO = fileURLToPath(new URL(FROM_TS ? '../' : '../../', import.meta.url));

/** A sibling bench script (`name` without extension) as node arguments, compiled or under tsx. */
export function scriptArgs(name: string): string[] {
  const file = fileURLToPath(new URL(`./${name}.${FROM_TS ? 'ts' : 'js'}`, import.meta.url));
  return [...process.execArgv, file];
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export const round = (x: number, digits = 1): number => (Number.isFinite(x) ? +x.toFixed(digits) : x);

/** The python with Debian's torch, or null. `modules` are imported as the check. */
export function findTorchPython(modules = 'torch'): string | null {
  for (const py of ['/usr/bin/python3', 'python3']) {
    try {
      execFileSync(py, ['-c', `import ${modules}`], { stdio: 'ignore' });
      return py;
    } catch {
      // try the next interpreter
    }
  }
  return null;
}

function packageVersion(pkg: string): string | null {
  const file = path.join(REPO, 'node_modules', pkg, 'package.json');
  if (!existsSync(file)) return null;
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

function gitCommit(): string | null {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return dirty ? `${head} + uncommitted changes` : head;
  } catch {
    return null;
  }
}

export interface MachineFacts {
  cpu: string;
  cores: number;
  memoryGiB: number;
  platform: string;
  node: string;
  tfjs: string | null;
  tfjsNode: string | null;
  tfjsNodeGpu: string | null;
  commit: string | null;
  date: string;
  /** 1-minute load average when the benchmark started: above the core count, numbers are noisy. */
  loadAvg: number;
}

export function machineFacts(): MachineFacts {
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length,
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    tfjs: packageVersion('@tensorflow/tfjs-core'),
    tfjsNode: packageVersion('@tensorflow/tfjs-node'),
    tfjsNodeGpu: packageVersion('@tensorflow/tfjs-node-gpu'),
    commit: gitCommit(),
    date: new Date().toISOString(),
    loadAvg: round(os.loadavg()[0], 2),
  };
}

/** Lines on stdout that carry a protocol message; anything else a child prints is passed to the log. */
export const MESSAGE_PREFIX = '@@bench ';

/**
 * A child process answering one JSON request per line with one JSON reply (a line starting with
 * MESSAGE_PREFIX); other output goes to `log`. Used for the str-train and PyTorch model workers,
 * which stay up for the whole run so that their runs can alternate.
 */
export class LineWorker {
  private readonly child: ChildProcess;
  private readonly replies: string[] = [];
  private waiting: ((line: string | null) => void) | null = null;
  private exited = false;
  private stderrTail = '';

  constructor(readonly name: string, cmd: string, args: string[], log: (line: string) => void, env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(cmd, args, { cwd: REPO, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      if (!line.startsWith(MESSAGE_PREFIX)) {
        if (line.trim()) log(`  [${name}] ${line}`);
        return;
      }
      const msg = line.slice(MESSAGE_PREFIX.length);
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = null;
        w(msg);
      } else this.replies.push(msg);
    });
    createInterface({ input: this.child.stderr! }).on('line', (line) => {
      this.stderrTail = (this.stderrTail + line + '\n').slice(-4000);
      if (process.env.STR_BENCH_VERBOSE) log(`  [${name}] ${line}`);
    });
    this.child.on('exit', () => {
      this.exited = true;
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = null;
        w(null);
      }
    });
    this.child.stdin!.on('error', () => undefined); // a dead child is reported by request()
  }

  async request<T>(msg: object): Promise<T> {
    if (this.exited) throw new Error(`${this.name} worker has exited: ${this.stderrTail.trim().split('\n').slice(-5).join(' | ')}`);
    this.child.stdin!.write(JSON.stringify(msg) + '\n');
    const line = this.replies.shift() ?? (await new Promise<string | null>((resolve) => (this.waiting = resolve)));
    if (line == null) throw new Error(`${this.name} worker exited: ${this.stderrTail.trim().split('\n').slice(-5).join(' | ')}`);
    return JSON.parse(line) as T;
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await done;
    clearTimeout(timer);
  }
}

/** Serves LineWorker requests in this process: `handle` per message, replies on stdout. */
export async function serveLines(handle: (msg: Record<string, unknown>) => Promise<object>): Promise<void> {
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    let reply: object;
    try {
      reply = { ok: true, ...(await handle(JSON.parse(line) as Record<string, unknown>)) };
    } catch (e) {
      reply = { ok: false, error: String((e as Error)?.message ?? e).split('\n')[0] };
    }
    process.stdout.write(MESSAGE_PREFIX + JSON.stringify(reply) + '\n');
  }
}
