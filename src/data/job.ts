/**
 * A decode job: the samples of one (local) batch, written by index into a float32 NHWC buffer.
 * Samples are claimed through an atomic counter, so any number of threads can work on a job and
 * setting the counter to the end cancels it.
 */
import path from 'node:path';
import seedrandom from 'seedrandom';
import { type Finish, type TransformSpec, SampleError, prepareFile, prepareSample, readSample } from './decode.js';
import type { DecodedCache } from './decoded-cache.js';

export interface DecodeJob {
  spec: TransformSpec;
  /** Split root; files are relative to it. */
  root: string;
  files: string[];
  /** Dataset index of each file: the crop/flip RNG stream is (seed, epoch, index). */
  ids: Int32Array;
  seed: string;
  epoch: number;
  /** The loader's decoded-image cache (DecodePool.createCache), if it has one. */
  cache?: number;
}

export interface SampleFailure {
  index: number;
  file: string;
  reason: string;
}

/** The crop/flip random stream of one sample. */
export function sampleRng(seed: string, epoch: number, id: number): () => number {
  return seedrandom.alea(`${seed}:${epoch}:${id}`);
}

/**
 * Works on `job` with `lanes` concurrent decodes until no sample is left to claim (control[0] is
 * the claim counter), writing sample i at out[i·size²·3…]. Each lane is a two-stage pipeline:
 * while libvips decodes one image on a pool thread, this thread reads the next file and resamples
 * the previous image, so one lane keeps one decode busy without a second competing for the core.
 */
export async function workOnJob(
  job: DecodeJob,
  out: Float32Array,
  control: Int32Array,
  lanes: number,
  lut: Float32Array,
  cache: DecodedCache | null = null,
): Promise<SampleFailure[]> {
  const stride = job.spec.size * job.spec.size * 3;
  const n = job.files.length;
  const failures: SampleFailure[] = [];
  const fail = (index: number, file: string, e: unknown): void => {
    // Anything that goes wrong with one file is that file's problem: report, keep going.
    failures.push({ index, file, reason: e instanceof SampleError ? e.reason : (e as Error).message });
  };
  type Started = { index: number; file: string; decoded: Promise<Finish | Error> };
  const start = (): Started | null => {
    const index = Atomics.add(control, 0, 1);
    if (index >= n) return null;
    const file = path.join(job.root, job.files[index]);
    let decoded: Promise<Finish | Error>;
    try {
      const rng = job.spec.train ? sampleRng(job.seed, job.epoch, job.ids[index]) : null;
      // Settled into a value: a failure must not surface as an unhandled rejection meanwhile.
      const prepared = cache ? prepareFile(file, job.ids[index], job.spec, rng, cache) : prepareSample(file, readSample(file), job.spec, rng);
      decoded = prepared.catch((e: Error) => e);
    } catch (e) {
      decoded = Promise.resolve(e as Error);
    }
    return { index, file, decoded };
  };
  const lane = async (): Promise<void> => {
    let cur = start();
    while (cur) {
      const finish = await cur.decoded;
      const next = start(); // libvips starts on the next image…
      if (finish instanceof Error) fail(cur.index, cur.file, finish);
      else {
        try {
          finish(out, cur.index * stride, lut); // …while this thread resamples this one
        } catch (e) {
          fail(cur.index, cur.file, e);
        }
      }
      cur = next;
    }
  };
  await Promise.all(Array.from({ length: lanes }, lane));
  return failures;
}
