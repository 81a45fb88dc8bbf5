/**
 * The sweep's figure, as the paper's Figures 1-2: final top-1 against total sparsity and against
 * effective multiply-accumulates, one series per method (dense is a single point), SVG + PNG.
 */
import { writeFileAtomic } from '../io/atomic.js';
import { xyChartSvg, type Series } from '../report/svg.js';
import { svgToPng } from '../report/report.js';
import type { SweepRow } from './csv.js';

export function sweepChartSvg(rows: readonly SweepRow[], title: string): string {
  const methods = [...new Set(rows.map((r) => r.method))];
  const series = (x: (r: SweepRow) => number): Series[] =>
    methods.map((m) => ({ name: m, points: rows.filter((r) => r.method === m).map((r) => [x(r), r.finalTop1] as [number, number]) }));
  return xyChartSvg(
    [
      { xLabel: 'total sparsity (%)', yLabel: 'final val top-1 (%)', series: series((r) => r.sparsity) },
      { xLabel: 'effective MACs per image (millions)', yLabel: 'final val top-1 (%)', series: series((r) => r.effectiveMacs / 1e6) },
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
