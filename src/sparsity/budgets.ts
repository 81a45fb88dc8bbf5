import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { UserError } from '../util/errors.js';

export interface BudgetLayer {
  /** 1-based layer index of the CSV. */
  index: number;
  /** Module name without the `module.` prefix, e.g. `layer1.0.conv1`. */
  name: string;
  params: number;
  flops: number;
  /** Sparsity in percent per budget column. */
  sparsity: number[];
}

export interface BudgetTable {
  /** Column labels: the overall sparsity of each learnt budget ("79.55", "90.23", ...). */
  columns: string[];
  layers: BudgetLayer[];
  overall?: { params: number; flops: number; sparsity: number[] };
}

/**
 * Parse the reference's `STR_Budgets_ResNet50.csv` layout (UTF-8 BOM, CRLF, a `Metric,Params,
 * FLOPs,Sparsity (%)` header whose sparsity columns are identified by the `Overall` row,
 * `Layer <i> - <name>` rows; STR-SPEC §14.1) or the `Layer,STR,Uniform,...` layout of
 * `SparsityDistributions_90_ResNet50.csv` (§14.2, layer names then come from `layerNames`).
 */
export function parseBudgetCsv(path: string, layerNames?: readonly string[]): BudgetTable {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(`--budget ${path}: cannot read the file (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  let rows: string[][];
  try {
    rows = parse(text, { bom: true, relax_column_count: true, skip_empty_lines: true, trim: true });
  } catch (e) {
    throw new UserError(`--budget ${path}: not a valid CSV (${(e as Error).message})`);
  }
  const num = (s: string, where: string) => {
    const v = Number(s.replace(/%$/, ''));
    if (s === '' || !Number.isFinite(v)) throw new UserError(`--budget ${path}: ${where}: expected a number, got '${s}'`);
    return v;
  };
  const head = rows[0] ?? [];
  if (head[0] === 'Metric') {
    const overallRow = rows.find((r) => r[0] === 'Overall');
    if (!overallRow) throw new UserError(`--budget ${path}: no 'Overall' row naming the sparsity columns`);
    const columns = overallRow.slice(3).filter((c) => c !== '');
    const layers: BudgetLayer[] = [];
    for (const r of rows) {
      const m = /^Layer (\d+) - (.+)$/.exec(r[0]);
      if (!m) continue;
      const where = `layer ${m[1]} (${m[2]})`;
      layers.push({
        index: Number(m[1]),
        name: m[2].trim(),
        params: num(r[1], where),
        flops: num(r[2], where),
        sparsity: columns.map((_, j) => num(r[3 + j], where)),
      });
    }
    return {
      columns,
      layers,
      overall: { params: num(overallRow[1], 'Overall'), flops: num(overallRow[2], 'Overall'), sparsity: columns.map((c) => Number(c)) },
    };
  }
  if (head[0] === 'Layer') {
    const columns = head.slice(1);
    const layers = rows.slice(1).map((r, i) => {
      const index = num(r[0], `row ${i + 2}`);
      const name = layerNames?.[index - 1];
      if (!name) throw new UserError(`--budget ${path}: layer ${index} has no name (this CSV identifies layers by index only; the model has ${layerNames?.length ?? 0} layers)`);
      return { index, name, params: NaN, flops: NaN, sparsity: columns.map((_, j) => num(r[1 + j], `layer ${index}`)) };
    });
    return { columns, layers };
  }
  throw new UserError(`--budget ${path}: unrecognised budget CSV (expected a 'Metric,Params,FLOPs,...' or 'Layer,...' header)`);
}

/** Per-layer prune rates (fractions) of one budget column, keyed by module name. */
export function budgetColumn(table: BudgetTable, column: string, path = 'budget'): Map<string, number> {
  // numeric labels match by value, so "87.70" finds the "87.7" column
  const j = table.columns.findIndex((c) => c === column || (c.trim() !== '' && column.trim() !== '' && Number(c) === Number(column)));
  if (j < 0) throw new UserError(`--budget-column ${column}: not a column of ${path} (columns: ${table.columns.join(', ')})`);
  return new Map(table.layers.map((l) => [l.name, l.sparsity[j] / 100]));
}
