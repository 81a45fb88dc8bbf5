/**
 * The sweep's figure, as the paper's Figures 1-2: final top-1 against total sparsity and against
 * effective multiply-accumulates, one series per method, the dense run a dashed line; SVG + PNG.
 */
import { writeFileAtomic } from '../io/atomic.js';
import { xyChartSvg, type Series } from '../report/svg.js';
import { svgToPng } from '../report/report.js';
import type { SweepRow } from './csv.js';

/** One colour per method, the same in every sweep's chart. */
const METHOD_COLOURS: Record<string, string> = { str: '#e15759', gmp: '#4e79a7', dnw: '#59a14f', 'dnw-str-budget': '#f28e2b' };

export function sweepChartSvg(rows: readonly SweepRow[], title: string): string {
  // dense has no target: a dashed line at its top-1, across both panels, as the paper draws it
  const references = rows.filter((r) => r.method === 'dense').map((r) => ({ label: 'dense', y: r.finalTop1 }));
  const methods = [...new Set(rows.filter((r) => r.method !== 'dense').map((r) => r.method))];
  const series = (x: (r: SweepRow) => number): Series[] =>
    methods.map((m) => ({ name: m, colour: METHOD_COLOURS[m], points: rows.filter((r) => r.method === m).map((r) => [x(r), r.finalTop1] as [number, number]) }));
  return xyChartSvg(
    [
      { xLabel: 'total sparsity (%)', yLabel: 'final val top-1 (%)', series: series((r) => r.sparsity), references },
      { xLabel: 'effective MACs per image (millions)', yLabel: 'final val top-1 (%)', series: series((r) => r.effectiveMacs / 1e6), references },
    ],
    { title },
  );
}

/** Writes `<base>.svg` and (unless png is false) `<base>.png`; returns the files written. */
export async function writeSweepChart(base: string, rows: readonly SweepRow[], title: string, png = true): Promise<string[]> {
  const svg = sweepChartSvg(rows, title);
  await writeFileAtomic(`${base}.svg`, svg);
  if (!png) return [`${base}.svg`];
  await writeFileAtomic(`${base}.png`, await svgToPng(svg));
  return [`${base}.svg`, `${base}.png`];
}
