/**
 * Sparse inference benchmark (issue 13): eval images/s at 224 px, batch 16, of ResNet50 and
 * MobileNetV1 at several sparsities, three ways side by side in the same run:
 *   - dense wasm: the plain eval forward (what --evaluate did before: conv, BN, ReLU as tfjs ops);
 *   - sparse: after prepareSparseInference (BN folded, conv-BN-ReLU(-residual) as one op, the
 *     sparse kernel where the layer's sparsity passes its crossover, folded dense elsewhere);
 *   - PyTorch dense (bench/torch_models.py, 2 threads).
 * One str-train worker and one PyTorch worker stay up; each round runs the three in turn (the
 * order rotates per round), because the machine is shared: only same-run ratios mean anything.
 *
 * Sparsities: ResNet50 at 0 % and at the STR budget columns nearest to 80/90/95 % (79.55, 90.23,
 * 95.03: per-layer magnitude pruning to the budget's layer sparsities); MobileNetV1 (no budget
 * file) by global magnitude pruning over all conv weights of the Kaiming-initialised model, which
 * like STR leaves the small-fan-in layers (stem, depthwise) denser and the wide ones sparser.
 *
 * `--crossover` instead times the sparse kernel against the folded dense conv on ResNet50 layer
 * shapes per shape class and reports the sparsity where the sparse kernel starts to win.
 *
 *   node --import tsx bench/sparse.ts [--quick] [--rounds N] [--crossover] [--no-torch] [--json FILE]
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findTorchPython, LineWorker, median, REPO, round, scriptArgs, serveLines } from './common.js';

const SELF = fileURLToPath(import.meta.url);
const SIZE = 224;
const BATCH = 16;

export type Level = { label: string; kind: 'dense' } | { label: string; kind: 'budget'; column: string } | { label: string; kind: 'global'; rate: number };

export interface SparseCase { arch: 'ResNet50' | 'MobileNetV1'; level: Level }

export function sparseCases(quick: boolean): SparseCase[] {
  const r50: Level[] = [
    { label: '0 %', kind: 'dense' },
    { label: '80 % (budget 79.55)', kind: 'budget', column: '79.55' },
    { label: '90 % (budget 90.23)', kind: 'budget', column: '90.23' },
    { label: '95 % (budget 95.03)', kind: 'budget', column: '95.03' },
  ];
  const mb: Level[] = [
    { label: '0 %', kind: 'dense' },
    { label: '80 % (global magnitude)', kind: 'global', rate: 0.8 },
    { label: '90 % (global magnitude)', kind: 'global', rate: 0.9 },
    { label: '95 % (global magnitude)', kind: 'global', rate: 0.95 },
  ];
  const cases = [...r50.map((level) => ({ arch: 'ResNet50' as const, level })), ...mb.map((level) => ({ arch: 'MobileNetV1' as const, level }))];
  return quick ? cases.filter((c) => c.level.label.startsWith('90')) : cases;
}

// ---------------------------------------------------------------------------- worker side

interface SetupReply { checkpointMB?: { full: number; densePth: number; compact: number }; sparsity: number; nonZeros: number; weights: number; denseMacs: number; effectiveMacs: number; sparseLayers: number; layers: number; prepareMs: number; whatIsLeft: string }

async function workerMain(threads?: number): Promise<void> {
  const tf = await import('../src/tf.js');
  const { initBackend, describeBackend } = await import('../src/backend/select.js');
  const { createModel } = await import('../src/models/registry.js');
  const { parseBudgetCsv, budgetColumn } = await import('../src/sparsity/budgets.js');
  const { prepareSparseInference } = await import('../src/nn/sparse/inference.js');
  const { makeCriterion } = await import('../src/train/loss.js');
  const { topkCorrect } = await import('../src/train/metrics.js');
  type Model = import('../src/models/model.js').Model;
  type Prepared = Awaited<ReturnType<typeof prepareSparseInference>>;
  await initBackend('wasm', (l) => process.stderr.write(l + '\n'), threads ? { threads } : undefined);
  const criterion = makeCriterion(0.1);
  let model: Model | undefined;
  let prepared: Prepared | undefined;
  let x: import('../src/tf.js').Tensor4D | undefined;
  let y: import('../src/tf.js').Tensor1D | undefined;

  /** Zeroes the `rate` smallest |w| of each conv (rates by module name), or globally when `global`. */
  function magnitudePrune(m: Model, rates: Map<string, number> | number): void {
    const convs = m.convLayers();
    const values = convs.map(([, c]) => c.weight.dataSync() as Float32Array);
    const thresholdOf = (arrs: Float32Array[], rate: number) => {
      const n = arrs.reduce((a, b) => a + b.length, 0);
      const k = Math.floor(rate * n);
      if (k <= 0) return -1;
      const all = new Float32Array(n);
      let o = 0;
      for (const a of arrs) for (let i = 0; i < a.length; i++) all[o++] = Math.abs(a[i]);
      all.sort();
      return all[k - 1];
    };
    const global = typeof rates === 'number' ? thresholdOf(values, rates) : 0;
    convs.forEach(([name, c], i) => {
      const t = typeof rates === 'number' ? global : thresholdOf([values[i]], rates.get(name) ?? 0);
      if (t < 0) return;
      const w = values[i].map((v) => (Math.abs(v) <= t ? 0 : v));
      c.weight.assign(tf.tensor(w, c.weight.shape));
    });
  }

  async function setup(arch: string, level: Level): Promise<SetupReply> {
    prepared?.dispose();
    model?.dispose();
    tf.dispose([x!, y!].filter(Boolean));
    model = createModel(arch, { convType: 'DenseConv', seed: 0 });
    if (level.kind === 'budget') {
      const table = parseBudgetCsv(path.join(REPO, 'budgets', `STR_Budgets_${arch}.csv`), model.convLayers().map(([n]) => n));
      magnitudePrune(model, budgetColumn(table, level.column));
    } else if (level.kind === 'global') {
      magnitudePrune(model, level.rate);
    }
    model.eval();
    model.traceShapes(SIZE);
    let nonZeros = 0, weights = 0, denseMacs = 0, effectiveMacs = 0;
    for (const [, c] of model.convLayers()) {
      const w = c.weight.dataSync();
      let nz = 0;
      for (let i = 0; i < w.length; i++) if (w[i] !== 0) nz++;
      const pos = c.outHW![0] * c.outHW![1];
      nonZeros += nz;
      weights += w.length;
      denseMacs += w.length * pos;
      effectiveMacs += nz * pos;
    }
    const checkpointMB = await checkpointSizes(arch, model);
    const t0 = performance.now();
    prepared = await prepareSparseInference(model);
    const prepareMs = performance.now() - t0;
    const sparse = prepared.layers.filter((l) => l.kind === 'sparse');
    const dw = prepared.layers.filter((l) => l.kind === 'depthwise');
    const dense = prepared.layers.filter((l) => l.kind === 'dense');
    const whatIsLeft = `${sparse.length} convs sparse, ${dense.length} folded dense (below crossover)${dw.length ? `, ${dw.length} depthwise folded dense` : ''}`;
    // not used by the dense variant: it runs with the preparation removed, see run()
    x = tf.randomNormal([BATCH, SIZE, SIZE, 3], 0, 1, 'float32', 1) as import('../src/tf.js').Tensor4D;
    y = tf.tensor1d(Array.from({ length: BATCH }, (_, i) => i % model!.numClasses), 'int32');
    return { checkpointMB, sparsity: 1 - nonZeros / weights, nonZeros, weights, denseMacs, effectiveMacs, sparseLayers: sparse.length, layers: prepared.layers.length, prepareMs, whatIsLeft };
  }

  /** Sizes of this model's checkpoint, its dense .pth export and its compact (sparse) export. */
  async function checkpointSizes(arch: string, m: Model): Promise<SetupReply['checkpointMB']> {
    const { mkdtempSync, rmSync, statSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { saveCheckpoint } = await import('../src/train/checkpoint.js');
    const { exportCheckpoint } = await import('../src/cli/export.js');
    const dir = mkdtempSync(path.join(tmpdir(), 'str-sparse-bench-'));
    try {
      const ck = path.join(dir, 'model.safetensors');
      await saveCheckpoint(ck, { model: m, meta: { epoch: 0, arch, best_acc1: 0, best_acc5: 0, best_train_acc1: 0, best_train_acc5: 0, curr_acc1: null, curr_acc5: null }, config: { arch, conv_type: 'DenseConv' } });
      const dense = await exportCheckpoint({ checkpoint: ck, dense: true, out: path.join(dir, 'dense.pth'), log: () => {} });
      const compact = await exportCheckpoint({ checkpoint: ck, format: 'sparse', out: path.join(dir, 'model.sparse.safetensors'), log: () => {} });
      const mb = (f: string) => round(statSync(f).size / 1e6, 2);
      return { full: mb(ck), densePth: mb(dense.out), compact: mb(compact.out) };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** validate()'s step: forward, loss, top-1/top-5 counts, read back. */
  async function step(): Promise<void> {
    const [l, c1, c5] = tf.tidy(() => {
      const logits = model!.forward(x!);
      return [criterion(logits, y!), ...topkCorrect(logits, y!)];
    });
    await Promise.all([l.data(), c1.data(), c5.data()]);
    tf.dispose([l, c1, c5]);
  }

  async function run(variant: 'dense' | 'sparse', warmup: number, steps: number, maxSeconds: number): Promise<{ stepMs: number[]; logitsCheck: number }> {
    // the dense variant: the same model with the prepared ops switched off (the plain eval path)
    const saved = model!.convLayers().map(([, c]) => c.fusedEval);
    if (variant === 'dense') for (const [, c] of model!.convLayers()) c.fusedEval = undefined;
    try {
      for (let i = 0; i < warmup; i++) await step();
      const stepMs: number[] = [];
      const end = performance.now() + maxSeconds * 1000;
      while (stepMs.length < steps && (stepMs.length < 2 || performance.now() < end)) {
        const t0 = performance.now();
        await step();
        stepMs.push(performance.now() - t0);
      }
      const probe = tf.tidy(() => tf.sum(tf.abs(model!.forward(tf.slice(x!, 0, 1)))));
      const logitsCheck = (await probe.data())[0];
      probe.dispose();
      return { stepMs, logitsCheck };
    } finally {
      model!.convLayers().forEach(([, c], i) => (c.fusedEval = saved[i]));
    }
  }

  /** Folded dense conv vs the sparse kernel on one shape, at each sparsity: ms per call. */
  async function crossover(req: { K: number; CI: number; CO: number; S: number; HW: number; N: number; sparsities: number[]; reps: number }) {
    const { packCsr } = await import('../src/nn/sparse/pack.js');
    const { SparseConv2D } = await import('../src/backend/fused-kernels.js');
    const { K, CI, CO, S, HW, N } = req;
    const P = (K - 1) / 2;
    const xx = tf.randomNormal([N, HW, HW, CI], 0, 1, 'float32', 2) as import('../src/tf.js').Tensor4D;
    const b = tf.randomNormal([CO], 0, 1, 'float32', 3) as import('../src/tf.js').Tensor1D;
    // CPU time of this (single-threaded) process, best of `reps`: on a shared machine wall time
    // measures the other jobs; both kernels scale alike with threads
    const time = (f: () => import('../src/tf.js').Tensor) => {
      f().dispose();
      let best = Infinity;
      for (let r = 0; r < req.reps; r++) {
        const t0 = process.cpuUsage();
        f().dispose();
        const d = process.cpuUsage(t0);
        best = Math.min(best, (d.user + d.system) / 1000);
      }
      return best;
    };
    const out: Array<{ sparsity: number; denseMs: number; sparseMs: number }> = [];
    for (const s of req.sparsities) {
      const wv = (await tf.randomNormal([K * K * CI * CO], 0, 1, 'float32', 4).data()) as Float32Array;
      const thr = [...wv].map(Math.abs).sort((a, c) => a - c)[Math.max(0, Math.floor(s * wv.length) - 1)];
      const w = wv.map((v) => (s > 0 && Math.abs(v) <= thr ? 0 : v));
      const wt = tf.tensor4d(w, [K, K, CI, CO]);
      const csr = packCsr(w, K, K, CI, CO);
      const rowptr = tf.tensor1d(csr.rowptr, 'int32'), nz = tf.tensor1d(csr.nz, 'int32');
      const denseMs = time(() => tf.fused.conv2d({ x: xx, filter: wt, strides: S, pad: P === 0 ? 'valid' : P, bias: b, activation: 'relu' }));
      const sparseMs = time(() => tf.engine().runKernel(SparseConv2D, { x: xx, rowptr, nz, bias: b }, { kernelSize: K, stride: S, padding: P, outChannels: CO, relu: true } as never) as import('../src/tf.js').Tensor);
      out.push({ sparsity: s, denseMs: round(denseMs, 2), sparseMs: round(sparseMs, 2) });
      tf.dispose([wt, rowptr, nz]);
    }
    tf.dispose([xx, b]);
    return { points: out };
  }

  await serveLines(async (msg) => {
    if (msg.cmd === 'info') return { backend: describeBackend() };
    if (msg.cmd === 'setup') return setup(msg.arch as string, msg.level as Level);
    if (msg.cmd === 'run') return run(msg.variant as 'dense' | 'sparse', msg.warmup as number, msg.steps as number, msg.maxSeconds as number);
    if (msg.cmd === 'crossover') return crossover(msg as never);
    throw new Error(`unknown command ${String(msg.cmd)}`);
  });
}

// ---------------------------------------------------------------------------- orchestrator side

interface Side { stepMs: number[]; imagesPerSec: number }
export interface SparseRow {
  arch: string;
  level: string;
  sparsity: number;
  nonZeros: number;
  effectiveGMacs: number;
  denseGMacs: number;
  layers: string;
  prepareMs: number;
  dense: Side;
  sparse: Side;
  torch?: Side;
  sparseOverDense: number;
  sparseOverTorch?: number;
  logitsRelDiff: number;
  /** Checkpoint sizes (MB) of the benchmarked model: ours, dense .pth export, compact export. */
  checkpointMB?: { full: number; densePth: number; compact: number };
}

export interface SparseBenchResult {
  backend: string;
  torch?: string;
  size: number;
  batch: number;
  rows: SparseRow[];
  crossover?: CrossoverResult[];
}

export interface CrossoverResult { cls: string; shape: string; points: Array<{ sparsity: number; denseMs: number; sparseMs: number }>; crossover: number | null }

const side = (ms: number[]): Side => ({ stepMs: ms.map((v) => round(v, 1)), imagesPerSec: round((BATCH * 1000) / median(ms), 2) });

export interface SparseBenchOptions {
  quick: boolean;
  torch: boolean;
  /** Measure the crossover sparsities (single-threaded worker, CPU time). */
  crossover: boolean;
  /** Measure the model table. */
  models: boolean;
  log: (l: string) => void;
  rounds?: number;
}

export async function benchSparse(o: SparseBenchOptions): Promise<SparseBenchResult> {
  const log = o.log;
  const result: SparseBenchResult = { backend: '', size: SIZE, batch: BATCH, rows: [] };
  if (o.crossover) {
    const single = new LineWorker('str-train wasm (1 thread)', process.execPath, [...scriptArgs('sparse'), '--worker', '--threads', '1'], log);
    try {
      result.crossover = await measureCrossover(single, o.quick, log);
    } finally {
      await single.close();
    }
  }
  if (!o.models) return result;
  const ours = new LineWorker('str-train wasm', process.execPath, [...scriptArgs('sparse'), '--worker'], log);
  const info = await ours.request<{ ok: boolean; backend: string; error?: string }>({ cmd: 'info' });
  if (!info.ok) throw new Error(`sparse bench worker: ${info.error}`);
  log(`sparse: backend ${info.backend}`);
  result.backend = info.backend;
  try {
    let torch: LineWorker | undefined;
    const py = o.torch ? findTorchPython() : null;
    if (py) {
      torch = new LineWorker('pytorch', py, [path.join(REPO, 'bench', 'torch_models.py'), '--threads', '2'], log,
        { OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? 'PASSIVE' });
      const ti = await torch.request<{ ok: boolean; torch: string; threads: number }>({ cmd: 'info' });
      result.torch = `PyTorch ${ti.torch}, ${ti.threads} threads`;
    }
    const rounds = o.rounds ?? (o.quick ? 1 : 2);
    const torchDone = new Map<string, number[]>();
    try {
      for (const c of sparseCases(o.quick)) {
        const s = await ours.request<SetupReply & { ok: boolean; error?: string }>({ cmd: 'setup', arch: c.arch, level: c.level });
        if (!s.ok) throw new Error(`${c.arch} ${c.level.label}: ${s.error}`);
        const ms: Record<'dense' | 'sparse' | 'torch', number[]> = { dense: [], sparse: [], torch: [] };
        let checks: number[] = [];
        const steps = o.quick ? 2 : 4;
        for (let r = 0; r < rounds; r++) {
          const order = (['dense', 'sparse', 'torch'] as const).map((_, i, a) => a[(i + r) % 3]);
          for (const v of order) {
            if (v === 'torch') {
              // PyTorch's dense speed does not depend on the weights: once per arch and round
              if (!torch || (torchDone.get(c.arch)?.length ?? 0) >= (r + 1) * steps) continue;
              const t = await torch.request<{ ok: boolean; stepMs: number[]; error?: string }>({ cmd: 'run', arch: c.arch, conv: 'DenseConv', batch: BATCH, size: SIZE, mode: 'eval', warmup: 1, steps, minSteps: 2, maxSeconds: 60 });
              if (!t.ok) throw new Error(`pytorch ${c.arch}: ${t.error}`);
              torchDone.set(c.arch, [...(torchDone.get(c.arch) ?? []), ...t.stepMs]);
              continue;
            }
            const t = await ours.request<{ ok: boolean; stepMs: number[]; logitsCheck: number; error?: string }>({ cmd: 'run', variant: v, warmup: 1, steps, maxSeconds: 60 });
            if (!t.ok) throw new Error(`${c.arch} ${c.level.label} ${v}: ${t.error}`);
            ms[v].push(...t.stepMs);
            checks.push(t.logitsCheck);
          }
        }
        const dense = side(ms.dense), sparse = side(ms.sparse);
        const tm = torchDone.get(c.arch);
        const torchSide = tm?.length ? side(tm) : undefined;
        const relDiff = Math.max(...checks.map((v) => Math.abs(v - checks[0]) / Math.max(1e-30, Math.abs(checks[0]))));
        checks = [];
        const row: SparseRow = {
          arch: c.arch, level: c.level.label, sparsity: round(100 * s.sparsity, 2), nonZeros: s.nonZeros,
          effectiveGMacs: round(s.effectiveMacs / 1e9, 3), denseGMacs: round(s.denseMacs / 1e9, 3), layers: s.whatIsLeft, prepareMs: round(s.prepareMs, 0),
          dense, sparse, torch: torchSide,
          sparseOverDense: round(sparse.imagesPerSec / dense.imagesPerSec, 2),
          sparseOverTorch: torchSide ? round(sparse.imagesPerSec / torchSide.imagesPerSec, 2) : undefined,
          logitsRelDiff: relDiff,
          checkpointMB: s.checkpointMB,
        };
        result.rows.push(row);
        log(`sparse: ${c.arch} ${c.level.label} (${row.sparsity} % zeros, ${row.effectiveGMacs} of ${row.denseGMacs} GMACs; ${row.layers}): ` +
          `dense wasm ${dense.imagesPerSec} img/s, sparse ${sparse.imagesPerSec} img/s (${row.sparseOverDense}x)` +
          (torchSide ? `, PyTorch ${torchSide.imagesPerSec} img/s (sparse ${row.sparseOverTorch}x)` : '') + `; |Σ|logits|| rel. diff ${relDiff.toExponential(1)}` +
          (s.checkpointMB ? `; checkpoint ${s.checkpointMB.densePth} MB dense .pth, ${s.checkpointMB.compact} MB compact` : ''));
      }
    } finally {
      await torch?.close();
    }
    return result;
  } finally {
    await ours.close();
  }
}

/** ResNet50 layer shapes at 224 px, batch 16, per shape class: [K, CI, CO, stride, input size]. */
const CROSSOVER_SHAPES: Record<string, Array<[number, number, number, number, number]>> = {
  pointwise: [[1, 256, 64, 1, 56], [1, 512, 128, 1, 28], [1, 1024, 256, 1, 14], [1, 512, 2048, 1, 7]],
  spatial: [[3, 64, 64, 1, 56], [3, 128, 128, 1, 28], [3, 256, 256, 1, 14], [3, 512, 512, 1, 7]],
  stem: [[7, 3, 64, 2, 224]],
};

async function measureCrossover(w: LineWorker, quick: boolean, log: (l: string) => void): Promise<CrossoverResult[]> {
  const sparsities = quick ? [0.5, 0.7, 0.9] : [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
  const out: CrossoverResult[] = [];
  for (const [cls, shapes] of Object.entries(CROSSOVER_SHAPES)) {
    for (const [K, CI, CO, S, HW] of shapes) {
      const r = await w.request<{ ok: boolean; error?: string; points: CrossoverResult['points'] }>({ cmd: 'crossover', K, CI, CO, S, HW, N: BATCH, sparsities, reps: quick ? 3 : 5 });
      if (!r.ok) throw new Error(`crossover ${cls}: ${r.error}`);
      const win = r.points.find((p, i) => r.points.slice(i).every((q) => q.sparseMs <= q.denseMs));
      const shape = `${K}x${K} ${CI}->${CO} s${S} @${HW}`;
      out.push({ cls, shape, points: r.points, crossover: win ? win.sparsity : null });
      log(`crossover ${cls} ${shape}: ${r.points.map((p) => `${p.sparsity}: ${p.denseMs}/${p.sparseMs} ms`).join(', ')} → sparse from ${win?.sparsity ?? 'never'}`);
    }
  }
  return out;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--worker')) {
    await workerMain(args.includes('--threads') ? Number(args[args.indexOf('--threads') + 1]) : undefined);
    return;
  }
  const opt = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
  const crossoverOnly = args.includes('--crossover');
  const res = await benchSparse({ quick: args.includes('--quick'), torch: !args.includes('--no-torch'), crossover: crossoverOnly, models: !crossoverOnly,
    rounds: opt('--rounds') ? Number(opt('--rounds')) : undefined, log: (l) => console.log(l) });
  const json = opt('--json');
  if (json) writeFileSync(json, JSON.stringify(res, null, 2) + '\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === SELF) {
  main().catch((e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}

// ---------------------------------------------------------------------------- report

const f = (x: number | undefined, d = 1) => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));

/** The Markdown section of RESULTS.md (bench/report.ts). */
export function renderSparseSection(r: SparseBenchResult): string[] {
  const out: string[] = ['## Sparse inference (issue 13)', ''];
  if (r.rows.length) {
    out.push(`Eval images/s at ${r.size} px, batch ${r.batch} (validate()'s step: forward, loss, top-k, read back), same run, `
      + `rounds alternating. **dense wasm**: the plain eval forward (${r.backend}); **sparse**: after prepareSparseInference `
      + `(BatchNorm folded, conv-BN-ReLU(-residual) as one op, the sparse kernel on layers past their crossover, folded dense `
      + `elsewhere); **PyTorch**: ${r.torch ?? 'not run'}, dense, eval. ResNet50 sparsities are STR budget columns (per-layer `
      + `magnitude pruning to the budget), MobileNetV1's global magnitude pruning.`, '');
    const line = (c: (string | number)[]) => `| ${c.join(' | ')} |`;
    out.push(line(['model', 'sparsity', 'zeros %', 'non-zeros', 'GMACs (effective / dense)', 'dense wasm img/s', 'sparse img/s', 'PyTorch img/s', 'sparse / dense wasm', 'sparse / PyTorch', 'checkpoint MB: dense .pth / compact', 'layers']));
    out.push(line(['---', '---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---']));
    for (const x of r.rows) {
      out.push(line([x.arch, x.level, f(x.sparsity, 2), x.nonZeros, `${f(x.effectiveGMacs, 3)} / ${f(x.denseGMacs, 3)}`, f(x.dense.imagesPerSec, 2), f(x.sparse.imagesPerSec, 2),
        f(x.torch?.imagesPerSec, 2), `${f(x.sparseOverDense, 2)}×`, x.sparseOverTorch === undefined ? '–' : `${f(x.sparseOverTorch, 2)}×`,
        x.checkpointMB ? `${f(x.checkpointMB.densePth, 2)} / ${f(x.checkpointMB.compact, 2)}` : '–', x.layers]));
    }
    out.push('');
    const r50 = r.rows.find((x) => x.arch === 'ResNet50' && x.level.includes('90.23'));
    const mb = r.rows.find((x) => x.arch === 'MobileNetV1' && x.level.startsWith('90'));
    const v = (ok: boolean | undefined) => (ok === undefined ? 'not measured' : ok ? '**met**' : '**not met**');
    out.push('| goal | measured | |', '| --- | --- | --- |');
    out.push(`| ResNet50, budget 90.23: sparse ≥ 2.5× dense wasm | ${r50 ? `${f(r50.sparseOverDense, 2)}×` : '–'} | ${v(r50 && r50.sparseOverDense >= 2.5)} |`);
    out.push(`| ResNet50, budget 90.23: sparse ≥ 1.0× PyTorch dense | ${r50?.sparseOverTorch !== undefined ? `${f(r50.sparseOverTorch, 2)}×` : '–'} | ${v(r50?.sparseOverTorch === undefined ? undefined : r50.sparseOverTorch >= 1)} |`);
    out.push(`| MobileNetV1, 90 %: sparse ≥ 1.5× dense wasm | ${mb ? `${f(mb.sparseOverDense, 2)}×` : '–'} | ${v(mb && mb.sparseOverDense >= 1.5)} |`, '');
  }
  if (r.crossover?.length) {
    out.push('### Crossover sparsity per shape class', '');
    out.push('The sparse kernel against the folded dense conv (tfjs fused Conv2D, XNNPACK) with bias and ReLU, ResNet50 layer shapes at '
      + '224 px, batch 16, magnitude-pruned random weights; single-threaded, CPU time (best of 5), which the shared machine does '
      + 'not distort the way it does wall time. "from": the lowest sparsity from which the sparse kernel wins at every higher one; '
      + 'nn/sparse/inference.ts SPARSE_CROSSOVER takes the highest per class.', '');
    const pts = r.crossover[0].points.map((p) => p.sparsity);
    out.push(`| class | shape | from | ${pts.map((p) => `${p * 100} %: dense / sparse ms`).join(' | ')} |`);
    out.push(`| --- | --- | ---: | ${pts.map(() => '---:').join(' | ')} |`);
    for (const c of r.crossover) out.push(`| ${c.cls} | ${c.shape} | ${c.crossover ?? 'never'} | ${c.points.map((p) => `${f(p.denseMs)} / ${f(p.sparseMs)}`).join(' | ')} |`);
    out.push('');
  }
  return out;
}
