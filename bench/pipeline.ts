/**
 * Input-pipeline overlap: the training iteration time with real data from the loader (decoded
 * by `--workers 2` threads while the step computes) against the iteration time with one cached
 * batch, for the 32 px configurations, through the real training loop (trainOneEpoch: data wait,
 * forward, backward, update). Equal times mean the loader is never the bottleneck. Timed after one
 * untimed epoch, as in a training run's later epochs: these small images then come from the
 * loader's decoded-image cache.
 *
 * Datasets: the embedded data/fashion-mnist (28x28 PNG, 10 classes) and a synthetic JPEG folder
 * of small images (64x48 ±30 %, like downsampled ImageNet). Models: the quickstart (STR ResNet18
 * x0.25, small stem, batch 64: the fastest step, so the hardest case for the loader) and STR
 * ResNet18 with the ImageNet stem at 32 px, batch 32. The runs alternate cached / real / real /
 * cached so the machine's load drift cancels.
 *
 *   node --import tsx bench/pipeline.ts [--quick] [--json FILE]
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as tf from '../src/tf.js';
import type { Batch, DataLoader, ImageFolderLoader } from '../src/data/loader.js';
import { LineWorker, median, REPO, round, scriptArgs, serveLines } from './common.js';

const SELF = fileURLToPath(import.meta.url);

export interface PipelineCase {
  id: string;
  dataset: 'fashion-mnist' | 'synthetic';
  model: string;
  arch: 'ResNet18';
  stem: 'imagenet' | 'small';
  widthMult: number;
  batch: number;
  workers: number;
  /** Timed iterations per run (after `warmup` untimed ones at the start of every run). */
  steps: number;
  warmup: number;
  rounds: number;
}

export interface PipelineCaseResult extends PipelineCase {
  /** Decoded images the loader kept after the untimed first epoch (MiB). */
  decodeCacheMiB: number;
  /** Median iteration time with the cached batch / with real data (ms). */
  cachedMs: number;
  realMs: number;
  /** realMs / cachedMs: 1 = the loader costs nothing. */
  ratio: number;
  /** Median time the loop waited for the next batch with real data (ms). */
  dataWaitMs: number;
  /** CPU time of the whole process (training thread + decode threads) per iteration (ms). */
  cachedCpuMsPerIter: number;
  realCpuMsPerIter: number;
  cachedRuns: number[];
  realRuns: number[];
}

export interface PipelineBenchResult {
  benchmark: 'pipeline';
  quick: boolean;
  backend: string;
  datasets: Record<string, string>;
  /** A run counts as "equal" when realMs ≤ tolerance × cachedMs. */
  tolerance: number;
  cases: PipelineCaseResult[];
}

const TOLERANCE = 1.05;

export function pipelineCases(quick: boolean): PipelineCase[] {
  const models = [
    { model: 'quickstart: STR ResNet18 x0.25, small stem', stem: 'small' as const, widthMult: 0.25, batch: 64 },
    { model: 'STR ResNet18, ImageNet stem', stem: 'imagenet' as const, widthMult: 1, batch: 32 },
  ];
  const out: PipelineCase[] = [];
  for (const dataset of ['fashion-mnist', 'synthetic'] as const) {
    for (const m of models) {
      if (quick && dataset === 'synthetic' && m.stem === 'imagenet') continue;
      out.push({
        id: `${m.model} @32 b${m.batch}, ${dataset}, 2 workers`,
        dataset, arch: 'ResNet18', ...m, workers: 2,
        steps: quick ? 6 : 15, warmup: 2, rounds: quick ? 1 : 2,
      });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------- child side

/** The first `steps` batches of each epoch of `inner`, recording how long each one was waited for. */
class LimitedLoader implements DataLoader {
  readonly waits: number[] = [];
  constructor(private readonly inner: DataLoader, readonly numBatches: number) {}
  get numSamples() { return this.numBatches * this.inner.batchSize; }
  get batchSize() { return this.inner.batchSize; }
  get stats() { return this.inner.stats; }
  epoch(e: number): AsyncIterable<Batch> {
    const inner = this.inner;
    const n = this.numBatches;
    const waits = this.waits;
    return {
      async *[Symbol.asyncIterator]() {
        const it = inner.epoch(e)[Symbol.asyncIterator]();
        try {
          for (let i = 0; i < n; i++) {
            const t0 = performance.now();
            const r = await it.next();
            waits.push(performance.now() - t0);
            if (r.done) return;
            yield r.value;
          }
        } finally {
          await it.return?.();
        }
      },
    };
  }
  async close() {}
}

/** The same batch `numBatches` times (clones share the data: no copy). */
class CachedLoader implements DataLoader {
  readonly stats = { skipped: 0, skippedFiles: [] };
  constructor(private readonly batch: Batch, readonly numBatches: number, private readonly clone: (t: tf.Tensor) => tf.Tensor) {}
  get numSamples() { return this.numBatches * this.batch.size; }
  get batchSize() { return this.batch.size; }
  epoch(): AsyncIterable<Batch> {
    const { batch, numBatches, clone } = this;
    return {
      async *[Symbol.asyncIterator]() {
        for (let i = 0; i < numBatches; i++) {
          yield { ...batch, images: clone(batch.images) as tf.Tensor4D, labels: clone(batch.labels) as tf.Tensor1D };
        }
      },
    };
  }
  async close() {}
}

async function runCase(c: PipelineCase, dataDir: string): Promise<PipelineCaseResult> {
  const tfm = await import('../src/tf.js');
  const { createDatasets } = await import('../src/data/datasets.js');
  const { createModel } = await import('../src/models/registry.js');
  const { Optimizer } = await import('../src/train/optimizer.js');
  const { makeCriterion } = await import('../src/train/loss.js');
  const { trainOneEpoch } = await import('../src/train/loop.js');
  const d = await createDatasets({
    data: dataDir, set: 'ImageFolder', batchSize: c.batch, workers: c.workers, seed: 1, imageSize: 32, valResize: 32,
    strictData: true, numClasses: 10, log: () => undefined,
  });
  const model = createModel(c.arch, { convType: 'STRConv', numClasses: 10, stem: c.stem, widthMult: c.widthMult, sInitValue: -4, seed: 0 });
  const optimizer = new Optimizer(model, { optimizer: 'sgd', lr: 0.01, momentum: 0.9, nesterov: false, weightDecay: 5e-4, noBnDecay: false });
  const criterion = makeCriterion(0.1);
  // One whole epoch first, untimed: the timed runs measure the steady state of a training run,
  // where small images come from the decoded-image cache (epoch 1's decode cost is in the loader
  // benchmark's images/s).
  let first: Batch | undefined;
  for await (const b of d.train.epoch(0)) {
    if (first) tfm.dispose([b.images, b.labels]);
    else first = b;
  }
  const cachedMiB = (d.train as ImageFolderLoader).cachedBytes / 2 ** 20;
  const cached = new CachedLoader(first!, c.warmup + c.steps, (t) => tfm.clone(t));
  const real = new LimitedLoader(d.train, c.warmup + c.steps);
  let epoch = 1;
  const cpu = { cached: 0, real: 0 };
  const timedIters = { cached: 0, real: 0 };
  /** Median iteration time of one run (the intervals between optimizer steps, warm-up left out). */
  const run = async (loader: DataLoader, which?: 'cached' | 'real'): Promise<number> => {
    const stamps: number[] = [];
    const cpus: NodeJS.CpuUsage[] = [];
    const start = performance.now();
    await trainOneEpoch(loader, optimizer, epoch++, {
      model, criterion, printFreq: 1_000_000, progress: 'none', log: () => undefined,
      afterStep: () => {
        stamps.push(performance.now());
        cpus.push(process.cpuUsage());
      },
    });
    const t = [start, ...stamps];
    const iters = t.slice(1).map((x, i) => x - t[i]);
    if (which) {
      const [a, b] = [cpus[c.warmup - 1], cpus[cpus.length - 1]];
      cpu[which] += (b.user + b.system - a.user - a.system) / 1000;
      timedIters[which] += cpus.length - c.warmup;
    }
    return median(iters.slice(c.warmup));
  };
  await run(cached); // warm-up: kernels, memory
  const cachedRuns: number[] = [];
  const realRuns: number[] = [];
  for (let r = 0; r < c.rounds; r++) {
    const order = r % 2 === 0 ? ['cached', 'real'] : ['real', 'cached'];
    for (const which of order) {
      if (which === 'cached') cachedRuns.push(await run(cached, 'cached'));
      else {
        real.waits.length = 0;
        realRuns.push(await run(real, 'real'));
      }
    }
  }
  // the real runs' waits (the last run's, warm-up left out)
  const waits = real.waits.slice(c.warmup);
  tfm.dispose([first!.images, first!.labels]);
  model.dispose();
  optimizer.dispose();
  await d.train.close();
  await d.val.close();
  const cachedMs = median(cachedRuns);
  const realMs = median(realRuns);
  return {
    ...c, decodeCacheMiB: round(cachedMiB, 1), cachedMs: round(cachedMs, 1), realMs: round(realMs, 1), ratio: round(realMs / cachedMs, 3), dataWaitMs: round(median(waits), 2),
    cachedCpuMsPerIter: round(cpu.cached / timedIters.cached, 1), realCpuMsPerIter: round(cpu.real / timedIters.real, 1),
    cachedRuns: cachedRuns.map((x) => round(x, 1)), realRuns: realRuns.map((x) => round(x, 1)),
  };
}

async function childMain(): Promise<void> {
  const { initBackend, describeBackend } = await import('../src/backend/select.js');
  await initBackend('wasm', (l) => process.stderr.write(l + '\n'));
  await serveLines(async (msg) => {
    if (msg.cmd === 'info') return { backend: describeBackend() };
    return runCase(msg.case as PipelineCase, msg.dataDir as string);
  });
}

// ---------------------------------------------------------------------------- orchestrator side

async function syntheticDir(quick: boolean, log: (l: string) => void): Promise<string> {
  const dir = path.join(os.tmpdir(), `str-train-bench-pipeline-${quick ? 'quick' : 'full'}`);
  if (existsSync(path.join(dir, '.complete'))) return dir;
  mkdirSync(dir, { recursive: true });
  const { writeSyntheticImageFolder } = await import('../src/data/synthetic.js');
  log(`pipeline: writing a synthetic dataset to ${dir}`);
  await writeSyntheticImageFolder({ out: dir, classes: 10, perClass: quick ? 60 : 120, valPerClass: 1, size: [64, 48], seed: 1, log });
  writeFileSync(path.join(dir, '.complete'), '');
  return dir;
}

export async function benchPipeline(o: { quick: boolean; log: (l: string) => void }): Promise<PipelineBenchResult> {
  const cases = pipelineCases(o.quick);
  const dirs: Record<string, string> = {
    'fashion-mnist': path.join(REPO, 'data', 'fashion-mnist'),
    synthetic: await syntheticDir(o.quick, o.log),
  };
  const w = new LineWorker('pipeline', process.execPath, [...scriptArgs('pipeline'), '--child'], o.log);
  try {
    const info = await w.request<{ ok: boolean; backend: string; error?: string }>({ cmd: 'info' });
    if (!info.ok) throw new Error(`pipeline child failed: ${info.error}`);
    const results: PipelineCaseResult[] = [];
    for (const [k, c] of cases.entries()) {
      const t0 = performance.now();
      const r = await w.request<PipelineCaseResult & { ok: boolean; error?: string }>({ cmd: 'run', case: c, dataDir: dirs[c.dataset] });
      if (!r.ok) throw new Error(`pipeline ${c.id}: ${r.error}`);
      const { ok: _ok, ...res } = r;
      results.push(res);
      o.log(`pipeline [${k + 1}/${cases.length}] ${c.id}: cached batch ${res.cachedMs} ms/iter, real data ${res.realMs} ms/iter ` +
        `(x${res.ratio.toFixed(2)}, ${res.ratio <= TOLERANCE ? 'equal' : 'SLOWER'}), data wait ${res.dataWaitMs} ms, ` +
        `process CPU ${res.cachedCpuMsPerIter} / ${res.realCpuMsPerIter} ms per iteration (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    }
    return {
      benchmark: 'pipeline', quick: o.quick, backend: info.backend,
      datasets: {
        'fashion-mnist': 'data/fashion-mnist (embedded): 6,000 train PNGs, 28x28 grayscale, 10 classes',
        synthetic: `${dirs.synthetic}: JPEGs 64x48 ±30 % per side, 10 classes`,
      },
      tolerance: TOLERANCE, cases: results,
    };
  } finally {
    await w.close();
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--child')) return childMain();
  const res = await benchPipeline({ quick: args.includes('--quick'), log: (l) => console.log(l) });
  const json = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
  if (json) writeFileSync(json, JSON.stringify(res, null, 2) + '\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === SELF) {
  main().catch((e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
