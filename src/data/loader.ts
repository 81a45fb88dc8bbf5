/**
 * The streaming batch loader: a bounded window of batches decoding ahead of the consumer in the
 * decode pool, delivered in order as one NHWC float32 tensor plus int32 labels per batch.
 */
import './threadpool.js';
import * as tf from '../tf.js';
import { UserError } from '../util/errors.js';
import type { TransformSpec } from './decode.js';
import type { DecodeJob, SampleFailure } from './job.js';
import type { DecodePool, RunningJob } from './pool.js';
import { batchPositions, epochLayout, epochPermutation } from './sampling.js';
import type { ScannedSplit } from './scan.js';

export interface Batch {
  /** NHWC float32, normalised. */
  images: tf.Tensor4D;
  /** int32 class indices. */
  labels: tf.Tensor1D;
  /** Samples in this batch (smaller than nominal for the last batch or after skipped files). */
  size: number;
  /** Dataset index (position in the scanned file list) of each sample, for bookkeeping/debugging. */
  indices: Int32Array;
}

export interface LoaderStats {
  /** Files skipped this epoch (corrupt, truncated, not an image, unreadable). */
  skipped: number;
  /** Their paths (the first 10,000). */
  skippedFiles: string[];
}

export interface DataLoader {
  /** Samples this rank sees per epoch. */
  readonly numSamples: number;
  /** Batches per epoch (global batches: every rank makes this many steps). */
  readonly numBatches: number;
  /** Nominal local batch size (global batch / worldSize). */
  readonly batchSize: number;
  /**
   * The batches of one epoch, in order. The caller disposes each batch's tensors.
   * With worldSize = 1 a batch whose samples all failed to decode is left out; with
   * worldSize > 1 every rank yields exactly numBatches batches, some possibly of size 0 (a last
   * global batch with fewer samples than ranks, or all-corrupt shards), so ranks stay in step.
   */
  epoch(epoch: number): AsyncIterable<Batch>;
  /** For the epoch just finished (or in progress). */
  readonly stats: LoaderStats;
  close(): Promise<void>;
}

export interface LoaderOptions {
  spec: TransformSpec;
  /** Global batch size. */
  batchSize: number;
  shuffle: boolean;
  /** Seed string for the permutation and per-sample randomness. */
  seed: string;
  rank: number;
  worldSize: number;
  strictData: boolean;
  log: (line: string) => void;
  /** Batches decoding ahead of the consumer (default 2). */
  prefetch?: number;
  /** Memory for decoded small images, kept for later epochs (decoded-cache.ts); 0: none. */
  decodeCacheBytes?: number;
}

const MAX_SKIPPED_LISTED = 10_000;

export class ImageFolderLoader implements DataLoader {
  readonly numSamples: number;
  readonly numBatches: number;
  readonly batchSize: number;
  stats: LoaderStats = { skipped: 0, skippedFiles: [] };
  private readonly warned = new Set<string>();
  private closed = false;
  private readonly cache: number | null = null;

  constructor(
    private readonly split: ScannedSplit,
    private readonly pool: DecodePool,
    private readonly o: LoaderOptions,
  ) {
    if (o.batchSize % o.worldSize !== 0) {
      throw new UserError(`--batch-size ${o.batchSize} must be divisible by the number of processes (${o.worldSize})`);
    }
    const layout = epochLayout(split.files.length, o.batchSize, o.rank, o.worldSize);
    this.numBatches = layout.numBatches;
    this.numSamples = layout.numSamples;
    this.batchSize = o.batchSize / o.worldSize;
    pool.acquire();
    try {
      this.cache = pool.createCache(split.files.length, o.decodeCacheBytes ?? 0);
    } catch (e) {
      // a host with strict overcommit may refuse the reservation: carry on without the cache
      if (!(e instanceof RangeError)) throw e;
      o.log(`warning: no memory for the decoded-image cache of ${split.root} (${e.message}); lower --decode-cache-mb to keep one`);
    }
  }

  get numFiles(): number {
    return this.split.files.length;
  }

  /** Bytes of decoded images this loader keeps for later epochs. */
  get cachedBytes(): number {
    return this.cache === null ? 0 : this.pool.cacheBytes(this.cache);
  }

  epoch(epoch: number): AsyncIterable<Batch> {
    return { [Symbol.asyncIterator]: () => this.iterate(epoch) };
  }

  private async *iterate(epoch: number): AsyncGenerator<Batch> {
    if (this.closed) throw new Error('data loader is closed');
    this.stats = { skipped: 0, skippedFiles: [] };
    const n = this.split.files.length;
    const order = this.o.shuffle ? epochPermutation(n, this.o.seed, epoch) : null;
    const stride = this.o.spec.size * this.o.spec.size * 3;
    const prefetch = Math.max(1, this.o.prefetch ?? 2);
    const slots = Array.from({ length: Math.min(prefetch, this.numBatches) }, () => this.pool.acquireSlot(this.batchSize * stride));
    const window: { job: RunningJob; ids: Int32Array }[] = [];
    let launched = 0;
    const launch = (): void => {
      const [a, b] = batchPositions(n, this.o.batchSize, launched, this.o.rank, this.o.worldSize);
      const ids = new Int32Array(b - a);
      for (let i = a; i < b; i++) ids[i - a] = order ? order[i] : i;
      const job: DecodeJob = {
        spec: this.o.spec,
        root: this.split.root,
        files: Array.from(ids, (id) => this.split.files[id]),
        ids,
        seed: this.o.seed,
        epoch,
        ...(this.cache === null ? {} : { cache: this.cache }),
      };
      // Batch g uses slot g mod prefetch, launched only after batch g − prefetch completed.
      const running = this.pool.run(slots[launched % slots.length], job);
      running.done.catch(() => undefined); // awaited below; avoid an unhandled rejection if abandoned
      window.push({ job: running, ids });
      launched++;
    };
    try {
      while (launched < this.numBatches && window.length < slots.length) launch();
      for (let g = 0; g < this.numBatches; g++) {
        const cur = window.shift()!;
        const { failures, data } = await cur.job.done;
        if (launched < this.numBatches) launch();
        if (failures.length > 0) this.recordFailures(failures);
        const batch = this.assemble(data, cur.ids, failures);
        if (batch.size === 0 && this.o.worldSize === 1) {
          tf.dispose([batch.images, batch.labels]);
          continue;
        }
        yield batch;
      }
    } finally {
      // Early exit or error: stop the batches still decoding, and let them finish before their
      // slots are reused.
      for (const w of window) w.job.cancel();
      await Promise.allSettled(window.map((w) => w.job.done));
      for (const s of slots) this.pool.releaseSlot(s);
    }
  }

  private recordFailures(failures: SampleFailure[]): void {
    if (this.o.strictData) {
      const f = failures[0];
      throw new UserError(`--strict-data: cannot load ${f.file}: ${f.reason}`);
    }
    for (const f of failures) {
      this.stats.skipped++;
      if (this.stats.skippedFiles.length < MAX_SKIPPED_LISTED) this.stats.skippedFiles.push(f.file);
      if (!this.warned.has(f.file)) {
        this.warned.add(f.file);
        this.o.log(`warning: skipping ${f.file}: ${f.reason}`);
      }
    }
  }

  /** One tensor over the job's buffer (no copy); failed samples are squeezed out in place. */
  private assemble(data: Float32Array, ids: Int32Array, failures: SampleFailure[]): Batch {
    const T = this.o.spec.size;
    const stride = T * T * 3;
    const bad = new Set(failures.map((f) => f.index));
    const indices = new Int32Array(ids.length - bad.size);
    const labels = new Int32Array(indices.length);
    let kept = 0;
    for (let i = 0; i < ids.length; i++) {
      if (bad.has(i)) continue;
      if (kept !== i) data.copyWithin(kept * stride, i * stride, (i + 1) * stride);
      indices[kept] = ids[i];
      labels[kept] = this.split.labels[ids[i]];
      kept++;
    }
    const pixels = kept === ids.length ? data : data.subarray(0, kept * stride);
    const images = tf.tensor4d(pixels, [kept, T, T, 3], 'float32');
    return { images, labels: tf.tensor1d(labels, 'int32'), size: kept, indices };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.release();
  }
}
