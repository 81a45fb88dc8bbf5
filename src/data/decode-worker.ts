/** Decode worker thread: runs jobs from the pool one after another (see pool.ts). */
import { parentPort, workerData } from 'node:worker_threads';
import { configureSharp } from './decode.js';
import { DecodedCache, type DecodedCacheBuffers } from './decoded-cache.js';
import { type DecodeJob, workOnJob } from './job.js';
import { normalizationLut } from './transforms.js';

export type WorkerRequest =
  | { type: 'slot'; slot: number; data: SharedArrayBuffer; control: SharedArrayBuffer }
  | { type: 'cache'; cache: number; buffers: DecodedCacheBuffers }
  | { type: 'job'; id: number; slot: number; workers: number; job: DecodeJob };

export interface WorkerReply {
  id: number;
  failures: { index: number; file: string; reason: string }[];
  /** From the thread that finished the job last: the batch, copied out of the slot. */
  data?: Float32Array;
}

const port = parentPort;
if (!port) throw new Error('decode-worker must run as a worker thread');
configureSharp();
const { lanes } = workerData as { lanes: number };
const lut = normalizationLut();
const slots = new Map<number, { out: Float32Array; control: Int32Array }>();
const caches = new Map<number, DecodedCache>();
const queue: Extract<WorkerRequest, { type: 'job' }>[] = [];
let busy = false;

async function drain(): Promise<void> {
  if (busy) return;
  busy = true;
  while (queue.length > 0) {
    const { id, slot, workers, job } = queue.shift()!;
    const s = slots.get(slot)!;
    const cache = job.cache === undefined ? null : (caches.get(job.cache) ?? null);
    const failures = await workOnJob(job, s.out, s.control, lanes, lut, cache);
    // control[1] counts threads done with this job; the last one sees every write (Atomics are
    // sequentially consistent) and copies the batch into a buffer it hands over, so the slot can
    // be reused and the main thread gets memory it owns without copying.
    if (Atomics.add(s.control, 1, 1) + 1 === workers) {
      const data = s.out.slice(0, job.files.length * job.spec.size * job.spec.size * 3);
      port!.postMessage({ id, failures, data } satisfies WorkerReply, [data.buffer]);
    } else {
      port!.postMessage({ id, failures } satisfies WorkerReply);
    }
  }
  busy = false;
}

port.on('message', (m: WorkerRequest) => {
  if (m.type === 'slot') {
    slots.set(m.slot, { out: new Float32Array(m.data), control: new Int32Array(m.control) });
    return;
  }
  if (m.type === 'cache') {
    caches.set(m.cache, new DecodedCache(m.buffers));
    return;
  }
  queue.push(m);
  void drain();
});
