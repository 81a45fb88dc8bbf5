import { dirname, join, resolve, basename } from 'node:path';
import type { RunConfig } from '../config/schema.js';
import { settingsYaml } from '../config/load.js';
import { createModel } from '../models/registry.js';
import type { Model } from '../models/model.js';
import { modelOptionsOfConfig } from '../config/model-options.js';
import { createDatasets, createValDataset, type Datasets, type ValDataset } from '../data/datasets.js';
import { Optimizer } from './optimizer.js';
import { lrSchedule, formatEpochLr } from './schedules.js';
import { makeCriterion } from './loss.js';
import { trainOneEpoch, validate, type LoopContext, type EpochResult } from './loop.js';
import type { DataLoader } from '../data/loader.js';
import { broadcastParameters, reduceGradientsHook, sharedRandomSeed, type Collective } from '../distributed/index.js';
import { installTestHooks } from '../distributed/test-hooks.js';
import { targetSparsityPhase } from './target-sparsity.js';
import { readCheckpoint, restoreCheckpoint, type CheckpointMeta } from './checkpoint.js';
import { CheckpointWriter } from './checkpoint-writer.js';
import { layerStatsAsync, totalSparsity, reportedLayers } from '../sparsity/stats.js';
import { modelSummaryAsync, formatSummary } from '../sparsity/summary.js';
import { gmpDecay, gmpDecayInForce } from '../sparsity/gmp-schedule.js';
import { GMPConv } from '../nn/conv/gmp.js';
import { loadPretrained, applyBudget, budgetFromStr, denseCompatibleStateDictAsync } from '../sparsity/transfer.js';
import { parseBudgetCsv, budgetColumn } from '../sparsity/budgets.js';
import { allocateRunDir, removeStaleTempFiles, runBase, runPaths, type RunPaths } from '../io/run-dir.js';
import { appendResult, EpochTable, writeLayerwiseJson } from '../io/results.js';
import { SummaryWriter } from '../io/tensorboard.js';
import { writeFileAtomicSync, copyFileAtomic } from '../io/atomic.js';
import { writeSafetensors } from '../io/safetensors.js';
import { writeTorchCheckpoint, stateDictToPy } from '../io/pytorch/index.js';
import { pyFloat } from '../io/pyformat.js';
import { configStem } from '../config/load.js';
import { UserError } from '../util/errors.js';
import { defaultValResize } from '../data/transforms.js';

export interface RunOptions {
  config: RunConfig;
  configPath?: string;
  /** Printing (stdout lines). */
  log?: (line: string) => void;
  /**
   * Data-parallel workers (one per device): rank 0 alone prints and writes files; gradients are
   * averaged before every step and rank 0's initial weights are broadcast to all.
   */
  collective?: Collective;
  /** Called once the model is built and loaded (tests and library users inspect it here). */
  onModel?: (model: Model) => Promise<void>;
}

export interface RunResult {
  runDir?: string;
  bestAcc1: number;
  lastAcc1: number;
  lastAcc5: number;
  totalSparsity?: number;
}

const needsData = (c: RunConfig) => !c.summary && !(c.dense_conv_model && c.pretrained);

/**
 * A training run, in the reference's main_worker order (STR-SPEC §13): data → model → run
 * folder → pretrained / conversion / budget → optimizer → resume → evaluate or train epochs →
 * results. Rank 0 alone writes files and prints progress.
 */
export async function runTraining(o: RunOptions): Promise<RunResult> {
  const coll = o.collective;
  const rank = coll?.rank ?? 0;
  const worldSize = coll?.worldSize ?? 1;
  const lead = rank === 0;
  const log = lead ? (o.log ?? ((l: string) => process.stdout.write(l + '\n'))) : () => {};
  // Workers shard one permutation of the data: an unseeded run uses rank 0's random seed everywhere
  // (recorded in settings.yaml, so the run can be repeated).
  const c = worldSize > 1 && o.config.seed === undefined ? { ...o.config, seed: await sharedRandomSeed(coll!) } : o.config;
  if (c !== o.config) log(`=> unseeded run: seed ${c.seed}, drawn by rank 0 for all ${worldSize} workers`);

  let data: Datasets | ValDataset | undefined;
  if (needsData(c)) {
    // --evaluate reads the val split only: <data>/train may be absent
    data = await (c.evaluate ? createValDataset : createDatasets)({
      data: c.data,
      set: c.set,
      batchSize: c.batch_size,
      workers: c.workers,
      seed: c.seed,
      imageSize: c.image_size,
      valResize: c.val_resize ?? defaultValResize(c.image_size),
      cropScale: c.crop_scale,
      decodeCacheMiB: c.decode_cache_mb,
      strictData: c.strict_data,
      rank,
      worldSize,
      numClasses: c.num_classes,
      log,
    });
  }
  const numClasses = c.num_classes ?? data?.classes.length ?? 1000;
  const model = createModel(c.arch, modelOptionsOfConfig(c, numClasses));
  // run on exit, also after an error (an in-process caller must not keep optimizer buffers or an open writer)
  const cleanup: Array<() => void> = [];
  try {
    if (c.summary) {
      log(formatSummary(await modelSummaryAsync(model, c.image_size)));
      return { bestAcc1: 0, lastAcc1: 0, lastAcc5: 0 };
    }
    log(`=> ${c.arch} (${c.conv_type}, ${numClasses} classes): ${model.numParameters().toLocaleString('en-US')} parameters`);

    // Read checkpoints before the run folder exists: a missing or corrupt file must leave nothing behind.
    let resumeCk = c.resume ? await readCheckpoint(c.resume, '--resume', { forResume: true }) : undefined;
    let pretrainedCk = c.pretrained ? await readCheckpoint(c.pretrained, '--pretrained') : undefined;

    let paths: RunPaths | undefined;
    if (lead) {
      const stem = configStem(o.configPath);
      // A resumed training run continues in its own folder; --evaluate gets a new one (§13.5) so
      // it does not overwrite the trained run's settings.
      const resumeDir = c.resume && !c.evaluate ? runDirOfCheckpoint(c.resume) : undefined;
      // temp files of a run killed while saving (atomic writes): they will never be renamed
      if (resumeDir) for (const f of removeStaleTempFiles(resumeDir)) log(`=> removed ${f}, left by an interrupted save`);
      const dir = resumeDir ?? allocateRunDir(runBase({ logDir: c.log_dir, configStem: stem, name: c.name ?? `${c.arch}_${c.conv_type}`, pruneRate: c.prune_rate, widthMult: c.width_mult }));
      paths = runPaths(dir);
      // a resumed run rewrites its settings only once the checkpoint has loaded (below)
      if (!resumeDir) writeFileAtomicSync(paths.settings, settingsYaml(c));
      log(`=> run folder ${dir}`);
    }

    if (c.pretrained && pretrainedCk) {
      const ck = pretrainedCk;
      pretrainedCk = undefined;
      if (c.use_budget) {
        const applied = applyBudget(model, budgetFromStr(ck.stateDict, c.pretrained), `--use-budget ${c.pretrained}`);
        log(`=> budget from ${c.pretrained}: ${applied.length} layers`);
      }
      if (!c.ignore_pretrained_weights) {
        // evaluating or converting a model whose classifier was not loaded would be meaningless
        const r = loadPretrained(model, ck.stateDict, c.pretrained, { allowClassifierMismatch: !c.evaluate && !c.dense_conv_model });
        const thresholds = r.keptAtInit.filter((k) => k.endsWith('.sparseThreshold')).length;
        log(
          `=> loaded ${r.loaded.length} entries from ${c.pretrained}` +
            (r.thresholded.length ? ` (${r.thresholded.length} STR weights soft-thresholded)` : '') +
            (thresholds ? ` (${thresholds} thresholds not in the file stay at sInit ${c.sInit_value})` : '') +
            (r.skipped.length ? `; skipped ${r.skipped.length}: ${r.skipped.slice(0, 3).join('; ')}${r.skipped.length > 3 ? ', …' : ''}` : ''),
        );
      }
      if (c.dense_conv_model) {
        if (lead && paths) await writeDenseCompatible(model, paths, log);
        return { runDir: paths?.dir, bestAcc1: 0, lastAcc1: 0, lastAcc5: 0 };
      }
    }
    if (c.budget) {
      const table = parseBudgetCsv(c.budget, reportedLayers(model).map(([n]) => n));
      const applied = applyBudget(model, budgetColumn(table, c.budget_column!, c.budget), `--budget ${c.budget}`);
      log(`=> budget column ${c.budget_column} of ${c.budget}: ${applied.length} layers`);
    }
    await o.onModel?.(model);
    let reduceGradients: LoopContext['reduceGradients'];
    if (coll && worldSize > 1) {
      await broadcastParameters(coll, model.trainableVariables());
      reduceGradients = reduceGradientsHook(coll, model.trainableVariables().map((v) => v.name));
    }

    const optimizer = new Optimizer(model, {
      optimizer: c.optimizer,
      lr: c.lr,
      momentum: c.momentum,
      nesterov: c.nesterov,
      weightDecay: c.weight_decay,
      noBnDecay: c.no_bn_decay,
      stDecay: c.st_decay,
    });
    cleanup.push(() => optimizer.dispose());
    const criterion = makeCriterion(c.label_smoothing);
    const best = { acc1: 0, acc5: 0, train1: 0, train5: 0 };
    let startEpoch = c.start_epoch ?? 0;
    // the latest validation: the checkpoint's, until an epoch runs (none may: quirk 19)
    let last = { top1: 0, top5: 0 };
    let savedController: unknown;
    if (c.resume && resumeCk) {
      const ck = resumeCk;
      resumeCk = undefined; // host copies: not kept for the whole run
      restoreCheckpoint(ck, model, optimizer);
      if (lead && paths && !c.evaluate) writeFileAtomicSync(paths.settings, settingsYaml(c));
      if (c.start_epoch === undefined) startEpoch = ck.meta.epoch;
      Object.assign(best, { acc1: ck.meta.best_acc1, acc5: ck.meta.best_acc5, train1: ck.meta.best_train_acc1, train5: ck.meta.best_train_acc5 });
      last = { top1: ck.meta.curr_acc1 ?? 0, top5: ck.meta.curr_acc5 ?? 0 };
      savedController = ck.targetSparsity;
      if (c.conv_type === 'GMPConv' && !ck.pruneRates) setGmpRates(model, gmpDecayInForce(startEpoch, c.init_prune_epoch, c.final_prune_epoch));
      log(`=> resumed from ${c.resume} at epoch ${startEpoch} (best top-1 ${best.acc1.toFixed(2)})`);
    }

    const ctx: LoopContext = {
      model, criterion, printFreq: c.print_freq, progress: lead ? c.progress : 'none', log, reduceGradients,
      // progress lines and TensorBoard show the global batch, not rank 0's shard
      ...(coll && worldSize > 1 ? { combineMeters: (v: Float32Array) => coll.allReduceSum(v) } : {}),
    };
    if (c.stats_every && c.conv_type !== 'DenseConv') ctx.sparsityProbe = { every: c.stats_every, total: async () => totalSparsity(await layerStatsAsync(model)).sparsity };
    await installTestHooks(model, ctx, rank);
    if (c.evaluate) {
      if (!data) throw new UserError('--evaluate needs --data');
      const r = await validateAll(data.val, ctx, coll, model, startEpoch);
      log(`=> evaluation: top-1 ${r.top1.toFixed(2)}  top-5 ${r.top5.toFixed(2)}  loss ${r.loss.toFixed(4)}`);
      log(formatSummary(await modelSummaryAsync(model, c.image_size)));
      return { runDir: paths?.dir, bestAcc1: best.acc1, lastAcc1: r.top1, lastAcc5: r.top5 };
    }
    const trainLoader = data?.train;
    if (!data || !trainLoader) throw new UserError('training needs --data');

    const writer = lead && paths ? new SummaryWriter(paths.logs) : undefined;
    cleanup.push(() => writer?.close());
    ctx.writer = writer;
    const target = await targetSparsityPhase({ config: c, model, optimizer, stepsPerEpoch: trainLoader.numBatches, startEpoch, batchSize: trainLoader.batchSize, saved: savedController, log });
    target.install(ctx);
    const sparse = c.conv_type !== 'DenseConv';
    const layerNames = reportedLayers(model).map(([n]) => `module.${n}`);
    const sparsityTable = lead && paths && sparse ? new EpochTable(paths.sparsityCsv, [...layerNames, 'total']) : undefined;
    const thresholdTable = lead && paths && sparse ? new EpochTable(paths.thresholdCsv, layerNames) : undefined;
    const meta = (epoch: number, curr1: number | null, curr5: number | null): CheckpointMeta => ({
      epoch,
      arch: c.arch,
      best_acc1: best.acc1,
      best_acc5: best.acc5,
      best_train_acc1: best.train1,
      best_train_acc5: best.train5,
      curr_acc1: curr1,
      curr_acc5: curr5,
    });
    const checkpoints = new CheckpointWriter({ config: c, classNames: data?.classes, sparse: c.save_sparse, targetSparsity: () => target.state() });
    if (lead && paths && !c.resume) await checkpoints.save(paths.checkpoint('initial'), model, optimizer, meta(0, null, null));

    const scheduleOptions = {
      lr: c.lr,
      warmupLength: c.warmup_length,
      epochs: c.epochs,
      multistepGamma: c.multistep_lr_gamma,
      multistepAdjust: c.multistep_lr_adjust,
    };
    ctx.lrAt = lrSchedule(c.lr_policy, scheduleOptions, c.lr_schedule_granularity, trainLoader.numBatches);
    for (let epoch = startEpoch; epoch < c.epochs; epoch++) {
      const epochStart = performance.now();
      // the epoch's first lr (the whole epoch's with the reference's per-epoch schedule)
      const lr = ctx.lrAt(epoch, 0);
      optimizer.lr = lr;
      if (c.conv_type === 'GMPConv') {
        const decay = gmpDecay(epoch, c.init_prune_epoch, c.final_prune_epoch);
        if (decay !== null) setGmpRates(model, decay);
      }
      const train = await combine(coll, await trainOneEpoch(trainLoader, optimizer, epoch, ctx));
      const trainEnd = performance.now();
      const val = await validateAll(data.val, ctx, coll, model, epoch);
      const valEnd = performance.now();
      last = { top1: val.top1, top5: val.top5 };
      const isBest = val.top1 > best.acc1;
      best.acc1 = Math.max(best.acc1, val.top1);
      best.acc5 = Math.max(best.acc5, val.top5);
      best.train1 = Math.max(best.train1, train.top1);
      best.train5 = Math.max(best.train5, train.top5);

      const stats = sparse ? await layerStatsAsync(model) : [];
      const total = sparse ? totalSparsity(stats).sparsity : 0;
      if (lead && paths) {
        const m = meta(epoch + 1, val.top1, val.top5);
        if (c.save_last) await checkpoints.save(paths.checkpoint('last'), model, optimizer, m);
        const dueEvery = c.save_every > 0 && epoch % c.save_every === 0;
        // The reference deletes a new-best epoch file unless save_every is due, even at the last
        // epoch (quirk 22); we keep epoch_N when save_every is due or it is the final epoch.
        if (dueEvery || epoch === c.epochs - 1) await checkpoints.save(paths.checkpoint(`epoch_${epoch}`), model, optimizer, m);
        if (isBest) {
          if (c.save_last) await checkpoints.copy(paths.checkpoint('last'), paths.checkpoint('model_best'));
          else await checkpoints.save(paths.checkpoint('model_best'), model, optimizer, m);
        }
        const minutes = (ms: number) => ms / 60000;
        const epochMinutes = minutes(performance.now() - epochStart);
        writer?.addScalar('diagnostics/epoch_time_val', epochMinutes, epoch);
        writer?.addScalar('diagnostics/validation_time_val', minutes(valEnd - trainEnd), epoch);
        writer?.addScalar('diagnostics/train_time_val', minutes(trainEnd - epochStart), epoch);
        // written once per epoch (the reference writes test/lr twice, quirk 21)
        writer?.addScalar('test/lr', lr, epoch);
        if (sparse) {
          for (const s of stats) {
            writer?.addScalar(`sparsity/${s.name}`, s.sparsity, epoch);
            writer?.addScalar(`thresh/${s.name}`, s.threshold, epoch);
          }
          writer?.addScalar('sparsity/total', total, epoch);
          target.logEpoch(writer, epoch);
          sparsityTable?.set(epoch, { ...Object.fromEntries(stats.map((s) => [s.name, s.sparsity])), total });
          thresholdTable?.set(epoch, Object.fromEntries(stats.map((s) => [s.name, s.threshold])));
        }
        writer?.flush();
        const skipped = train.skipped ? `  skipped files ${train.skipped}` : '';
        log(
          `=> epoch ${epoch}: lr ${formatEpochLr(ctx.lrAt, epoch, trainLoader.numBatches)}  train top-1 ${train.top1.toFixed(2)} loss ${train.loss.toFixed(3)} (${(train.images / train.seconds).toFixed(1)} img/s)  val top-1 ${val.top1.toFixed(2)} top-5 ${val.top5.toFixed(2)}` +
            (sparse ? `  sparsity ${total.toFixed(2)} %` : '') +
            target.epochText() +
            skipped +
            `  [${(epochMinutes * 60).toFixed(1)} s]`,
        );
      }
    }
    writer?.close();

    let finalSparsity: number | undefined;
    if (lead && paths) {
      const root = c.log_dir;
      appendResult(join(root, 'results.csv'), {
        finished: new Date(),
        config: o.configPath ?? '',
        name: c.name ?? `${c.arch}_${c.conv_type}`,
        pruneRate: pyFloat(c.prune_rate),
        currTop1: last.top1,
        currTop5: last.top5,
        bestTop1: best.acc1,
        bestTop5: best.acc5,
        bestTrainTop1: best.train1,
        bestTrainTop5: best.train5,
      });
      if (sparse) {
        const stats = await layerStatsAsync(model);
        finalSparsity = totalSparsity(stats).sparsity;
        const name = c.name ?? `${c.arch}_${c.conv_type}`;
        writeLayerwiseJson(root, 'sparsity', name, { ...Object.fromEntries(stats.map((s) => [s.name, s.sparsity])), total: finalSparsity });
        writeLayerwiseJson(root, 'threshold', name, Object.fromEntries(stats.map((s) => [s.name, s.threshold])));
        log(`=> total sparsity ${finalSparsity.toFixed(2)} %, best val top-1 ${best.acc1.toFixed(2)}`);
      }
    }
    return { runDir: paths?.dir, bestAcc1: best.acc1, lastAcc1: last.top1, lastAcc5: last.top5, totalSparsity: finalSparsity };
  } finally {
    for (const f of cleanup) f();
    model.dispose();
    await data?.train?.close();
    await data?.val.close();
  }
}

/**
 * Epoch averages over all workers (each saw its shard): sums weighted by sample counts. The
 * workers' parameters are identical, so this is the global-batch value a single process gets.
 */
async function combine(coll: Collective | undefined, r: EpochResult): Promise<EpochResult> {
  if (!coll || coll.worldSize === 1) return r;
  const v = new Float32Array([r.loss * r.images, r.top1 * r.images, r.top5 * r.images, r.images, r.skipped]);
  await coll.allReduceSum(v);
  const n = v[3] || 1;
  return { ...r, loss: v[0] / n, top1: v[1] / n, top5: v[2] / n, images: v[3], skipped: v[4] };
}

/**
 * Validation of every worker's shard with rank 0's BatchNorm running statistics (DataParallel
 * evaluates with the first replica's), combined into whole-set averages.
 */
async function validateAll(loader: DataLoader, ctx: LoopContext, coll: Collective | undefined, model: Model, epoch: number): Promise<EpochResult> {
  if (coll && coll.worldSize > 1) {
    const buffers = [...model.stateEntries()].flatMap((e) => (e.kind === 'buffer' ? [e.spec.variable] : []));
    await broadcastParameters(coll, buffers);
  }
  // TensorBoard "test" scalars are written from the combined values below, not per shard
  const r = await combine(coll, await validate(loader, { ...ctx, writer: undefined }, epoch));
  if (ctx.writer) {
    ctx.writer.addScalar('test/Loss_avg', r.loss, epoch);
    ctx.writer.addScalar('test/Acc@1_avg', r.top1, epoch);
    ctx.writer.addScalar('test/Acc@5_avg', r.top5, epoch);
    ctx.writer.addScalar('test/Time_avg', r.seconds / Math.max(1, loader.numBatches), epoch);
  }
  return r;
}

/** GMP: every layer's current rate becomes p − p·decay for its own target p (per-layer budgets too). */
function setGmpRates(model: Model, decay: number): void {
  for (const [, conv] of model.convLayers()) {
    if (conv instanceof GMPConv) conv.setCurrPruneRate(conv.pruneRate - conv.pruneRate * decay);
  }
}

/** `<run>/checkpoints/x.safetensors` → `<run>`, so a resumed run continues in its own folder. */
function runDirOfCheckpoint(file: string): string | undefined {
  const d = dirname(resolve(file));
  return basename(d) === 'checkpoints' ? dirname(d) : undefined;
}

/** --dense-conv-model: the dense-compatible model as our checkpoint and as a PyTorch .pth. */
async function writeDenseCompatible(model: Model, paths: RunPaths, log: (l: string) => void): Promise<void> {
  const sd = await denseCompatibleStateDictAsync(model);
  const st = paths.checkpoint('epoch_pretrained');
  await writeSafetensors(st, sd, { format: 'str-train-dense/1', arch: model.arch });
  const pth = join(paths.checkpoints, 'epoch_pretrained.state');
  // epoch as a Python int (0n): the reference's range(start_epoch, …) needs an int
  await writeTorchCheckpoint(pth, { epoch: 0n, arch: model.arch, state_dict: stateDictToPy(sd) });
  await copyFileAtomic(pth, join(paths.checkpoints, 'model_best.pth'));
  log(`=> dense-compatible model written to ${st} and ${pth} (copied to model_best.pth)`);
}

