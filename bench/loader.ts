/**
 * Loader throughput: images/s of the train and val transforms (224 crop, 256 val resize) on a
 * synthetic ImageNet-like folder (JPEGs around 500×375), at --workers 1 and 2, with peak RSS and
 * CPU time per image; and the same for torchvision ImageFolder + PIL DataLoader
 * (bench/loader_torch.py) when Debian's python3-torchvision is installed, with the ratio.
 *
 * Each configuration runs in a fresh child process (so peak RSS is its own), ours and torch's
 * alternating, `reps` times; the median is reported. Every run has one warm-up epoch.
 *
 *   node --import tsx bench/loader.ts [--quick] [--no-torch] [--dir DIR] [--out FILE] [--workers 14] [--per-class 200]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
const BATCH = 32;

export interface LoaderBenchOptions {
  quick: boolean;
  /** Dataset folder (created if missing); default under the OS temp dir. */
  dir?: string;
  /** Run the torchvision baseline when available (default true). */
  torch?: boolean;
  /** Worker (decode thread / DataLoader process) counts to measure (default 1 and 2). */
  workers?: number[];
  /** Train images per class of the synthetic dataset (10 classes; default quick 30, full 100; val: half). */
  perClass?: number;
  /** Epochs per run, the first untimed (default quick 2, full 3), and runs per configuration (quick 1, full 3). */
  epochs?: number;
  reps?: number;
  /** Also time decoding behind a blocking 100 ms step (default true). */
  overlap?: boolean;
  log?: (line: string) => void;
}

interface Config {
  workers: number;
  transform: 'train' | 'val';
}

interface ChildResult {
  imagesPerSec: number;
  epochs: number[];
  cpuMsPerImage: number;
  peakRssBytes: number;
  images: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function ensureDataset(dir: string, perClass: number, log: (l: string) => void): Promise<void> {
  const marker = path.join(dir, '.complete');
  if (existsSync(marker)) return;
  const { writeSyntheticImageFolder } = await import('../src/data/synthetic.js');
  log(`loader bench: writing synthetic dataset to ${dir}`);
  await writeSyntheticImageFolder({
    out: dir,
    classes: 10,
    perClass,
    valPerClass: Math.ceil(perClass / 2),
    size: [500, 375],
    seed: 1,
    log,
  });
  writeFileSync(marker, '');
}

/** Child: one configuration, printed as JSON on stdout. */
async function child(dir: string, cfg: Config, epochs: number, stepMs: number): Promise<ChildResult> {
  const tf = await import('../src/tf.js');
  await tf.setBackend('cpu');
  const { createDatasets } = await import('../src/data/datasets.js');
  const d = await createDatasets({
    data: dir,
    set: 'ImageFolder',
    batchSize: BATCH,
    workers: cfg.workers,
    seed: 1,
    imageSize: 224,
    valResize: 256,
    strictData: true,
    log: () => undefined,
    decodeCacheMiB: 0, // measures decoding (these images are above the cache's size limit anyway)
  });
  const loader = cfg.transform === 'train' ? d.train : d.val;
  const rates: number[] = [];
  let cpu = 0;
  let timed = 0;
  for (let e = 0; e < epochs; e++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    let n = 0;
    for await (const b of loader.epoch(e)) {
      n += b.size;
      tf.dispose([b.images, b.labels]);
      if (stepMs > 0) {
        // A synchronous "training step" that blocks this thread, like the tfjs CPU backend does.
        const until = performance.now() + stepMs;
        while (performance.now() < until);
      }
    }
    const dt = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    if (e > 0 || epochs === 1) {
      rates.push(n / dt);
      cpu += (c.user + c.system) / 1000;
      timed += n;
    }
  }
  await d.train.close();
  await d.val.close();
  return {
    imagesPerSec: median(rates),
    epochs: rates,
    cpuMsPerImage: cpu / timed,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    images: loader.numSamples,
  };
}

function runChild(dir: string, cfg: Config, epochs: number, stepMs = 0): ChildResult {
  const r = spawnSync(process.execPath, [...process.execArgv, SELF, '--child', JSON.stringify({ dir, cfg, epochs, stepMs })], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  if (r.status !== 0) throw new Error(`loader bench child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as ChildResult;
}

function torchAvailable(): string | null {
  for (const py of ['/usr/bin/python3', 'python3']) {
    try {
      execFileSync(py, ['-c', 'import torch, torchvision'], { stdio: 'ignore' });
      return py;
    } catch {
      // try the next interpreter
    }
  }
  return null;
}

function runTorch(py: string, dir: string, cfg: Config, epochs: number): ChildResult & Record<string, unknown> {
  // Next to this file in the sources; compiled, this file is in dist/bench/.
  const sibling = path.join(path.dirname(SELF), 'loader_torch.py');
  const file = existsSync(sibling) ? sibling : path.join(path.dirname(SELF), '..', '..', 'bench', 'loader_torch.py');
  const out = execFileSync(
    py,
    [file, dir, '--workers', String(cfg.workers), '--transforms', cfg.transform, '--batch-size', String(BATCH), '--epochs', String(epochs)],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const j = JSON.parse(out) as { results: (ChildResult & Record<string, unknown>)[]; torch: string; torchvision: string; pillow?: string };
  return { ...j.results[0], versions: { torch: j.torch, torchvision: j.torchvision, pillow: j.pillow } };
}

export async function benchLoader(opts: LoaderBenchOptions): Promise<object> {
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const perClass = opts.perClass ?? (opts.quick ? 30 : 100);
  const dir = opts.dir ?? path.join(os.tmpdir(), `str-train-bench-loader-${opts.quick ? 'quick' : 'full'}${opts.perClass ? `-${perClass}` : ''}`);
  mkdirSync(dir, { recursive: true });
  await ensureDataset(dir, perClass, log);
  const py = opts.torch === false ? null : torchAvailable();
  if (!py && opts.torch !== false) log('loader bench: torchvision not found (apt-get install python3-torchvision); skipping the baseline');
  const epochs = opts.epochs ?? (opts.quick ? 2 : 3);
  const reps = opts.reps ?? (opts.quick ? 1 : 3);
  const configs: Config[] = (opts.workers ?? [1, 2]).flatMap((workers) => (['train', 'val'] as const).map((transform) => ({ workers, transform })));
  const rows: Record<string, unknown>[] = [];
  const images: Record<string, number> = {};
  let torchVersions: unknown;
  const load0 = os.loadavg()[0];
  for (const cfg of configs) {
    const ours: ChildResult[] = [];
    const theirs: ChildResult[] = [];
    for (let r = 0; r < reps; r++) {
      ours.push(runChild(dir, cfg, epochs));
      if (py) {
        const t = runTorch(py, dir, cfg, epochs);
        torchVersions = t.versions;
        theirs.push(t);
      }
    }
    const row: Record<string, unknown> = {
      transform: cfg.transform,
      workers: cfg.workers,
      imagesPerSec: median(ours.map((o) => o.imagesPerSec)),
      cpuMsPerImage: median(ours.map((o) => o.cpuMsPerImage)),
      peakRssMiB: Math.max(...ours.map((o) => o.peakRssBytes)) / 2 ** 20,
      runs: ours.map((o) => o.imagesPerSec),
    };
    images[cfg.transform] = ours[0].images;
    if (py) {
      row.torchImagesPerSec = median(theirs.map((o) => o.imagesPerSec));
      row.torchCpuMsPerImage = median(theirs.map((o) => o.cpuMsPerImage));
      row.torchPeakRssMiB = Math.max(...theirs.map((o) => o.peakRssBytes)) / 2 ** 20;
      row.torchRuns = theirs.map((o) => o.imagesPerSec);
      row.ratio = (row.imagesPerSec as number) / (row.torchImagesPerSec as number);
    }
    rows.push(row);
    log(
      `loader ${cfg.transform.padEnd(5)} workers=${cfg.workers}: ${(row.imagesPerSec as number).toFixed(0)} img/s, ` +
        `${(row.cpuMsPerImage as number).toFixed(2)} CPU-ms/img, peak RSS ${(row.peakRssMiB as number).toFixed(0)} MiB` +
        (py
          ? ` | torchvision ${(row.torchImagesPerSec as number).toFixed(0)} img/s, ${(row.torchCpuMsPerImage as number).toFixed(2)} CPU-ms/img, ` +
            `${(row.torchPeakRssMiB as number).toFixed(0)} MiB | ratio ${(row.ratio as number).toFixed(2)}x`
          : ''),
    );
  }
  // Decoding continues while the main thread is blocked by a synchronous step (tfjs CPU backend).
  let overlapResult: object | undefined;
  if (opts.overlap !== false) {
    const stepMs = 100;
    const overlap = runChild(dir, { workers: 2, transform: 'train' }, 2, stepMs);
    const batches = Math.ceil(overlap.images / BATCH);
    const epochSec = overlap.images / overlap.imagesPerSec;
    const stepsSec = (batches * stepMs) / 1000;
    log(`loader overlap: ${batches} blocking steps of ${stepMs} ms = ${stepsSec.toFixed(2)} s of compute; epoch took ${epochSec.toFixed(2)} s (workers=2, train)`);
    overlapResult = { workers: 2, transform: 'train', stepMs, batches, computeSec: stepsSec, epochSec };
  }
  return {
    bench: 'loader',
    quick: opts.quick,
    machine: { cpus: os.availableParallelism(), model: os.cpus()[0]?.model, node: process.version, loadAvgAtStart: load0, loadAvgAtEnd: os.loadavg()[0] },
    // Under tsx every thread also carries the TypeScript loader (more RSS than compiled).
    runtime: SELF.endsWith('.ts') ? 'tsx' : 'compiled',
    dataset: { dir, images, size: '500x375 ±30 % per side, JPEG q90, 10 classes' },
    batchSize: BATCH,
    epochsPerRun: epochs,
    repetitions: reps,
    torch: torchVersions ?? null,
    results: rows,
    ...(overlapResult ? { overlap: overlapResult } : {}),
  };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const at = args.indexOf('--child');
  if (at >= 0) {
    const { dir, cfg, epochs, stepMs } = JSON.parse(args[at + 1]) as { dir: string; cfg: Config; epochs: number; stepMs: number };
    process.stdout.write(JSON.stringify(await child(dir, cfg, epochs, stepMs)) + '\n');
    return;
  }
  const opt = (name: string): string | undefined => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
  const result = await benchLoader({
    quick: args.includes('--quick'), torch: !args.includes('--no-torch'), dir: opt('--dir'),
    workers: opt('--workers')?.split(',').map(Number), perClass: opt('--per-class') ? Number(opt('--per-class')) : undefined,
  });
  const out = opt('--out');
  if (out) {
    mkdirSync(path.dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
  }
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === SELF) {
  main().catch((e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
