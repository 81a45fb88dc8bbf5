/**
 * `sweep.csv`: one row per finished run, in plan order, and the same table printed. Numbers are
 * written with fixed decimals so an interrupted and an uninterrupted sweep give identical rows
 * (time_s aside, which is wall time).
 */
import { readFileSync } from 'node:fs';
import { stringify } from 'csv-stringify/sync';
import { parse } from 'csv-parse/sync';
import { writeFileAtomicSync } from '../io/atomic.js';

export interface SweepRow {
  method: string;
  /** Target total sparsity (percent); undefined for dense. */
  target?: number;
  /** Percent zeros over every conv/fc weight of the final model. */
  sparsity: number;
  nonzeros: number;
  /** Multiply-accumulates of the non-zero weights, per image at the run's image size. */
  effectiveMacs: number;
  bestTop1: number;
  finalTop1: number;
  /** Seconds of training + validation over the run's epochs. */
  seconds: number;
  /** The run folder, relative to the sweep folder. */
  runDir: string;
}

export const SWEEP_CSV_HEADER = ['method', 'target', 'achieved_sparsity', 'nonzeros', 'effective_macs', 'best_top1', 'final_top1', 'time_s', 'run_dir'];

function cells(r: SweepRow): string[] {
  return [
    r.method,
    r.target === undefined ? '' : String(r.target),
    r.sparsity.toFixed(2),
    String(r.nonzeros),
    String(r.effectiveMacs),
    r.bestTop1.toFixed(2),
    r.finalTop1.toFixed(2),
    r.seconds.toFixed(1),
    r.runDir,
  ];
}

export function sweepCsv(rows: readonly SweepRow[]): string {
  return stringify([SWEEP_CSV_HEADER, ...rows.map(cells)]);
}

export function writeSweepCsv(file: string, rows: readonly SweepRow[]): void {
  writeFileAtomicSync(file, sweepCsv(rows));
}

/** Reads a sweep.csv back (the chart and tests use it). */
export function readSweepCsv(file: string): SweepRow[] {
  const recs: Record<string, string>[] = parse(readFileSync(file, 'utf8'), { columns: true, skip_empty_lines: true });
  return recs.map((r) => ({
    method: r.method,
    target: r.target === '' ? undefined : Number(r.target),
    sparsity: Number(r.achieved_sparsity),
    nonzeros: Number(r.nonzeros),
    effectiveMacs: Number(r.effective_macs),
    bestTop1: Number(r.best_top1),
    finalTop1: Number(r.final_top1),
    seconds: Number(r.time_s),
    runDir: r.run_dir,
  }));
}

const fmtM = (n: number) => `${(n / 1e6).toFixed(2)}M`;

/** The table as fixed-width text: what the sweep prints at the end. */
export function formatSweepTable(rows: readonly SweepRow[]): string {
  const header = ['method', 'target %', 'sparsity %', 'non-zeros', 'eff. MACs', 'best top-1', 'final top-1', 'time'];
  const body = rows.map((r) => [
    r.method,
    r.target === undefined ? '-' : String(r.target),
    r.sparsity.toFixed(2),
    r.nonzeros.toLocaleString('en-US'),
    fmtM(r.effectiveMacs),
    r.bestTop1.toFixed(2),
    r.finalTop1.toFixed(2),
    formatDuration(r.seconds),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (c: string[]) => c.map((x, i) => (i === 0 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** `1h02m03s`, `4m05s`, `12.3s`. */
export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m${ss}s` : `${m}m${ss}s`;
}
