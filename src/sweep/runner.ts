/**
 * Runs a planned sweep: each run is a child `str-train --config <slot>/<id>.yaml` process (its
 * output appended to `<slot>/train.log`), one after another or `parallel` at once, a budget run
 * only after its STR run. A run is finished when `<slot>/result.json` exists (written from its
 * final checkpoint after the child exits 0); a sweep started again skips those, resumes a run
 * that has `checkpoints/last.safetensors` with `--resume`, and starts over (same seed) a run
 * killed before its first epoch ended.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import yaml from 'js-yaml';
import { OPTION_KEYS, optionSpec, type OptionKey } from '../config/schema.js';
import { readCheckpoint } from '../train/checkpoint.js';
import { modelFromCheckpoint } from '../report/checkpoint-model.js';
import { modelSummary } from '../sparsity/summary.js';
import { writeFileAtomicSync } from '../io/atomic.js';
import { UserError } from '../util/errors.js';
import type { SweepRun } from './plan.js';
import { formatDuration, type SweepRow } from './csv.js';

export interface CliEntry {
  /** node executable and the arguments before the command's own (the CLI script). */
  command: string;
  args: string[];
}

export interface RunnerOptions {
  runs: SweepRun[];
  out: string;
  parallel: number;
  /** STR_TRAIN_WASM_THREADS of every run. */
  threadsPerRun: number;
  cli: CliEntry;
  log: (line: string) => void;
  /** Called with the finished rows (plan order) whenever a run finishes. */
  onRows?: (rows: SweepRow[]) => Promise<void> | void;
}

export interface SweepOutcome {
  rows: SweepRow[];
  failed: Array<{ id: string; reason: string }>;
}

export const resultFile = (r: SweepRun) => join(r.slot, 'result.json');
export const logFile = (r: SweepRun) => join(r.slot, 'train.log');
export const lastCheckpoint = (r: SweepRun) => join(r.runDir, 'checkpoints', 'last.safetensors');
const pidFile = (r: SweepRun) => join(r.slot, 'run.pid');

/** True while a process with this id runs (EPERM: it exists under another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid in a pid file if that process still runs and (where /proc says) mentions `mark` on its command line. */
function livePid(file: string, mark: string): number | undefined {
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || !alive(pid)) return undefined;
  try {
    // a recycled pid belongs to some other program: only a process naming our file counts
    if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(mark)) return undefined;
  } catch {
    /* no /proc: trust the pid */
  }
  return pid;
}

/**
 * Differences between a run's configuration file from an earlier start and today's: none means
 * the run may be skipped or resumed. `workers` (it follows --parallel) and `config` are ignored; an option
 * missing from a file (or null) stands for its default, so a newer str-train's new options at
 * their defaults change nothing.
 */
export function configChanges(before: string, now: string): string[] {
  const a = (yaml.load(before) ?? {}) as Record<string, unknown>;
  const b = (yaml.load(now) ?? {}) as Record<string, unknown>;
  const known = (k: string) => (OPTION_KEYS as readonly string[]).includes(k);
  const value = (o: Record<string, unknown>, k: string) => o[k] ?? (known(k) ? optionSpec(k as OptionKey).default : undefined) ?? null;
  const out: string[] = [];
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    // workers follows --parallel; config is the file's own path (settings.yaml files carry it)
    if (k === 'workers' || k === 'config') continue;
    const va = value(a, k);
    const vb = value(b, k);
    if (JSON.stringify(va) !== JSON.stringify(vb)) out.push(`${k}: ${JSON.stringify(va)} → ${JSON.stringify(vb)}`);
  }
  return out;
}

/**
 * Before anything runs: takes the sweep folder's lock, checks that no run of an earlier sweep is
 * still alive, that runs already started were started with the same settings, and writes every
 * run's configuration file.
 */
export function prepareSweepFolder(runs: readonly SweepRun[], out: string): () => void {
  mkdirSync(out, { recursive: true });
  const lock = join(out, 'sweep.pid');
  const other = livePid(lock, 'sweep');
  if (other !== undefined) throw new UserError(`sweep --out ${out}: another sweep (pid ${other}) is running on this folder`);
  for (const r of runs) {
    const pid = livePid(pidFile(r), r.configFile);
    if (pid !== undefined) throw new UserError(`sweep --out ${out}: run ${r.id} of an earlier sweep is still running (pid ${pid}); stop it first`);
    const text = r.yaml;
    const changes = existsSync(r.configFile) ? configChanges(readFileSync(r.configFile, 'utf8'), text) : [];
    if (changes.length) {
      throw new UserError(`sweep --out ${out}: run ${r.id} was started with other settings (${changes.slice(0, 3).join(', ')}); use another --out or remove ${r.slot}`);
    }
  }
  for (const r of runs) writeFileAtomicSync(r.configFile, r.yaml);
  writeFileAtomicSync(lock, `${process.pid}\n`);
  return () => rmSync(lock, { force: true });
}

/** Seconds of training + validation over a run's epochs, from the `[x s]` of its epoch lines (a re-run epoch counts once). */
export function epochSeconds(logText: string): number {
  const byEpoch = new Map<number, number>();
  for (const l of logText.split('\n')) {
    const m = /^=> epoch (\d+):.*\[(\d+(?:\.\d+)?) s\]\s*$/.exec(l);
    if (m) byEpoch.set(Number(m[1]), Number(m[2]));
  }
  let s = 0;
  for (const v of byEpoch.values()) s += v;
  return s;
}

/** The CSV row of a finished run, from its final checkpoint (the cpu/wasm backend must be set). */
export async function collectRow(r: SweepRun, out: string): Promise<SweepRow> {
  const ck = await readCheckpoint(lastCheckpoint(r), 'sweep');
  if (ck.meta.epoch !== r.config.epochs) throw new UserError(`sweep: ${lastCheckpoint(r)} is at epoch ${ck.meta.epoch}, not the run's last (${r.config.epochs})`);
  const { model } = modelFromCheckpoint(ck);
  try {
    const s = modelSummary(model, r.config.image_size);
    return {
      method: r.method,
      target: r.target,
      sparsity: s.sparsity,
      nonzeros: s.nonzeros,
      effectiveMacs: s.effectiveMacs,
      bestTop1: ck.meta.best_acc1,
      finalTop1: ck.meta.curr_acc1 ?? 0,
      seconds: existsSync(logFile(r)) ? epochSeconds(readFileSync(logFile(r), 'utf8')) : 0,
      runDir: relative(out, r.runDir),
    };
  } finally {
    model.dispose();
  }
}

function readRow(r: SweepRun): SweepRow | undefined {
  if (!existsSync(resultFile(r))) return undefined;
  return JSON.parse(readFileSync(resultFile(r), 'utf8')) as SweepRow;
}

/** The last non-empty lines of a run's log, for a failure message. */
function tail(file: string, n = 1): string {
  if (!existsSync(file)) return '';
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '');
  return lines.slice(-n).join(' | ');
}

const clock = (t0: number) => formatDuration((performance.now() - t0) / 1000);

/** Runs the sweep to the end (finished runs skipped); failures are collected, not thrown. */
export async function runSweep(o: RunnerOptions): Promise<SweepOutcome> {
  const t0 = performance.now();
  const total = o.runs.length;
  const rows = new Map<string, SweepRow>();
  const failed = new Map<string, string>();
  for (const r of o.runs) {
    const row = readRow(r);
    if (row) {
      rows.set(r.id, row);
      o.log(`[sweep] ${r.id}: finished earlier (sparsity ${row.sparsity.toFixed(2)} %, top-1 ${row.finalTop1.toFixed(2)}), skipped`);
    }
  }
  const ordered = () => o.runs.filter((r) => rows.has(r.id)).map((r) => rows.get(r.id)!);
  const pending = o.runs.filter((r) => !rows.has(r.id));
  const children = new Set<ChildProcess>();
  let stopping: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    stopping = sig;
    for (const c of children) c.kill(sig);
  };
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((s) => {
    const h = () => onSignal(s);
    process.on(s, h);
    return [s, h] as const;
  });

  const start = async (r: SweepRun): Promise<void> => {
    const resume = existsSync(lastCheckpoint(r));
    // killed before its first epoch was saved: the folder would make the run number itself /0
    if (!resume && existsSync(r.runDir)) rmSync(r.runDir, { recursive: true, force: true });
    const n = rows.size + failed.size + children.size + 1;
    o.log(`[sweep] ${n}/${total} start ${r.id} (${r.setting})${resume ? ', resuming from checkpoints/last.safetensors' : ''}  [sweep ${clock(t0)}]`);
    const t = performance.now();
    const fd = openSync(logFile(r), 'a');
    writeFileSync(fd, `=== sweep: ${resume ? 'resume' : 'start'} ${r.id} at ${new Date().toISOString()}\n`);
    const args = [...o.cli.args, '--config', r.configFile, ...(resume ? ['--resume', lastCheckpoint(r)] : [])];
    const child = spawn(o.cli.command, args, {
      stdio: ['ignore', fd, fd],
      env: { ...process.env, STR_TRAIN_WASM_THREADS: String(o.threadsPerRun) },
    });
    closeSync(fd);
    children.add(child);
    if (child.pid) writeFileSync(pidFile(r), `${child.pid}\n`);
    const code = await new Promise<number | string>((res) => {
      child.on('error', (e) => res(e.message));
      child.on('exit', (c, s) => res(s ?? c ?? 1));
    });
    children.delete(child);
    rmSync(pidFile(r), { force: true });
    if (code !== 0) {
      const why = `${typeof code === 'number' ? `exit code ${code}` : code}: ${tail(logFile(r)) || 'no output'} (log: ${logFile(r)})`;
      failed.set(r.id, why);
      o.log(`[sweep] ${r.id} failed after ${clock(t)}, ${why}`);
      return;
    }
    try {
      const row = await collectRow(r, o.out);
      writeFileAtomicSync(resultFile(r), JSON.stringify(row, null, 1) + '\n');
      rows.set(r.id, row);
      o.log(
        `[sweep] ${rows.size + failed.size}/${total} done ${r.id}: sparsity ${row.sparsity.toFixed(2)} %, top-1 ${row.finalTop1.toFixed(2)} (best ${row.bestTop1.toFixed(2)}), ${clock(t)}  [sweep ${clock(t0)}]`,
      );
      await o.onRows?.(ordered());
    } catch (e) {
      failed.set(r.id, (e as Error).message);
      o.log(`[sweep] ${r.id} failed: ${(e as Error).message}`);
    }
  };

  try {
    const running = new Map<string, Promise<void>>();
    while (!stopping) {
      // a budget run whose STR run failed cannot run
      for (const r of pending) {
        if (r.after && failed.has(r.after) && !failed.has(r.id)) {
          failed.set(r.id, `needs ${r.after}, which failed`);
          o.log(`[sweep] ${r.id} skipped: needs ${r.after}, which failed`);
        }
      }
      const ready = pending.filter((r) => !rows.has(r.id) && !failed.has(r.id) && !running.has(r.id) && (!r.after || rows.has(r.after)));
      while (running.size < o.parallel && ready.length > 0) {
        const r = ready.shift()!;
        running.set(r.id, start(r).finally(() => running.delete(r.id)));
      }
      if (running.size === 0) break;
      await Promise.race(running.values());
    }
    await Promise.all(running.values());
  } finally {
    for (const [s, h] of handlers) process.off(s, h);
  }
  if (stopping) throw new UserError(`sweep: stopped by ${stopping}; start it again to continue`, stopping === 'SIGINT' ? 130 : 143);
  return { rows: ordered(), failed: [...failed].map(([id, reason]) => ({ id, reason })) };
}
