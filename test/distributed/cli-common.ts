// Shared by the end-to-end tests of data-parallel training through the real CLI (cli-*.test.ts):
// spawns `str-train` (src/cli/main.ts under tsx, dist/src/cli/main.js when compiled), builds a tiny
// synthetic ImageFolder, and reads run folders. No tests here.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FixtureRun } from './run-fixture.js';
import { writeSyntheticImageFolder } from '../../src/data/synthetic.js';
import { readCheckpoint, type CheckpointContent } from '../../src/train/checkpoint.js';
import { ENV_TEST_HOOKS, type TestHooks } from '../../src/distributed/test-hooks.js';

const FROM_TS = import.meta.url.endsWith('.ts');
/** The repository root (cwd of the spawned CLI, so that `--import tsx` resolves). */
export const REPO = fileURLToPath(new URL(FROM_TS ? '../../' : '../../../', import.meta.url));
const MAIN = fileURLToPath(new URL(`../../src/cli/main.${FROM_TS ? 'ts' : 'js'}`, import.meta.url));

/** node arguments running the CLI with these arguments. */
export function cliArgs(args: string[]): string[] {
  return FROM_TS ? ['--import', 'tsx', MAIN, ...args] : [MAIN, ...args];
}

/** ResNet18 at 1/8 width, small stem, 16 px, wasm: a few ms per image on 2 cores. */
export const TINY_MODEL = [
  '--set', 'ImageFolder', '--arch', 'ResNet18', '--width-mult', '0.125', '--stem', 'small',
  '--image-size', '16', '--val-resize', '16', '--backend', 'wasm', '--workers', '1',
  '--print-freq', '1', '--progress', 'plain',
];

export function tempDir(prefix: string, dirs: string[]): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** 4 classes of synthetic 24 px JPEGs: perClass train and perClass/4 val images per class. */
export async function tinyData(dir: string, perClass: number): Promise<string> {
  await writeSyntheticImageFolder({ out: dir, classes: 4, perClass, valPerClass: perClass / 4, size: [24, 24], seed: 7 });
  return dir;
}

export interface CliOptions {
  hooks?: TestHooks;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/** Environment for a run with the given test hooks (see src/distributed/test-hooks.ts). */
export function hookEnv(hooks?: TestHooks): NodeJS.ProcessEnv {
  return hooks ? { [ENV_TEST_HOOKS]: JSON.stringify(hooks) } : {};
}

/** Starts `str-train <args>` (cwd: the repository); done rejects after timeoutMs (default 60 s), killing it. */
export function startCli(args: string[], o: CliOptions = {}) {
  return startCommand(process.execPath, cliArgs(args), { ...process.env, ...hookEnv(o.hooks), ...o.env }, o.timeoutMs ?? 60_000);
}

/** Like run-fixture's startCommand, with the repository as cwd (`--import tsx` resolves from it). */
export function startCommand(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number) {
  const t0 = performance.now();
  const child = spawn(cmd, args, { env, cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<FixtureRun>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${args.join(' ')} did not finish within ${timeoutMs} ms; stdout:\n${stdout.slice(-2000)}\nstderr:\n${stderr.slice(-2000)}`));
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - t0 });
    });
  });
  return { child, done, output: () => ({ stdout, stderr }) };
}

/** Runs `str-train <args>` to completion and asserts exit code 0. */
export async function runCli(args: string[], o: CliOptions = {}): Promise<FixtureRun> {
  const r = await startCli(args, o).done;
  assert.equal(r.code, 0, `str-train ${args.join(' ')} exited with ${r.code}/${r.signal}:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
  return r;
}

/** The one run folder below a --log-dir (the folder holding checkpoints/). */
export function runDirOf(logDir: string): string {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (!statSync(p).isDirectory()) continue;
      if (e === 'checkpoints') found.push(d);
      else walk(p);
    }
  };
  walk(logDir);
  assert.equal(found.length, 1, `expected one run folder below ${logDir}, found ${found.join(', ') || 'none'}`);
  return found[0];
}

export const checkpointOf = (logDir: string, name = 'last') => readCheckpoint(join(runDirOf(logDir), 'checkpoints', `${name}.safetensors`));

/**
 * Asserts that two runs that started from the same `initial` checkpoint ended with the same tensors
 * (model and optimizer buffers): per float tensor, max|a − b| ≤ rtol·max|a − a₀| (a₀: the initial
 * value; the optimizer's buffers start at zero) plus a float32 rounding floor. Relative to how far
 * training moved the tensor, so a wrong gradient cannot hide behind large weights. Integer tensors
 * (BatchNorm counters) must be equal. Returns the largest diff/moved ratio, for messages.
 */
export function assertRunsClose(a: CheckpointContent, b: CheckpointContent, initial: CheckpointContent, rtol: number, what: string): number {
  let worst = 0;
  for (const kind of ['model', 'optimizer'] as const) {
    const [x, y] = kind === 'model' ? [a.stateDict, b.stateDict] : [a.optimizerState, b.optimizerState];
    assert.deepEqual([...y.keys()], [...x.keys()], `${what}: ${kind} entries differ`);
    for (const [k, ta] of x) {
      const tb = y.get(k)!;
      assert.deepEqual(tb.shape, ta.shape, `${what}: shape of ${k}`);
      if (!(ta.data instanceof Float32Array)) {
        assert.deepEqual(tb.data, ta.data, `${what}: ${k}`);
        continue;
      }
      const da = ta.data;
      const db = tb.data as Float32Array;
      const d0 = kind === 'model' ? (initial.stateDict.get(k)?.data as Float32Array) : undefined;
      let moved = 0;
      let diff = 0;
      let scale = 0;
      for (let i = 0; i < da.length; i++) {
        if (!Number.isFinite(da[i]) || !Number.isFinite(db[i])) assert.fail(`${what}: ${kind} ${k}[${i}] is not finite`);
        scale = Math.max(scale, Math.abs(da[i]));
        moved = Math.max(moved, Math.abs(da[i] - (d0 ? d0[i] : 0)));
        diff = Math.max(diff, Math.abs(da[i] - db[i]));
      }
      if (diff > rtol * moved + 1e-6 * scale) {
        assert.fail(`${what}: ${kind} ${k} differs by ${diff.toExponential(2)} between the runs; training moved it by ${moved.toExponential(2)}`);
      }
      if (moved > 0) worst = Math.max(worst, diff / moved);
    }
  }
  return worst;
}

/** Per-step parameter hashes a rank wrote through the hashDir hook: [step, hex][]. */
export function readHashes(dir: string, rank: number): Array<[number, string]> {
  const f = join(dir, `hashes-r${rank}.txt`);
  assert.ok(existsSync(f), `rank ${rank} wrote no parameter hashes`);
  return readFileSync(f, 'utf8')
    .trim()
    .split('\n')
    .map((l) => {
      const [s, h] = l.split(' ');
      return [Number(s), h];
    });
}

/** Asserts rank 0 and rank 1 recorded the same parameter bits before training and after each of `steps` steps. */
export function assertBitIdenticalSteps(dir: string, steps: number): void {
  const h0 = readHashes(dir, 0);
  const h1 = readHashes(dir, 1);
  assert.equal(h0.length, steps + 1, 'rank 0 recorded a hash before training and after every step');
  for (let i = 0; i < h0.length; i++) {
    assert.deepEqual(h1[i], h0[i], `the workers' parameters differ after step ${h0[i][0]}`);
  }
  // the parameters did change (hashes of an untouched model would match trivially)
  assert.equal(new Set(h0.map(([, h]) => h)).size, h0.length, 'every step changed the parameters');
}

/** `=> epoch N: … train … loss L … val top-1 V` lines of rank 0: [epoch, train loss, train top-1, val top-1]. */
/** The progress lines' Acc@1/Acc@5 (value and running average) and loss, train and test, in order. */
export function stepLines(stdout: string): Array<{ line: string; loss: number; acc: string }> {
  const out = [];
  for (const m of stdout.matchAll(/^((?:Epoch: \[\d+\]|Test: )\[\s*\d+\/\d+\]).*\tLoss ([\d.]+) \(\s*[\d.]+\)\t(Acc@1 .*)$/gm)) {
    out.push({ line: m[1], loss: Number(m[2]), acc: m[3] });
  }
  return out;
}

export function epochLines(stdout: string): Array<{ epoch: number; trainLoss: number; trainTop1: number; valTop1: number }> {
  const out = [];
  for (const m of stdout.matchAll(/^=> epoch (\d+): .*train top-1 ([\d.]+) loss ([\d.]+) .*val top-1 ([\d.]+)/gm)) {
    out.push({ epoch: Number(m[1]), trainTop1: Number(m[2]), trainLoss: Number(m[3]), valTop1: Number(m[4]) });
  }
  return out;
}

/** Process lines (pid and arguments) whose command line contains marker. */
export function processesWith(marker: string): string[] {
  const ps = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  return ps.split('\n').filter((l) => l.includes(marker) && !l.includes(' ps -eo'));
}

/** Direct children of pid, as [pid, args]. */
export function childrenOf(pid: number): Array<[number, string]> {
  let ps = '';
  try {
    ps = execFileSync('ps', ['--ppid', String(pid), '-o', 'pid=,args='], { encoding: 'utf8' });
  } catch {
    return []; // ps exits 1 when there are none
  }
  return ps
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const m = /^\s*(\d+)\s+(.*)$/.exec(l)!;
      return [Number(m[1]), m[2]];
    });
}
