/**
 * Hand-written SVG charts for the sparsity report: a bar chart of layer-wise sparsity (like the
 * paper's budget figure) and line charts of per-epoch curves. Bars and points carry data-*
 * attributes with their exact values, so a chart can be checked by parsing it. No charting
 * library: a few rects, lines and text elements are all these need.
 */

export interface Bar {
  label: string;
  /** Percent, 0–100. */
  value: number;
  /** Extra text for the tooltip. */
  note?: string;
}

export interface Series {
  name: string;
  points: Array<[number, number]>;
  colour?: string;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
/** Coordinates with 2 decimals: enough for the eye, exact values live in data-* attributes. */
const c2 = (x: number) => String(Math.round(x * 100) / 100);

const FONT = 'font-family="DejaVu Sans, Arial, Helvetica, sans-serif"';

function svgOpen(width: number, height: number, title: string): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT} font-size="11">`,
    `<title>${esc(title)}</title>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
  ];
}

/** A "nice" upper bound for an axis (1, 2, 2.5, 5 × 10^k) at or above `max`. */
export function niceMax(max: number): number {
  if (!(max > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= max - 1e-12) return m * p;
  return 10 * p;
}

function yAxis(out: string[], x0: number, y0: number, w: number, h: number, max: number, label: string): void {
  const ticks = 5;
  for (let i = 0; i <= ticks; i++) {
    const v = (max * i) / ticks;
    const y = y0 + h - (h * i) / ticks;
    out.push(`<line class="grid" x1="${x0}" y1="${c2(y)}" x2="${x0 + w}" y2="${c2(y)}" stroke="#dddddd" stroke-width="1"/>`);
    out.push(`<text x="${x0 - 6}" y="${c2(y + 4)}" text-anchor="end">${esc(String(Math.round(v * 1000) / 1000))}</text>`);
  }
  out.push(`<line x1="${x0}" y1="${y0}" x2="${x0}" y2="${y0 + h}" stroke="#333333"/>`);
  out.push(`<line x1="${x0}" y1="${y0 + h}" x2="${x0 + w}" y2="${y0 + h}" stroke="#333333"/>`);
  out.push(`<text x="${14}" y="${c2(y0 + h / 2)}" text-anchor="middle" transform="rotate(-90 14 ${c2(y0 + h / 2)})">${esc(label)}</text>`);
}

/**
 * Bars of layer-wise sparsity (0–100 %) in layer order, each `<rect class="bar">` with
 * data-layer and data-sparsity; x labels are the layer names, rotated.
 */
export function barChartSvg(bars: readonly Bar[], o: { title: string; yLabel?: string; reference?: { label: string; value: number } }): string {
  const barW = bars.length > 40 ? 14 : 22;
  const left = 60;
  const top = 44;
  const plotH = 260;
  const shortLabel = (l: string) => l.replace(/^module\./, '');
  const labelSpace = 16 + 5 * Math.min(40, Math.max(0, ...bars.map((b) => shortLabel(b.label).length)));
  const plotW = Math.max(400, bars.length * barW);
  const width = left + plotW + 20;
  const height = top + plotH + labelSpace;
  const out = svgOpen(width, height, o.title);
  out.push(`<text x="${c2(width / 2)}" y="22" text-anchor="middle" font-size="14" font-weight="bold">${esc(o.title)}</text>`);
  yAxis(out, left, top, plotW, plotH, 100, o.yLabel ?? 'sparsity (%)');
  const slot = plotW / Math.max(1, bars.length);
  bars.forEach((b, i) => {
    const v = Math.min(100, Math.max(0, b.value));
    const h = (plotH * v) / 100;
    const x = left + i * slot + slot * 0.15;
    const tip = `${b.label}: ${b.value.toFixed(2)} %${b.note ? ` (${b.note})` : ''}`;
    out.push(
      `<rect class="bar" data-index="${i + 1}" data-layer="${esc(b.label)}" data-sparsity="${b.value}" x="${c2(x)}" y="${c2(top + plotH - h)}" width="${c2(slot * 0.7)}" height="${c2(h)}" fill="#3b6ea8"><title>${esc(tip)}</title></rect>`,
    );
    const lx = left + i * slot + slot / 2;
    const ly = top + plotH + 8;
    out.push(`<text class="xlabel" x="${c2(lx)}" y="${c2(ly)}" text-anchor="end" font-size="9" transform="rotate(-60 ${c2(lx)} ${c2(ly)})">${esc(shortLabel(b.label))}</text>`);
  });
  if (o.reference) {
    const y = top + plotH - (plotH * o.reference.value) / 100;
    out.push(`<line class="reference" data-value="${o.reference.value}" x1="${left}" y1="${c2(y)}" x2="${left + plotW}" y2="${c2(y)}" stroke="#c0392b" stroke-dasharray="6 4"/>`);
    out.push(`<text x="${left + plotW - 4}" y="${c2(y - 4)}" text-anchor="end" fill="#c0392b" stroke="#ffffff" stroke-width="3" paint-order="stroke">${esc(o.reference.label)}</text>`);
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/**
 * One panel per series stacked vertically (each with its own y axis from 0), x = epoch. Each
 * series is a `<polyline class="curve" data-series>` plus `<circle class="point" data-x data-y>`.
 */
export function lineChartSvg(panels: ReadonlyArray<{ series: Series; yLabel: string; yMax?: number }>, o: { title: string; xLabel?: string }): string {
  const left = 64;
  const top = 44;
  const plotW = 560;
  const plotH = 200;
  const gap = 64;
  const width = left + plotW + 24;
  const height = top + panels.length * (plotH + gap);
  const out = svgOpen(width, height, o.title);
  out.push(`<text x="${c2(width / 2)}" y="22" text-anchor="middle" font-size="14" font-weight="bold">${esc(o.title)}</text>`);
  const xs = panels.flatMap((p) => p.series.points.map(([x]) => x));
  const xMin = xs.length ? Math.min(...xs) : 0;
  const xMax = xs.length ? Math.max(...xs) : 1;
  const xSpan = xMax > xMin ? xMax - xMin : 1;
  panels.forEach((p, k) => {
    const y0 = top + k * (plotH + gap);
    const yMax = p.yMax ?? niceMax(Math.max(0, ...p.series.points.map(([, y]) => y)));
    yAxis(out, left, y0, plotW, plotH, yMax, p.yLabel);
    const px = (x: number) => left + (plotW * (x - xMin)) / xSpan;
    const py = (y: number) => y0 + plotH - (plotH * Math.min(yMax, Math.max(0, y))) / yMax;
    const xTicks = [...new Set(p.series.points.map(([x]) => x))];
    const step = Math.max(1, Math.ceil(xTicks.length / 10));
    xTicks.forEach((x, i) => {
      if (i % step === 0 || i === xTicks.length - 1) out.push(`<text x="${c2(px(x))}" y="${y0 + plotH + 16}" text-anchor="middle">${x}</text>`);
    });
    out.push(`<text x="${c2(left + plotW / 2)}" y="${y0 + plotH + 34}" text-anchor="middle">${esc(o.xLabel ?? 'epoch')}</text>`);
    const colour = p.series.colour ?? '#3b6ea8';
    const pts = p.series.points.map(([x, y]) => `${c2(px(x))},${c2(py(y))}`).join(' ');
    out.push(`<polyline class="curve" data-series="${esc(p.series.name)}" points="${pts}" fill="none" stroke="${colour}" stroke-width="2"/>`);
    for (const [x, y] of p.series.points) {
      out.push(`<circle class="point" data-series="${esc(p.series.name)}" data-x="${x}" data-y="${y}" cx="${c2(px(x))}" cy="${c2(py(y))}" r="3" fill="${colour}"><title>${esc(`${p.series.name} @ ${x}: ${y.toFixed(2)}`)}</title></circle>`);
    }
    if (p.series.points.length === 0) out.push(`<text x="${c2(left + plotW / 2)}" y="${c2(y0 + plotH / 2)}" text-anchor="middle" fill="#888888">no data</text>`);
    out.push(`<text x="${left + 6}" y="${y0 - 6}" font-weight="bold">${esc(p.series.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** Distinguishable series colours (Tableau 10), in order. */
export const SERIES_COLOURS = ['#4e79a7', '#e15759', '#59a14f', '#f28e2b', '#b07aa1', '#76b7b2', '#edc948', '#ff9da7', '#9c755f', '#bab0ac'];

export interface XYPanel {
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Axis ranges; default: the data's, padded to tick steps. */
  x?: [number, number];
  y?: [number, number];
  /** Horizontal reference lines (a baseline's value), dashed, labelled at the right. */
  references?: Array<{ label: string; y: number }>;
}

/** [lo, hi] widened to a "nice" step so 5 ticks land on round values. */
function niceRange(lo: number, hi: number): [number, number, number] {
  // a span that is zero, or only float noise next to the values (a sweep's one target: 90.00 and
  // 90.0001 % sparse), is widened by 5 % of the value, so the points do not land at opposite edges
  if (!(hi - lo > 1e-3 * Math.max(Math.abs(lo), Math.abs(hi)))) {
    const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.05 : 1;
    lo -= pad;
    hi += pad;
  }
  const step = niceMax((hi - lo) / 5);
  return [Math.floor(lo / step) * step, Math.ceil(hi / step) * step, step];
}

/**
 * Panels side by side, each an x-y plot of several series (points joined in x order) with both
 * axes labelled and a legend: `<polyline class="curve" data-series>` and `<circle class="point"
 * data-series data-x data-y>` per point, so the values can be checked by parsing.
 */
export function xyChartSvg(panels: readonly XYPanel[], o: { title: string }): string {
  const left = 64;
  const top = 48;
  const plotW = 420;
  const plotH = 300;
  const gap = 90;
  const legendH = 20;
  const width = left + panels.length * (plotW + gap) - gap + 24;
  const height = top + legendH + plotH + 56;
  const out = svgOpen(width, height, o.title);
  out.push(`<text x="${c2(width / 2)}" y="22" text-anchor="middle" font-size="14" font-weight="bold">${esc(o.title)}</text>`);
  const names = [...new Set(panels.flatMap((p) => p.series.map((s) => s.name)))];
  const colourOf = new Map<string, string>();
  for (const p of panels) for (const s of p.series) if (s.colour) colourOf.set(s.name, s.colour);
  names.forEach((n, i) => colourOf.set(n, colourOf.get(n) ?? SERIES_COLOURS[i % SERIES_COLOURS.length]));
  // legend: one swatch per series, in a row under the title
  let lx = left;
  for (const n of names) {
    out.push(`<g class="legend" data-series="${esc(n)}"><rect x="${lx}" y="${top - 14}" width="12" height="12" fill="${colourOf.get(n)}"/><text x="${lx + 16}" y="${top - 4}">${esc(n)}</text></g>`);
    lx += 40 + 7 * n.length;
  }
  panels.forEach((p, k) => {
    const x0 = left + k * (plotW + gap);
    const y0 = top + legendH;
    const pts = p.series.flatMap((s) => s.points);
    const span = (v: number[], given?: [number, number]): [number, number, number] =>
      given ? [given[0], given[1], (given[1] - given[0]) / 5] : v.length ? niceRange(Math.min(...v), Math.max(...v)) : [0, 1, 0.2];
    const [xLo, xHi, xStep] = span(pts.map(([x]) => x), p.x);
    const [yLo, yHi, yStep] = span([...pts.map(([, y]) => y), ...(p.references ?? []).map((r) => r.y)], p.y);
    const px = (x: number) => x0 + (plotW * (x - xLo)) / (xHi - xLo);
    const py = (y: number) => y0 + plotH - (plotH * (y - yLo)) / (yHi - yLo);
    const round = (v: number) => String(Math.round(v * 1000) / 1000);
    for (let v = yLo; v <= yHi + yStep / 2; v += yStep) {
      out.push(`<line class="grid" x1="${x0}" y1="${c2(py(v))}" x2="${x0 + plotW}" y2="${c2(py(v))}" stroke="#dddddd" stroke-width="1"/>`);
      out.push(`<text x="${x0 - 6}" y="${c2(py(v) + 4)}" text-anchor="end">${round(v)}</text>`);
    }
    for (let v = xLo; v <= xHi + xStep / 2; v += xStep) {
      out.push(`<line class="grid" x1="${c2(px(v))}" y1="${y0}" x2="${c2(px(v))}" y2="${y0 + plotH}" stroke="#eeeeee" stroke-width="1"/>`);
      out.push(`<text x="${c2(px(v))}" y="${y0 + plotH + 16}" text-anchor="middle">${round(v)}</text>`);
    }
    out.push(`<line x1="${x0}" y1="${y0}" x2="${x0}" y2="${y0 + plotH}" stroke="#333333"/>`);
    out.push(`<line x1="${x0}" y1="${y0 + plotH}" x2="${x0 + plotW}" y2="${y0 + plotH}" stroke="#333333"/>`);
    out.push(`<text class="xaxis" x="${c2(x0 + plotW / 2)}" y="${y0 + plotH + 38}" text-anchor="middle">${esc(p.xLabel)}</text>`);
    const ly = y0 + plotH / 2;
    const lxx = x0 - 46;
    out.push(`<text class="yaxis" x="${lxx}" y="${c2(ly)}" text-anchor="middle" transform="rotate(-90 ${lxx} ${c2(ly)})">${esc(p.yLabel)}</text>`);
    for (const s of p.series) {
      const colour = colourOf.get(s.name)!;
      const sorted = [...s.points].sort((a, b) => a[0] - b[0]);
      if (sorted.length > 1) {
        out.push(`<polyline class="curve" data-series="${esc(s.name)}" points="${sorted.map(([x, y]) => `${c2(px(x))},${c2(py(y))}`).join(' ')}" fill="none" stroke="${colour}" stroke-width="2"/>`);
      }
      for (const [x, y] of sorted) {
        out.push(`<circle class="point" data-series="${esc(s.name)}" data-x="${x}" data-y="${y}" cx="${c2(px(x))}" cy="${c2(py(y))}" r="4" fill="${colour}"><title>${esc(`${s.name}: ${p.xLabel} ${round(x)}, ${p.yLabel} ${y.toFixed(2)}`)}</title></circle>`);
      }
    }
    for (const r of p.references ?? []) {
      out.push(`<line class="reference" data-label="${esc(r.label)}" data-y="${r.y}" x1="${x0}" y1="${c2(py(r.y))}" x2="${x0 + plotW}" y2="${c2(py(r.y))}" stroke="#555555" stroke-dasharray="6 4"/>`);
      out.push(`<text x="${x0 + plotW - 4}" y="${c2(py(r.y) - 4)}" text-anchor="end" fill="#555555" stroke="#ffffff" stroke-width="3" paint-order="stroke">${esc(`${r.label} ${r.y.toFixed(2)}`)}</text>`);
    }
    if (pts.length === 0 && !p.references?.length) out.push(`<text x="${c2(x0 + plotW / 2)}" y="${c2(y0 + plotH / 2)}" text-anchor="middle" fill="#888888">no data</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
