/**
 * sweep.csv (exact text, read back), the printed table, and the chart: both panels' axes
 * labelled, one series per method, every point at its CSV values.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { formatDuration, formatSweepTable, readSweepCsv, sweepCsv, writeSweepCsv, type SweepRow } from '../../src/sweep/csv.js';
import { sweepChartSvg, writeSweepChart } from '../../src/sweep/chart.js';
import { tmpDir } from '../helpers/run.js';

const ROWS: SweepRow[] = [
  { method: 'dense', sparsity: 0, nonzeros: 174808, effectiveMacs: 2_216_000, bestTop1: 83.1, finalTop1: 82.5, seconds: 61.25, runDir: 'dense/dense/dense/prune_rate=0.0' },
  { method: 'gmp', target: 90, sparsity: 90.001, nonzeros: 17480, effectiveMacs: 301_234, bestTop1: 80, finalTop1: 79.456, seconds: 3725, runDir: 'gmp-90/x' },
  { method: 'str', target: 90, sparsity: 89.8, nonzeros: 17830, effectiveMacs: 250_000, bestTop1: 81.2, finalTop1: 81.2, seconds: 70, runDir: 'str-90/x' },
  { method: 'gmp', target: 50, sparsity: 50, nonzeros: 87404, effectiveMacs: 1_108_000, bestTop1: 82, finalTop1: 81.9, seconds: 65, runDir: 'gmp-50/x' },
];

const root = tmpDir('sweep-csv');
after(() => fs.rmSync(root, { recursive: true, force: true }));

test('sweep.csv: header, fixed decimals, empty target for dense; reads back', () => {
  const text = sweepCsv(ROWS.slice(0, 2));
  assert.equal(
    text,
    'method,target,achieved_sparsity,nonzeros,effective_macs,best_top1,final_top1,time_s,run_dir\n' +
      'dense,,0.00,174808,2216000,83.10,82.50,61.3,dense/dense/dense/prune_rate=0.0\n' +
      'gmp,90,90.00,17480,301234,80.00,79.46,3725.0,gmp-90/x\n',
  );
  const file = path.join(root, 'sweep.csv');
  writeSweepCsv(file, ROWS);
  const back = readSweepCsv(file);
  assert.equal(back.length, 4);
  assert.equal(back[0].target, undefined);
  assert.equal(back[1].target, 90);
  assert.equal(back[1].sparsity, 90);
  assert.equal(back[1].finalTop1, 79.46);
  assert.equal(back[3].runDir, 'gmp-50/x');
});

test('printed table: one line per row, aligned', () => {
  const t = formatSweepTable(ROWS).split('\n');
  assert.equal(t.length, 2 + ROWS.length);
  assert.match(t[0], /^method +target % +sparsity % +non-zeros +eff\. MACs +best top-1 +final top-1 +time$/);
  assert.match(t[3], /^gmp +90 +90\.00 +17,480 +0\.30M +80\.00 +79\.46 +1h02m05s$/);
  assert.equal(new Set(t.map((l) => l.length)).size, 1, 'all lines equally wide');
  assert.equal(formatDuration(12.34), '12.3s');
  assert.equal(formatDuration(245), '4m05s');
});

test('chart: two panels (sparsity, effective MACs) with labelled axes, one series per method, points at the CSV values', async () => {
  const svg = sweepChartSvg(ROWS, 'tiny sweep');
  const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(svg).svg;
  const texts = (doc.text as Array<{ '#text'?: string; class?: string }>).filter((t) => t.class === 'xaxis' || t.class === 'yaxis').map((t) => t['#text']);
  assert.deepEqual(texts, ['total sparsity (%)', 'final val top-1 (%)', 'effective MACs per image (millions)', 'final val top-1 (%)']);
  const legend = (doc.g as Array<{ 'data-series': string }>).map((g) => g['data-series']);
  assert.deepEqual(legend, ['gmp', 'str']);
  const refs = doc.line.filter((l: { class?: string }) => l.class === 'reference') as Array<{ 'data-label': string; 'data-y': string }>;
  assert.deepEqual(refs.map((r) => [r['data-label'], Number(r['data-y'])]), [['dense', 82.5], ['dense', 82.5]], 'dense: a line in each panel');
  const points = doc.circle as Array<{ 'data-series': string; 'data-x': string; 'data-y': string }>;
  assert.equal(points.length, 2 * (ROWS.length - 1));
  const gmpSparsity = points.filter((p) => p['data-series'] === 'gmp').slice(0, 2).map((p) => [Number(p['data-x']), Number(p['data-y'])]);
  assert.deepEqual(gmpSparsity, [[50, 81.9], [90.001, 79.456]], 'gmp points sorted by sparsity');
  const gmpMacs = points.filter((p) => p['data-series'] === 'gmp').slice(2).map((p) => Number(p['data-x']));
  assert.deepEqual(gmpMacs, [0.301234, 1.108]);
  const lines = (Array.isArray(doc.polyline) ? doc.polyline : [doc.polyline]) as Array<{ 'data-series': string }>;
  assert.deepEqual(lines.map((l) => l['data-series']), ['gmp', 'gmp'], 'a line joins a method with several points');

  const files = await writeSweepChart(path.join(root, 'sweep'), ROWS, 'tiny sweep');
  assert.deepEqual(files.map((f) => path.basename(f)), ['sweep.svg', 'sweep.png']);
  const png = fs.readFileSync(path.join(root, 'sweep.png'));
  assert.equal(png.subarray(1, 4).toString(), 'PNG');
  assert.ok(png.readUInt32BE(16) > 800, 'PNG as wide as the two panels');
});

test('chart: one target (sparsities equal but for float noise) puts the points together, not at opposite edges', () => {
  const rows: SweepRow[] = [
    { method: 'str', target: 90, sparsity: 90, nonzeros: 1, effectiveMacs: 5e6, bestTop1: 83, finalTop1: 83, seconds: 1, runDir: 'a' },
    { method: 'gmp', target: 90, sparsity: 90.0001, nonzeros: 1, effectiveMacs: 3e6, bestTop1: 81, finalTop1: 81, seconds: 1, runDir: 'b' },
  ];
  const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(sweepChartSvg(rows, 'one target')).svg;
  const cx = (doc.circle as Array<{ 'data-series': string; cx: string }>).slice(0, 2).map((c) => Number(c.cx));
  assert.equal(cx.length, 2);
  assert.ok(Math.abs(cx[0] - cx[1]) < 1, `both near one x position, got ${cx.join(' and ')}`);
});
