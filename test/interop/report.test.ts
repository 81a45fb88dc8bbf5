/**
 * `str-train report`: the table, its CSV and the charts are those of the run they name. A real
 * (tiny) training run is made first; the SVGs are parsed with an XML parser and compared with the
 * run's own records (its last checkpoint, layerwise_sparsity.csv, TensorBoard events).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { parse } from 'csv-parse/sync';
import sharp from 'sharp';
import { useBackend } from '../helpers/tf.js';
import { runTraining } from '../../src/train/run.js';
import { writeSyntheticImageFolder } from '../../src/data/synthetic.js';
import { writeReport, runCheckpoint, readRunCurves, type ReportResult } from '../../src/report/report.js';
import { readEventFile, scalarsByTag, SummaryWriter } from '../../src/io/tensorboard.js';
import { readCheckpoint } from '../../src/train/checkpoint.js';
import { configOf, tmpDir, fixture, runCli } from './helpers.js';

const dir = tmpDir('report');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

type Attrs = Record<string, string>;
const xml = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', isArray: (name) => ['rect', 'circle', 'polyline', 'line', 'text'].includes(name) });

function parseSvg(file: string): { svg: Attrs & { rect: Attrs[]; circle?: Attrs[]; polyline?: Attrs[]; line?: Attrs[] } } {
  return xml.parse(fs.readFileSync(file, 'utf8'));
}

const csvRows = (file: string): Record<string, string>[] => parse(fs.readFileSync(file, 'utf8'), { columns: true, skip_empty_lines: true });

/** Checks the bar chart against per-layer sparsities (in layer order): one bar each, height ∝ value. */
function checkBars(file: string, want: Array<[string, number]>): void {
  const { svg } = parseSvg(file);
  const bars = svg.rect.filter((r) => r.class === 'bar');
  assert.equal(bars.length, want.length, 'one bar per layer');
  const axis = (svg.line ?? []).filter((l) => l.class === 'grid').map((l) => Number(l.y1));
  const [yTop, yBottom] = [Math.min(...axis), Math.max(...axis)]; // the 100 % and 0 % grid lines
  bars.forEach((b, i) => {
    assert.equal(b['data-layer'], want[i][0], `bar ${i} is layer ${want[i][0]}`);
    assert.equal(Number(b['data-sparsity']), want[i][1], `${want[i][0]} value`);
    const h = Number(b.height);
    assert.ok(Math.abs(h - ((yBottom - yTop) * want[i][1]) / 100) <= 0.01, `${want[i][0]}: height ${h} follows ${want[i][1]} %`);
    assert.ok(Math.abs(Number(b.y) + h - yBottom) <= 0.01, 'bars stand on the 0 % line');
  });
  const tallest = bars.reduce((a, b) => (Number(b.height) > Number(a.height) ? b : a));
  assert.equal(tallest['data-layer'], want.reduce((a, b) => (b[1] > a[1] ? b : a))[0]);
}

let runDir: string;
let report: ReportResult;
const out = path.join(dir, 'out');

before(async () => {
  await useBackend('cpu');
  const data = path.join(dir, 'data');
  await writeSyntheticImageFolder({ out: data, classes: 4, perClass: 2, valPerClass: 2, size: [36, 36], seed: 5, log: () => {} });
  const config = configOf([
    '--arch', 'ResNet18', '--width-mult', '0.125', '--conv-type', 'STRConv', '--sInit-value=-4', '--epochs', '2', '--lr', '0.1',
    '--weight-decay', '0.05', '--data', data, '--set', 'ImageFolder', '--image-size', '32', '--batch-size', '4', '--workers', '0',
    '--log-dir', path.join(dir, 'runs'), '--progress', 'none', '--name', 'tiny', '--seed', '1',
  ]);
  const r = await runTraining({ config, log: () => {} });
  runDir = r.runDir!;
  report = await writeReport(runDir, { out, log: () => {} });
});

describe('report of a run folder', () => {
  test('uses the run\'s last checkpoint and prints the table of that model', () => {
    assert.equal(report.checkpoint, runCheckpoint(runDir));
    assert.match(path.basename(report.checkpoint), /^(last|epoch_1)\.safetensors$/);
    assert.equal(report.summary.rows.length, 21);
    assert.match(report.text, /ResNet18 @ 32x32\n/);
    assert.match(report.text, /non-zero conv\/fc weights: [\d,]+ .*, sparsity \d+\.\d\d %/);
    assert.deepEqual(report.files.map((f) => path.basename(f)), ['layers.csv', 'layer_sparsity.svg', 'layer_sparsity.png', 'curves.csv', 'curves.svg', 'curves.png']);
  });

  test('the bar chart is the run\'s final layer-wise sparsity (layerwise_sparsity.csv, last epoch)', () => {
    const rows = csvRows(path.join(runDir, 'layerwise_sparsity.csv'));
    const last = rows.at(-1)!;
    assert.equal(Number(last.epoch), 1);
    const want = Object.keys(last).filter((k) => k.startsWith('module.')).map((k) => [k, Number(last[k])] as [string, number]);
    assert.equal(want.length, 21);
    assert.ok(want.some(([, v]) => v > 0), 'the run has pruned something');
    checkBars(path.join(out, 'layer_sparsity.svg'), want);
    const { svg } = parseSvg(path.join(out, 'layer_sparsity.svg'));
    const total = (svg.line ?? []).find((l) => l.class === 'reference')!;
    assert.equal(Number(total['data-value']), Number(last.total));
  });

  test('layers.csv holds the table: one row per layer and a total', () => {
    const rows = csvRows(path.join(out, 'layers.csv'));
    assert.equal(rows.length, 22);
    assert.deepEqual(Object.keys(rows[0]), ['index', 'layer', 'type', 'shape', 'kernel', 'stride', 'groups', 'out_h', 'out_w', 'weights', 'nonzeros', 'sparsity_percent', 'threshold', 'macs', 'effective_macs']);
    assert.deepEqual(rows[0], {
      index: '1', layer: 'module.conv1', type: 'STRConv', shape: '[8, 3, 7, 7]', kernel: '7', stride: '2', groups: '1', out_h: '16', out_w: '16',
      weights: '1176', nonzeros: String(report.summary.rows[0].nonzeros), sparsity_percent: String(report.summary.rows[0].sparsity),
      threshold: String(report.summary.rows[0].threshold), macs: String(1176 * 256), effective_macs: String(report.summary.rows[0].nonzeros * 256),
    });
    const total = rows[21];
    assert.equal(total.layer, 'total');
    assert.equal(Number(total.weights), rows.slice(0, 21).reduce((a, r) => a + Number(r.weights), 0));
    assert.equal(Number(total.nonzeros), rows.slice(0, 21).reduce((a, r) => a + Number(r.nonzeros), 0));
    assert.equal(Number(total.effective_macs), report.summary.effectiveMacs);
  });

  test('the curves are the run\'s total sparsity (CSV) and val top-1 (TensorBoard) per epoch', () => {
    const logs = path.join(runDir, 'logs');
    const events = fs.readdirSync(logs).flatMap((f) => readEventFile(path.join(logs, f)).events);
    const top1 = scalarsByTag(events).get('test/Acc@1_avg')!.map((p) => [p.step, p.value]);
    assert.equal(top1.length, 2);
    const sparsity = csvRows(path.join(runDir, 'layerwise_sparsity.csv')).map((r) => [Number(r.epoch), Number(r.total)]);
    const { svg } = parseSvg(path.join(out, 'curves.svg'));
    const points = (series: string) => svg.circle!.filter((c) => c['data-series'] === series).map((c) => [Number(c['data-x']), Number(c['data-y'])]);
    assert.deepEqual(points('total sparsity (%)'), sparsity);
    assert.deepEqual(points('val top-1 (%)'), top1);
    assert.equal(svg.polyline!.length, 2);
    const curves = csvRows(path.join(out, 'curves.csv'));
    assert.deepEqual(curves.map((r) => [Number(r.epoch), Number(r.total_sparsity_percent), Number(r.val_top1)]), sparsity.map(([e, s], i) => [e, s, top1[i][1]]));
  });

  test('the PNGs are the SVGs rasterised', async () => {
    for (const name of ['layer_sparsity', 'curves']) {
      const { svg } = parseSvg(path.join(out, `${name}.svg`));
      const meta = await sharp(path.join(out, `${name}.png`)).metadata();
      assert.equal(meta.format, 'png');
      assert.deepEqual([meta.width, meta.height], [Number(svg.width), Number(svg.height)]);
    }
  });
});

describe('report of a checkpoint file', () => {
  test('a reference .pth (torch-made): model read off its keys, bars = its layers, no curves', async () => {
    const o = path.join(dir, 'fx');
    const r = await writeReport(fixture('epoch_1.state'), { out: o, png: false, log: () => {} });
    assert.equal(r.spec.from, 'inferred');
    assert.equal(r.curves, undefined);
    assert.deepEqual(r.files.map((f) => path.basename(f)), ['layers.csv', 'layer_sparsity.svg']);
    checkBars(path.join(o, 'layer_sparsity.svg'), r.summary.rows.map((row) => [row.name, row.sparsity]));
    // the thresholds are σ(s) of the file's sparseThreshold entries (s ≈ −3 after two SGD steps)
    const sd = (await readCheckpoint(fixture('epoch_1.state'))).stateDict;
    for (const row of r.summary.rows) {
      const s = sd.get(`${row.name}.sparseThreshold`)!.data[0] as number;
      assert.ok(Math.abs(row.threshold - 1 / (1 + Math.exp(-s))) < 1e-8, row.name);
    }
  });

  test('a reference-style run folder (epoch_N.state, TensorBoard only) takes the highest epoch and the TB curves', async () => {
    const run = path.join(dir, 'refrun');
    fs.mkdirSync(path.join(run, 'checkpoints'), { recursive: true });
    fs.copyFileSync(fixture('epoch_1.state'), path.join(run, 'checkpoints', 'epoch_1.state'));
    fs.copyFileSync(fixture('model_best.pth'), path.join(run, 'checkpoints', 'model_best.pth'));
    const w = new SummaryWriter(path.join(run, 'logs'));
    for (const [e, s, a] of [[0, 0, 5], [1, 12.5, 7.5], [2, 40.25, 6]]) {
      w.addScalar('sparsity/total', s, e);
      w.addScalar('test/Acc@1_avg', a, e);
    }
    w.close();
    assert.equal(path.basename(runCheckpoint(run)), 'epoch_1.state');
    const c = readRunCurves(run);
    assert.deepEqual(c.sparsity, [[0, 0], [1, 12.5], [2, 40.25]]);
    assert.deepEqual(c.top1, [[0, 5], [1, 7.5], [2, 6]]);
    const r = await writeReport(run, { png: false, log: () => {} });
    assert.equal(path.dirname(r.files[0]), path.join(run, 'report'));
  });
});

describe('str-train report (CLI)', () => {
  const cli = (args: string[]) => runCli(['report', ...args]);

  test('prints the table and writes the files; bad targets are one-line errors with exit 2', () => {
    const o = path.join(dir, 'cli');
    const r = cli([runDir, '--out', o, '--no-png']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /module\.layer4\.1\.conv2 +STRConv/);
    assert.match(r.stdout, /curves: 2 epochs of total sparsity/);
    assert.deepEqual(fs.readdirSync(o).sort(), ['curves.csv', 'curves.svg', 'layer_sparsity.svg', 'layers.csv']);
    for (const [args, msg] of [
      [[path.join(dir, 'nope')], /^str-train: report .*nope: no such file or folder\n$/],
      [[dir], /^str-train: report .*: not a run folder \(no checkpoints\/ or logs\/\)\n$/],
      [[], /^str-train: report: expects one run folder or checkpoint, got 0\n$/],
      [[fixture('hostile_system.pth')], /^str-train: .*hostile_system\.pth: refuses to unpickle posix\.system/],
    ] as const) {
      const e = cli([...args]);
      assert.equal(e.status, 2, `${args.join(' ')}: ${e.stderr}`);
      assert.match(e.stderr, msg);
      assert.equal(e.stderr.trim().split('\n').length, 1, e.stderr);
    }
  });
});
