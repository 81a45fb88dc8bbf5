/**
 * Decode threads. Each job (one batch) is sent to every worker; they share it through an atomic
 * claim counter, so the pool balances itself and keeps decoding while the main thread is busy
 * with a (synchronous) training step. Batches are written into a few reusable shared slots, and
 * the thread that finishes a batch last copies it into a buffer it transfers to the main thread.
 * (Fresh shared buffers per batch would leak: a worker that allocates little rarely collects
 * garbage, and its stale handles keep shared memory alive.)
 * workers = 0 decodes in the main thread instead.
 */
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { configureSharp } from './decode.js';
import { DecodedCache } from './decoded-cache.js';
import type { WorkerReply, WorkerRequest } from './decode-worker.js';
import { type DecodeJob, type SampleFailure, workOnJob } from './job.js';
import { normalizationLut } from './transforms.js';

/**
 * libvips decodes in flight per thread. Each lane overlaps its file reads and resampling with the
 * decode, but libvips' thread hand-offs still leave a core ~15–25 % idle at one decode per thread;
 * two fill it, so `--workers N` saturates N cores (a thread can use up to ~1.5 cores when the
 * machine has spare ones). Measured at --workers 2 on 2 cores: 912 → 1,059 img/s.
 */
export const LANES_PER_WORKER = 2;

export interface JobResult {
  failures: SampleFailure[];
  /** files.length · size² · 3 floats; slots of failed samples hold garbage. */
  data: Float32Array;
}

export interface RunningJob {
  done: Promise<JobResult>;
  /** Stops handing out samples; `done` still settles once in-flight ones finish. */
  cancel(): void;
}

/** Reusable output buffer for one batch. */
export interface Slot {
  readonly id: number;
  readonly floats: number;
  readonly data: Float32Array;
  /** [claim counter, threads done] */
  readonly control: Int32Array;
}

interface Pending {
  remaining: number;
  failures: SampleFailure[];
  data: Float32Array | undefined;
  resolve: (r: JobResult) => void;
  reject: (e: Error) => void;
}

/**
 * Compiled, the worker is decode-worker.js next to this file. Run from the .ts sources under tsx,
 * a worker does not inherit tsx's module hooks (Node 20), so it registers them before importing.
 */
function workerSpawner(): (workerData: unknown) => Worker {
  if (!fileURLToPath(import.meta.url).endsWith('.ts')) {
    const script = new URL('./decode-worker.js', import.meta.url);
    return (workerData) => new Worker(script, { workerData });
  }
  const api = import.meta.resolve('tsx/esm/api');
  const script = new URL('./decode-worker.ts', import.meta.url).href;
  const code = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(script)}); })`;
  return (workerData) => new Worker(code, { eval: true, workerData });
}

export class DecodePool {
  private readonly threads: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly slots: (Slot & { free: boolean })[] = [];
  private readonly caches: DecodedCache[] = [];
  private nextId = 0;
  private broken: Error | undefined;
  private closed = false;
  private users = 0;
  private lut: Float32Array | undefined;

  constructor(readonly workers: number) {
    configureSharp();
    if (workers > 0) {
      const spawn = workerSpawner();
      for (let w = 0; w < workers; w++) {
        const t = spawn({ lanes: LANES_PER_WORKER });
        t.unref(); // idle threads must not keep the process alive
        t.on('message', (m: WorkerReply) => this.onReply(m));
        t.on('error', (e) => this.fail(new Error(`data loader worker failed: ${e.message}`)));
        t.on('exit', (code) => {
          if (!this.closed) this.fail(new Error(`data loader worker exited unexpectedly (code ${code})`));
        });
        this.threads.push(t);
      }
    }
  }

  /** Loaders sharing the pool register here; the pool closes when the last one leaves. */
  acquire(): this {
    this.users++;
    return this;
  }

  async release(): Promise<void> {
    this.users = Math.max(0, this.users - 1);
    if (this.users === 0) await this.close();
  }

  /** A free slot of at least `floats` floats (train and val loaders share them). */
  acquireSlot(floats: number): Slot {
    const free = this.slots.find((s) => s.free && s.floats >= floats);
    if (free) {
      free.free = false;
      return free;
    }
    const id = this.slots.length;
    const shared = this.workers > 0;
    const data = new Float32Array(shared ? new SharedArrayBuffer(Math.max(1, floats) * 4) : new ArrayBuffer(0));
    const control = new Int32Array(shared ? new SharedArrayBuffer(8) : new ArrayBuffer(8));
    const slot = { id, floats, data, control, free: false };
    this.slots.push(slot);
    for (const t of this.threads) {
      t.postMessage({ type: 'slot', slot: id, data: data.buffer as SharedArrayBuffer, control: control.buffer as SharedArrayBuffer } satisfies WorkerRequest);
    }
    return slot;
  }

  /**
   * A decoded-image cache for a split of `count` images, shared by the threads (jobs name it by
   * the returned id); null when `budgetBytes` is 0.
   */
  createCache(count: number, budgetBytes: number): number | null {
    if (budgetBytes <= 0 || count === 0) return null;
    const cache = DecodedCache.create(count, budgetBytes, this.workers > 0);
    const id = this.caches.push(cache) - 1;
    for (const t of this.threads) t.postMessage({ type: 'cache', cache: id, buffers: cache.buffers } satisfies WorkerRequest);
    return id;
  }

  /** Bytes of decoded pixels held by cache `id`. */
  cacheBytes(id: number): number {
    return this.caches[id]?.usedBytes ?? 0;
  }

  releaseSlot(slot: Slot): void {
    const s = this.slots[slot.id];
    if (s) s.free = true;
  }

  /** Decodes `job` into `slot`, which must not be in use by another running job. */
  run(slot: Slot, job: DecodeJob): RunningJob {
    const n = job.files.length;
    Atomics.store(slot.control, 0, 0);
    Atomics.store(slot.control, 1, 0);
    const cancel = (): void => void Atomics.store(slot.control, 0, n);
    if (this.closed) return { done: Promise.reject(new Error('data loader is closed')), cancel };
    if (this.broken) return { done: Promise.reject(this.broken), cancel };
    const floats = n * job.spec.size * job.spec.size * 3;
    if (this.workers === 0) {
      this.lut ??= normalizationLut();
      // In the main thread the batch is decoded straight into memory that the tensor will own.
      const data = new Float32Array(floats);
      const cache = job.cache === undefined ? null : (this.caches[job.cache] ?? null);
      return { done: workOnJob(job, data, slot.control, LANES_PER_WORKER, this.lut, cache).then((failures) => ({ failures, data })), cancel };
    }
    if (floats > slot.floats) throw new Error(`batch of ${floats} floats does not fit slot of ${slot.floats}`);
    const id = this.nextId++;
    const done = new Promise<JobResult>((resolve, reject) => {
      this.pending.set(id, { remaining: this.threads.length, failures: [], data: undefined, resolve, reject });
    });
    if (this.pending.size === 1) for (const t of this.threads) t.ref();
    const msg: WorkerRequest = { type: 'job', id, slot: slot.id, workers: this.threads.length, job };
    for (const t of this.threads) t.postMessage(msg);
    return { done, cancel };
  }

  private onReply(m: WorkerReply): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    p.failures.push(...m.failures);
    if (m.data) p.data = m.data;
    if (--p.remaining > 0) return;
    this.pending.delete(m.id);
    if (this.pending.size === 0) for (const t of this.threads) t.unref();
    p.failures.sort((a, b) => a.index - b.index);
    if (!p.data) p.reject(new Error('data loader: a finished batch came back without its pixels'));
    else p.resolve({ failures: p.failures, data: p.data });
  }

  private fail(e: Error): void {
    this.broken ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fail(new Error('data loader is closed'));
    await Promise.all(this.threads.map((t) => t.terminate()));
  }
}
