/**
 * `str-train report`: the per-layer sparsity table of a checkpoint (text, CSV, bar chart) and,
 * for a run folder, its total-sparsity and val top-1 curves over epochs.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { parse } from 'csv-parse/sync';
import { readCheckpoint } from '../train/checkpoint.js';
import { modelSummary, formatSummary, type ModelSummary } from '../sparsity/summary.js';
import { readEventFile, scalarsByTag } from '../io/tensorboard.js';
import { writeFileAtomic } from '../io/atomic.js';
import { modelFromCheckpoint, type ModelOverrides, type ModelSpec } from './checkpoint-model.js';
import { barChartSvg, lineChartSvg } from './svg.js';
import { UserError } from '../util/errors.js';

export const SPARSITY_TAG = 'sparsity/total';
export const TOP1_TAG = 'test/Acc@1_avg';

/** The layer table as CSV rows (header first; a final `total` row). */
export function layerTableCsv(s: ModelSummary): string {
  const header = ['index', 'layer', 'type', 'shape', 'kernel', 'stride', 'groups', 'out_h', 'out_w', 'weights', 'nonzeros', 'sparsity_percent', 'threshold', 'macs', 'effective_macs'];
  const rows: Array<Array<string | number>> = s.rows.map((r, i) => [
    i + 1,
    r.name,
    r.type,
    `[${r.shape.join(', ')}]`,
    r.kernel,
    r.stride,
    r.groups,
    r.outHW[0],
    r.outHW[1],
    r.weights,
    r.nonzeros,
    r.sparsity,
    r.threshold,
    r.macs,
    r.effectiveMacs,
  ]);
  rows.push(['', 'total', '', '', '', '', '', '', '', s.convWeights, s.nonzeros, s.sparsity, '', s.macs, s.effectiveMacs]);
  return stringify([header, ...rows]);
}

/** Bar chart of every conv layer's sparsity, with the total as a dashed line. */
export function layerSparsitySvg(s: ModelSummary, title?: string): string {
  return barChartSvg(
    s.rows.map((r) => ({ label: r.name, value: r.sparsity, note: `${r.nonzeros.toLocaleString('en-US')} of ${r.weights.toLocaleString('en-US')} weights` })),
    {
      title: title ?? `${s.arch}: layer-wise sparsity (total ${s.sparsity.toFixed(2)} %)`,
      reference: { label: `total ${s.sparsity.toFixed(2)} %`, value: s.sparsity },
    },
  );
}

export interface RunCurves {
  /** [epoch, total sparsity %]. */
  sparsity: Array<[number, number]>;
  /** [epoch, val top-1 %]. */
  top1: Array<[number, number]>;
  /** Where each curve came from (file names), for the printout. */
  sources: string[];
}

/** Values by step; a later event for the same step (a resumed run) replaces the earlier one. */
function byStep(points: Array<{ step: number; value: number }>): Array<[number, number]> {
  const m = new Map<number, number>();
  for (const p of points) m.set(p.step, p.value);
  return [...m.entries()].sort((a, b) => a[0] - b[0]);
}

/**
 * A run folder's curves: total sparsity from layerwise_sparsity.csv (exact values) or else the
 * TensorBoard tag `sparsity/total`; val top-1 from `test/Acc@1_avg` in every event file of logs/.
 */
export function readRunCurves(runDir: string): RunCurves {
  const curves: RunCurves = { sparsity: [], top1: [], sources: [] };
  const logs = join(runDir, 'logs');
  const tags = new Map<string, Array<{ step: number; value: number }>>();
  if (existsSync(logs)) {
    const files = readdirSync(logs)
      .filter((f) => f.startsWith('events.out.tfevents.'))
      .map((f) => join(logs, f))
      .sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs || a.localeCompare(b));
    for (const f of files) {
      for (const [tag, pts] of scalarsByTag(readEventFile(f).events)) {
        if (tag !== SPARSITY_TAG && tag !== TOP1_TAG) continue;
        const list = tags.get(tag) ?? [];
        list.push(...pts);
        tags.set(tag, list);
      }
    }
    if (files.length) curves.sources.push(`${files.length} event file(s) in ${logs}`);
  }
  curves.top1 = byStep(tags.get(TOP1_TAG) ?? []);
  const csv = join(runDir, 'layerwise_sparsity.csv');
  if (existsSync(csv)) {
    const recs: Record<string, string>[] = parse(readFileSync(csv, 'utf8'), { columns: true, skip_empty_lines: true });
    curves.sparsity = recs.filter((r) => r.total !== undefined && r.total !== '').map((r) => [Number(r.epoch), Number(r.total)] as [number, number]);
    curves.sources.push(csv);
  } else {
    curves.sparsity = byStep(tags.get(SPARSITY_TAG) ?? []);
  }
  return curves;
}

export function curvesSvg(c: RunCurves, title: string): string {
  return lineChartSvg(
    [
      { series: { name: 'total sparsity (%)', points: c.sparsity, colour: '#3b6ea8' }, yLabel: 'sparsity (%)', yMax: 100 },
      { series: { name: 'val top-1 (%)', points: c.top1, colour: '#27864a' }, yLabel: 'top-1 (%)' },
    ],
    { title },
  );
}

export function curvesCsv(c: RunCurves): string {
  const epochs = [...new Set([...c.sparsity.map(([e]) => e), ...c.top1.map(([e]) => e)])].sort((a, b) => a - b);
  const s = new Map(c.sparsity);
  const t = new Map(c.top1);
  return stringify([['epoch', 'total_sparsity_percent', 'val_top1'], ...epochs.map((e) => [e, s.get(e) ?? '', t.get(e) ?? ''])]);
}

const CHECKPOINT_EXT = new Set(['.safetensors', '.pth', '.state', '.pt']);

/**
 * The checkpoint that stands for a run's final model: `last`, else the highest `epoch_<n>`,
 * else `model_best`, else `initial` (our .safetensors or the reference's .pth/.state).
 */
export function runCheckpoint(runDir: string): string {
  const dir = join(runDir, 'checkpoints');
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => CHECKPOINT_EXT.has(extname(f))) : [];
  const stem = (f: string) => basename(f, extname(f));
  const pick = (name: string) => files.find((f) => stem(f) === name && extname(f) === '.safetensors') ?? files.find((f) => stem(f) === name);
  const epochs = files
    .map((f) => [f, /^epoch_(\d+)$/.exec(stem(f))] as const)
    .filter(([, m]) => m)
    .sort((a, b) => Number(b[1]![1]) - Number(a[1]![1]) || (extname(a[0]) === '.safetensors' ? -1 : 1));
  const f = pick('last') ?? epochs[0]?.[0] ?? pick('model_best') ?? pick('initial');
  if (!f) throw new UserError(`${runDir}: no checkpoint in ${dir} (expected last, epoch_<n>, model_best or initial)`);
  return join(dir, f);
}

/** A run folder: it has checkpoints/ or logs/ next to settings. */
export function isRunDir(p: string): boolean {
  return existsSync(join(p, 'checkpoints')) || existsSync(join(p, 'logs'));
}

export interface ReportOptions {
  /** Output folder (default: `<run>/report`, or `<checkpoint dir>/<stem>_report`). */
  out?: string;
  overrides?: ModelOverrides;
  /** Also rasterise the SVGs to PNG (sharp). Default true. */
  png?: boolean;
  log?: (line: string) => void;
}

export interface ReportResult {
  checkpoint: string;
  runDir?: string;
  spec: ModelSpec;
  summary: ModelSummary;
  curves?: RunCurves;
  files: string[];
  text: string;
}

/** Builds and writes the report of a run folder or a checkpoint file. */
export async function writeReport(target: string, o: ReportOptions = {}): Promise<ReportResult> {
  const log = o.log ?? ((l: string) => process.stdout.write(l + '\n'));
  if (!existsSync(target)) throw new UserError(`report ${target}: no such file or folder`);
  let runDir: string | undefined;
  let checkpoint: string;
  if (statSync(target).isDirectory()) {
    if (!isRunDir(target)) throw new UserError(`report ${target}: not a run folder (no checkpoints/ or logs/)`);
    runDir = target;
    checkpoint = runCheckpoint(target);
  } else {
    checkpoint = target;
    const parent = dirname(resolve(target));
    if (basename(parent) === 'checkpoints' && isRunDir(dirname(parent))) runDir = dirname(parent);
  }
  const out = o.out ?? (runDir && statSync(target).isDirectory() ? join(runDir, 'report') : join(dirname(checkpoint), `${basename(checkpoint, extname(checkpoint))}_report`));

  const ck = await readCheckpoint(checkpoint, 'report');
  const { model, spec } = modelFromCheckpoint(ck, o.overrides);
  let summary: ModelSummary;
  try {
    summary = modelSummary(model, spec.imageSize);
  } finally {
    model.dispose();
  }
  const files: string[] = [];
  const write = async (name: string, data: string | Buffer) => {
    const f = join(out, name);
    await writeFileAtomic(f, data);
    files.push(f);
  };
  const epochNote = ck.meta.epoch ? `, epoch ${ck.meta.epoch}` : '';
  const svg = layerSparsitySvg(summary, `${spec.arch} (${spec.options.convType ?? ''}${epochNote}): layer-wise sparsity, total ${summary.sparsity.toFixed(2)} %`);
  await write('layers.csv', layerTableCsv(summary));
  await write('layer_sparsity.svg', svg);
  if (o.png ?? true) await write('layer_sparsity.png', await svgToPng(svg));

  let curves: RunCurves | undefined;
  if (runDir) {
    curves = readRunCurves(runDir);
    const csvg = curvesSvg(curves, `${runTitle(runDir)}: total sparsity and val top-1 per epoch`);
    await write('curves.csv', curvesCsv(curves));
    await write('curves.svg', csvg);
    if (o.png ?? true) await write('curves.png', await svgToPng(csvg));
  }
  const lines = [`=> report of ${checkpoint}${spec.from === 'inferred' ? ` (model inferred from the state dict: ${spec.arch}, width ${spec.options.widthMult}, ${spec.options.convType})` : ''}`, formatSummary(summary)];
  if (curves) {
    const lastS = curves.sparsity.at(-1);
    const bestT = curves.top1.reduce<[number, number] | undefined>((b, p) => (!b || p[1] > b[1] ? p : b), undefined);
    lines.push(
      `curves: ${curves.sparsity.length} epochs of total sparsity${lastS ? ` (last ${lastS[1].toFixed(2)} % at epoch ${lastS[0]})` : ''}, ${curves.top1.length} of val top-1${bestT ? ` (best ${bestT[1].toFixed(2)} at epoch ${bestT[0]})` : ''}`,
    );
  }
  lines.push(`=> wrote ${files.join(', ')}`);
  const text = lines.join('\n');
  log(text);
  return { checkpoint, runDir, spec, summary, curves, files, text };
}

/** The run folder's last components (`<name>/prune_rate=<p>[/width_mult=<w>][/<n>]`), for titles. */
function runTitle(runDir: string): string {
  const parts = resolve(runDir).split(/[\\/]/).filter(Boolean);
  let i = parts.length - 1;
  while (i > 0 && !parts[i].startsWith('prune_rate=')) i--;
  return (i > 0 ? parts.slice(i - 1) : parts.slice(-1)).join('/');
}

/** PNG of an SVG (sharp renders it with librsvg). */
export async function svgToPng(svg: string): Promise<Buffer> {
  const { default: sharp } = await import('sharp');
  return sharp(Buffer.from(svg, 'utf8')).png().toBuffer();
}
