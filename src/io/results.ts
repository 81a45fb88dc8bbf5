import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { parse } from 'csv-parse/sync';
import { writeFileAtomicSync } from './atomic.js';
import { pyJsonFloats } from './pyformat.js';

export const RESULTS_HEADER = [
  'Date Finished',
  'Base Config',
  'Name',
  'Prune Rate',
  'Current Val Top 1',
  'Current Val Top 5',
  'Best Val Top 1',
  'Best Val Top 5',
  'Best Train Top 1',
  'Best Train Top 5',
];

export interface ResultRow {
  finished: Date;
  config: string;
  name: string;
  pruneRate: string;
  currTop1: number;
  currTop5: number;
  bestTop1: number;
  bestTop5: number;
  bestTrainTop1: number;
  bestTrainTop5: number;
}

const pad2 = (n: number) => String(n).padStart(2, '0');
/** `%m-%d-%y_%H:%M:%S` in local time, as the reference's results.csv. */
export function referenceDate(d: Date): string {
  return `${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}-${pad2(d.getFullYear() % 100)}_${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/**
 * Append one row to `<log_dir>/results.csv` (header written when the file is new), fields
 * separated by ", " like the reference (STR-SPEC §12.4). The file is rewritten atomically.
 */
export function appendResult(file: string, r: ResultRow): void {
  const before = existsSync(file) ? readFileSync(file, 'utf8') : stringify([RESULTS_HEADER], { delimiter: ', ' });
  const f2 = (x: number) => x.toFixed(2);
  const line = stringify(
    [[referenceDate(r.finished), r.config, r.name, r.pruneRate, f2(r.currTop1), f2(r.currTop5), f2(r.bestTop1), f2(r.bestTop5), f2(r.bestTrainTop1), f2(r.bestTrainTop5)]],
    { delimiter: ', ' },
  );
  writeFileAtomicSync(file, before + line);
}

/**
 * A per-epoch table (one row per epoch, one column per layer, then `total`), e.g. the run's
 * layer-wise sparsity; rows of a resumed run are kept and a re-run epoch replaces its row.
 */
export class EpochTable {
  private rows = new Map<number, Record<string, number>>();

  constructor(readonly file: string, readonly columns: string[]) {
    if (existsSync(file)) {
      const recs: Record<string, string>[] = parse(readFileSync(file, 'utf8'), { columns: true, skip_empty_lines: true });
      for (const r of recs) this.rows.set(Number(r.epoch), Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Number(v)])));
    }
  }

  set(epoch: number, values: Record<string, number>): void {
    this.rows.set(epoch, { epoch, ...values });
    const header = ['epoch', ...this.columns];
    const body = [...this.rows.keys()].sort((a, b) => a - b).map((e) => header.map((h) => this.rows.get(e)![h] ?? ''));
    writeFileAtomicSync(this.file, stringify([header, ...body]));
  }
}

/** `<root>/layerwise_{sparsity,threshold}/<name>.json` in Python json.dump format (§12.5). */
export function writeLayerwiseJson(root: string, kind: 'sparsity' | 'threshold', name: string, values: Record<string, number>): string {
  const file = join(root, `layerwise_${kind}`, `${name}.json`);
  writeFileAtomicSync(file, pyJsonFloats(values));
  return file;
}
