import * as tf from '../tf.js';
import type { Model } from '../models/model.js';
import type { DataLoader, Batch } from '../data/loader.js';
import type { Optimizer } from './optimizer.js';
import type { Criterion } from './loss.js';
import { topkCorrect, AverageMeter } from './metrics.js';
import { Progress, type ProgressMode } from './progress.js';
import { prepareValidation } from '../nn/sparse/inference.js';
import type { LrAt } from './schedules.js';

/** Gradients keyed by variable name, as tf.variableGrads returns them. */
export type Grads = Record<string, tf.Tensor>;

export interface ScalarSink {
  addScalar(tag: string, value: number, step: number): void;
}

export interface LoopContext {
  model: Model;
  criterion: Criterion;
  printFreq: number;
  progress: ProgressMode;
  /** TensorBoard writer (rank 0 only). */
  writer?: ScalarSink;
  log: (line: string) => void;
  /**
   * Data-parallel hook between backward and update: receives this worker's mean gradients and
   * its sample count, returns the global mean gradients (the all-reduce), or undefined when the
   * run is single-process. Called with tensors it may dispose; returns tensors the loop disposes.
   */
  reduceGradients?: (grads: Grads, samples: number) => Promise<Grads>;
  /** Called after every optimizer step (GMP/DNW need nothing; a hook for tests and faults). */
  afterStep?: (step: number) => void | Promise<void>;
  /**
   * --stats-every N: every N iterations the current total sparsity (%) from this probe is shown
   * in the progress output (a host read of every layer, so not every step).
   */
  sparsityProbe?: { every: number; total: () => Promise<number> };
  /**
   * Data-parallel runs: sums `v` over all workers in place (an all-reduce). Every worker calls it
   * at the same iterations (each print_freq-th and the last), so that the progress lines and
   * TensorBoard scalars show the whole global batch, as the reference's DataParallel does.
   */
  combineMeters?: (v: Float32Array) => Promise<void>;
  /**
   * The learning-rate schedule, applied before every optimizer step (a per-epoch schedule gives
   * one value for the whole epoch); without it the optimizer keeps the lr it was given.
   */
  lrAt?: LrAt;
}

/**
 * The loss/top-1/top-5 meters that progress lines and TensorBoard show: this worker's own, or,
 * with `combine`, the global batch's (sums of every worker's meters, refreshed by sync()).
 */
class ShownMeters {
  readonly shown: AverageMeter[];
  constructor(
    private readonly local: AverageMeter[],
    private readonly combine?: (v: Float32Array) => Promise<void>,
  ) {
    this.shown = combine ? local.map((m) => new AverageMeter(m.name, m.fmt)) : local;
  }

  /** `lastN`: samples of this worker's latest batch (0 when its shard was empty). */
  async sync(lastN: number): Promise<void> {
    if (!this.combine) return;
    const k = this.local.length;
    // [val·n per meter, n, sum per meter, count]
    const v = new Float32Array(2 * k + 2);
    this.local.forEach((m, j) => {
      v[j] = lastN > 0 ? m.val * lastN : 0;
      v[k + 1 + j] = m.sum;
    });
    v[k] = lastN;
    v[2 * k + 1] = this.local[0].count;
    await this.combine(v);
    this.shown.forEach((m, j) => {
      if (v[k] > 0) m.val = v[j] / v[k];
      m.sum = v[k + 1 + j];
      m.count = v[2 * k + 1];
    });
  }
}

export interface EpochResult {
  top1: number;
  top5: number;
  loss: number;
  images: number;
  seconds: number;
  skipped: number;
}

/** One step: forward, loss, backward; metrics stay on the device. */
export function computeGradients(model: Model, criterion: Criterion, batch: Batch) {
  const vars = model.trainableVariables();
  let c1!: tf.Scalar;
  let c5!: tf.Scalar;
  const { value, grads } = tf.variableGrads(() => {
    const logits = model.forward(batch.images);
    const [a, b] = topkCorrect(logits, batch.labels);
    c1 = tf.keep(a);
    c5 = tf.keep(b);
    return criterion(logits, batch.labels);
  }, vars);
  return { loss: value, grads, correct1: c1, correct5: c5 };
}

/**
 * One training epoch (the reference's trainer.train): per batch forward, loss, backward, step;
 * meters weighted by batch size; every print_freq iterations a progress line and TensorBoard
 * "train" scalars (and the lr of that step) at step (numBatches·epoch + i)·batchSize. Host reads happen only then, so a
 * GPU backend is not synchronised every step.
 */
export async function trainOneEpoch(loader: DataLoader, optimizer: Optimizer, epoch: number, ctx: LoopContext): Promise<EpochResult> {
  const { model } = ctx;
  model.train();
  const batchTime = new AverageMeter('Time', (v) => v.toFixed(3).padStart(6));
  const dataTime = new AverageMeter('Data', (v) => v.toFixed(3).padStart(6));
  const losses = new AverageMeter('Loss', (v) => v.toFixed(3));
  const top1 = new AverageMeter('Acc@1', (v) => v.toFixed(2).padStart(6));
  const top5 = new AverageMeter('Acc@5', (v) => v.toFixed(2).padStart(6));
  const sparsity = new AverageMeter('Sparsity', (v) => v.toFixed(2));
  const global = new ShownMeters([losses, top1, top5], ctx.combineMeters);
  const meters = [batchTime, dataTime, ...global.shown, ...(ctx.sparsityProbe ? [sparsity] : [])];
  const progress = new Progress(loader.numBatches, `Epoch: [${epoch}]`, meters, ctx.printFreq, ctx.progress, ctx.log);
  // device-side metrics not yet read back: [loss, correct1, correct5, n]
  let pending: Array<[tf.Scalar, tf.Scalar, tf.Scalar, number]> = [];
  const flush = async () => {
    for (const [l, c1, c5, n] of pending) {
      const [lv, a1, a5] = await Promise.all([l.data(), c1.data(), c5.data()]);
      losses.update(lv[0], n);
      top1.update((100 * a1[0]) / n, n);
      top5.update((100 * a5[0]) / n, n);
      tf.dispose([l, c1, c5]);
    }
    pending = [];
  };
  const start = performance.now();
  let end = start;
  let images = 0;
  let i = 0;
  for await (const batch of loader.epoch(epoch)) {
    dataTime.update((performance.now() - end) / 1000);
    if (ctx.lrAt) optimizer.lr = ctx.lrAt(epoch, i);
    const n = batch.size;
    if (n === 0) {
      // A data-parallel rank whose shard of a short last batch is empty (or all its files were
      // corrupt) still joins the all-reduce, contributing nothing, so every rank steps together.
      tf.dispose([batch.images, batch.labels]);
      if (ctx.reduceGradients) {
        const zeros = Object.fromEntries(model.trainableVariables().map((v) => [v.name, tf.zerosLike(v)]));
        const g = await ctx.reduceGradients(zeros, 0);
        optimizer.step(g);
        tf.dispose(g);
        if (g !== zeros) tf.dispose(zeros);
        await ctx.afterStep?.(optimizer.steps);
      }
    } else {
      const { loss, grads, correct1, correct5 } = computeGradients(model, ctx.criterion, batch);
      let g = grads;
      if (ctx.reduceGradients) g = await ctx.reduceGradients(grads, n);
      optimizer.step(g);
      tf.dispose(g);
      if (g !== grads) tf.dispose(grads);
      pending.push([loss, correct1, correct5, n]);
      images += n;
      tf.dispose([batch.images, batch.labels]);
      await ctx.afterStep?.(optimizer.steps);
    }
    if (ctx.sparsityProbe && i % ctx.sparsityProbe.every === 0) sparsity.update(await ctx.sparsityProbe.total());
    if (i % ctx.printFreq === 0 || i === loader.numBatches - 1) {
      await flush();
      await global.sync(n);
      batchTime.update((performance.now() - end) / 1000);
      if (i % ctx.printFreq === 0 && ctx.writer) {
        const t = (loader.numBatches * epoch + i) * loader.batchSize;
        for (const m of [batchTime, dataTime, ...global.shown]) {
          ctx.writer.addScalar(`train/${m.name}_val`, m.val, t);
          ctx.writer.addScalar(`train/${m.name}_avg`, m.avg, t);
        }
        ctx.writer.addScalar('train/lr', optimizer.lr, t);
      }
    } else {
      batchTime.update((performance.now() - end) / 1000);
    }
    progress.update(i, images);
    end = performance.now();
    i++;
  }
  await flush();
  progress.end();
  return { top1: top1.avg, top5: top5.avg, loss: losses.avg, images, seconds: (performance.now() - start) / 1000, skipped: loader.stats.skipped };
}

/** Validation (the reference's trainer.validate): eval mode, no gradients, weighted averages. */
export async function validate(loader: DataLoader, ctx: LoopContext, epoch?: number): Promise<EpochResult> {
  const { model } = ctx;
  model.eval();
  const prepared = await prepareValidation(model);
  try {
    return await validateBatches(loader, ctx, epoch);
  } finally {
    prepared?.dispose();
  }
}

async function validateBatches(loader: DataLoader, ctx: LoopContext, epoch?: number): Promise<EpochResult> {
  const { model } = ctx;
  const batchTime = new AverageMeter('Time', (v) => v.toFixed(3).padStart(6));
  const losses = new AverageMeter('Loss', (v) => v.toFixed(3));
  const top1 = new AverageMeter('Acc@1', (v) => v.toFixed(2).padStart(6));
  const top5 = new AverageMeter('Acc@5', (v) => v.toFixed(2).padStart(6));
  const global = new ShownMeters([losses, top1, top5], ctx.combineMeters);
  const progress = new Progress(loader.numBatches, 'Test: ', [batchTime, ...global.shown], ctx.printFreq, ctx.progress, ctx.log);
  const start = performance.now();
  let end = start;
  let images = 0;
  let i = 0;
  for await (const batch of loader.epoch(epoch ?? 0)) {
    const n = batch.size;
    if (n === 0) {
      tf.dispose([batch.images, batch.labels]);
    } else {
      const [l, c1, c5] = tf.tidy(() => {
        const logits = model.forward(batch.images) as tf.Tensor2D;
        return [ctx.criterion(logits, batch.labels), ...topkCorrect(logits, batch.labels)];
      });
      const [lv, a1, a5] = await Promise.all([l.data(), c1.data(), c5.data()]);
      tf.dispose([l, c1, c5, batch.images, batch.labels]);
      losses.update(lv[0], n);
      top1.update((100 * a1[0]) / n, n);
      top5.update((100 * a5[0]) / n, n);
      images += n;
    }
    if (i % ctx.printFreq === 0 || i === loader.numBatches - 1) await global.sync(n);
    batchTime.update((performance.now() - end) / 1000);
    progress.update(i, images);
    end = performance.now();
    i++;
  }
  progress.end();
  if (ctx.progress !== 'none') ctx.log(`${progress.line(loader.numBatches)}`);
  if (ctx.writer && epoch !== undefined) {
    for (const m of [batchTime, ...global.shown]) ctx.writer.addScalar(`test/${m.name}_avg`, m.avg, epoch);
  }
  return { top1: top1.avg, top5: top5.avg, loss: losses.avg, images, seconds: (performance.now() - start) / 1000, skipped: loader.stats.skipped };
}
