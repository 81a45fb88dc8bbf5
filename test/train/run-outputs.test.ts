/**
 * Issue 3's training run end to end on a tiny synthetic dataset (4 classes × 8 train / 4 val
 * images, ResNet18 at width 1/8 with the small stem at 16 px, batch 8, 2 epochs, wasm): STR
 * through the CLI, then STR again, DNW, GMP and dense in this process. Every file a run writes is
 * read back and cross-checked against the others and against the printed lines (STR-SPEC §11, §12).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import type { RunConfig } from '../../src/config/schema.js';
import { readCheckpoint } from '../../src/train/checkpoint.js';
import { learningRate } from '../../src/train/schedules.js';
import { useBackend } from '../helpers/tf.js';
import {
  RESNET18_LAYERS,
  epochLines,
  f32,
  listFiles,
  readEpochCsv,
  readPyJson,
  readResults,
  readTensorboard,
  runCli,
  runFolderOf,
  runInProcess,
  series,
  tinyConfig,
  tinyDataset,
  tmpDir,
  writeYaml,
} from '../helpers/run.js';

const NUM_BATCHES = 4; // 32 train images / batch 8
const VAL_BATCHES = 2; // 16 val images / batch 8
const BATCH = 8;
const PRINT_FREQ = 2;
const EPOCHS = 2;

type Kind = 'STR' | 'DNW' | 'GMP' | 'dense';

interface Expect {
  kind: Kind;
  config: RunConfig;
  runDir: string;
  logDir: string;
  /** stdout / captured lines of the run. */
  text: string;
  checkpoints: string[];
}

const METERS = ['Time', 'Data', 'Loss', 'Acc@1', 'Acc@5'];

/** Layer sizes from a checkpoint's state dict (`module.<layer>.weight`). */
async function layerSizes(file: string): Promise<Map<string, number>> {
  const ck = await readCheckpoint(file);
  const out = new Map<string, number>();
  for (const l of RESNET18_LAYERS) {
    const w = ck.stateDict.get(`${l}.weight`);
    assert.ok(w, `${file}: ${l}.weight`);
    out.set(l, w.shape.reduce((a, b) => a * b, 1));
  }
  return out;
}

async function checkRun(e: Expect): Promise<void> {
  const { config: c, runDir } = e;
  const sparse = e.kind !== 'dense';
  // ---- settings.yaml: the effective config, reloadable with --config to the same config
  const settings = path.join(runDir, 'settings.yaml');
  const reloaded = loadConfig(['--config', settings]).config;
  assert.deepEqual({ ...reloaded, config: undefined }, { ...c, config: undefined });

  // ---- checkpoints
  const ckDir = path.join(runDir, 'checkpoints');
  assert.deepEqual(fs.readdirSync(ckDir).sort(), e.checkpoints.map((n) => `${n}.safetensors`).sort());
  const cks = new Map<string, Awaited<ReturnType<typeof readCheckpoint>>>();
  for (const n of e.checkpoints) cks.set(n, await readCheckpoint(path.join(ckDir, `${n}.safetensors`)));
  const initial = cks.get('initial')!;
  assert.equal(initial.meta.epoch, 0);
  assert.equal(initial.meta.curr_acc1, null);
  assert.equal(initial.optimizerState.size, 0, 'no momentum buffers before the first step');
  const last = cks.get('last')!;
  assert.equal(last.meta.epoch, EPOCHS, 'last holds the next epoch to run');
  assert.deepEqual(last.config, JSON.parse(JSON.stringify(c)), 'the config travels in the checkpoint');
  assert.ok(last.optimizerState.size > 0, 'SGD momentum buffers saved');
  for (const k of last.stateDict.keys()) assert.ok(k.startsWith('module.'), `${k} has the module. prefix`);
  if (e.kind === 'STR') assert.deepEqual(last.stateDict.get('module.layer4.1.conv2.sparseThreshold')?.shape, [1, 1]);
  else assert.equal(last.stateDict.has('module.conv1.sparseThreshold'), false);
  for (const [n, ck] of cks) {
    const m = /^epoch_(\d+)$/.exec(n);
    if (m) assert.equal(ck.meta.epoch, Number(m[1]) + 1, `${n} stores epoch+1`);
  }
  const best = cks.get('model_best')!;
  assert.equal(best.meta.curr_acc1, best.meta.best_acc1, 'model_best is the epoch that set best_acc1');

  // ---- printed epoch lines, TensorBoard, results
  const printed = epochLines(e.text);
  assert.deepEqual([...printed.keys()], [0, 1]);
  const tb = readTensorboard(runDir);
  const expectTags = new Set<string>();
  const trainSteps: number[] = [];
  for (let ep = 0; ep < EPOCHS; ep++) for (let i = 0; i < NUM_BATCHES; i += PRINT_FREQ) trainSteps.push((NUM_BATCHES * ep + i) * BATCH);
  for (const m of METERS) {
    for (const s of ['val', 'avg']) {
      const tag = `train/${m}_${s}`;
      expectTags.add(tag);
      assert.deepEqual(series(tb, tag).map((p) => p.step), trainSteps, tag);
    }
  }
  for (const tag of ['test/Time_avg', 'test/Loss_avg', 'test/Acc@1_avg', 'test/Acc@5_avg', 'test/lr', 'diagnostics/epoch_time_val', 'diagnostics/validation_time_val', 'diagnostics/train_time_val']) {
    expectTags.add(tag);
    assert.deepEqual(series(tb, tag).map((p) => p.step), [0, 1], `${tag} once per epoch`);
  }
  const lrs = [0, 1].map((ep) => learningRate('cosine_lr', ep, { lr: 0.1, warmupLength: 0, epochs: EPOCHS, multistepGamma: 0.1, multistepAdjust: 30 }));
  assert.deepEqual(series(tb, 'test/lr').map((p) => p.value), lrs.map(f32));
  assert.deepEqual(lrs, [0.1, 0.05]);
  // the lr of each logged training step: the epoch's, with the reference's per-epoch schedule
  expectTags.add('train/lr');
  assert.deepEqual(series(tb, 'train/lr').map((p) => p.step), trainSteps);
  assert.deepEqual(series(tb, 'train/lr').map((p) => p.value), trainSteps.map((t) => f32(lrs[Math.floor(t / BATCH / NUM_BATCHES)])));
  for (const ep of [0, 1]) {
    const [et, vt, tt] = ['epoch', 'validation', 'train'].map((k) => series(tb, `diagnostics/${k}_time_val`)[ep].value);
    assert.ok(vt > 0 && tt > 0 && et >= f32(vt + tt) * 0.999, 'minutes: epoch ≥ train + validation');
    assert.ok(et < 1, 'a tiny epoch takes less than a minute');
  }
  const val1 = series(tb, 'test/Acc@1_avg').map((p) => p.value);
  const val5 = series(tb, 'test/Acc@5_avg').map((p) => p.value);
  for (const ep of [0, 1]) {
    assert.equal(val1[ep].toFixed(2), printed.get(ep)!.val1.toFixed(2), `epoch ${ep} val top-1 printed = logged`);
    assert.equal(val5[ep].toFixed(2), printed.get(ep)!.val5.toFixed(2));
    // 16 val images: every accuracy is a multiple of 6.25 %
    assert.equal((val1[ep] / 6.25) % 1, 0);
  }
  assert.equal(last.meta.curr_acc1, val1[1]);
  assert.equal(best.meta.best_acc1, Math.max(...val1));
  assert.equal(last.meta.best_acc1, Math.max(...val1));
  assert.equal(last.meta.best_train_acc1.toFixed(2), Math.max(...[0, 1].map((ep) => printed.get(ep)!.train1)).toFixed(2));

  // ---- layer-wise CSVs, JSON, TensorBoard sparsity
  const sCsv = path.join(runDir, 'layerwise_sparsity.csv');
  const tCsv = path.join(runDir, 'layerwise_threshold.csv');
  if (!sparse) {
    assert.equal(fs.existsSync(sCsv) || fs.existsSync(tCsv), false, 'dense runs write no layer-wise CSVs');
    for (const tag of tb.scalars.keys()) assert.ok(!/^(sparsity|thresh)\//.test(tag), `dense run logs no ${tag}`);
  } else {
    const s = readEpochCsv(sCsv);
    const t = readEpochCsv(tCsv);
    assert.deepEqual(s.header, ['epoch', ...RESNET18_LAYERS, 'total']);
    assert.deepEqual(t.header, ['epoch', ...RESNET18_LAYERS]);
    assert.deepEqual(s.rows.map((r) => r[0]), [0, 1], 'one row per epoch');
    assert.deepEqual(t.rows.map((r) => r[0]), [0, 1]);
    const sizes = await layerSizes(path.join(ckDir, 'last.safetensors'));
    for (const [ep, row] of s.rows.entries()) {
      // total = 100 · Σ zeros / Σ numel over the layers (exact counts, quirk 27 fixed)
      let z = 0;
      let n = 0;
      RESNET18_LAYERS.forEach((l, j) => {
        const zl = (row[j + 1] * sizes.get(l)!) / 100;
        assert.ok(Math.abs(zl - Math.round(zl)) < 1e-6, `${l}: sparsity × size is a zero count`);
        z += Math.round(zl);
        n += sizes.get(l)!;
      });
      assert.ok(Math.abs(row.at(-1)! - (100 * z) / n) < 1e-9, `epoch ${ep} total`);
      assert.equal(row.at(-1)!.toFixed(2), printed.get(ep)!.sparsity!.toFixed(2), 'printed sparsity = CSV total');
      // TensorBoard holds the same numbers (float32)
      assert.equal(series(tb, 'sparsity/total')[ep].value, f32(row.at(-1)!));
      RESNET18_LAYERS.forEach((l, j) => {
        assert.equal(series(tb, `sparsity/${l}`)[ep].value, f32(row[j + 1]), `sparsity/${l}`);
        assert.equal(series(tb, `thresh/${l}`)[ep].value, f32(t.rows[ep][j + 1]), `thresh/${l}`);
        expectTags.add(`sparsity/${l}`);
        expectTags.add(`thresh/${l}`);
      });
      expectTags.add('sparsity/total');
      if (e.kind === 'DNW') {
        // DNW zeroes ⌊p·n⌋ weights of every layer from the first step
        RESNET18_LAYERS.forEach((l, j) => assert.equal(row[j + 1], (100 * Math.floor(0.5 * sizes.get(l)!)) / sizes.get(l)!, l));
      }
      if (e.kind === 'GMP') {
        // window [0, 1], T = 2: rate 0 in epoch 0, then p·(1 − (1 − 1/2)³) = 0.4375
        const rate = ep === 0 ? 0 : 0.5 - 0.5 * 0.125;
        RESNET18_LAYERS.forEach((l, j) => assert.equal(row[j + 1], (100 * Math.floor(rate * sizes.get(l)!)) / sizes.get(l)!, `${l} epoch ${ep}`));
      }
      if (e.kind === 'STR') {
        // threshold = sigmoid(s) and s starts at -4: τ near σ(-4) = 0.018
        for (const v of t.rows[ep].slice(1)) assert.ok(v > 0.005 && v < 0.05, `STR threshold ${v}`);
      }
    }
    const sj = readPyJson(path.join(e.logDir, 'layerwise_sparsity', `${c.name}.json`));
    const tj = readPyJson(path.join(e.logDir, 'layerwise_threshold', `${c.name}.json`));
    assert.deepEqual(sj.keys, [...RESNET18_LAYERS, 'total'], 'module order, then total');
    assert.deepEqual(tj.keys, RESNET18_LAYERS);
    const lastRow = s.rows[1];
    RESNET18_LAYERS.forEach((l, j) => {
      assert.equal(sj.values[l], lastRow[j + 1]);
      assert.equal(tj.values[l], t.rows[1][j + 1]);
    });
    assert.equal(sj.values.total, lastRow.at(-1));
    assert.equal(series(tb, 'sparsity/total')[1].value, f32(sj.values.total), 'last sparsity/total = JSON total');
    assert.match(e.text, new RegExp(`=> total sparsity ${sj.values.total.toFixed(2)} %`));
  }
  assert.deepEqual([...tb.scalars.keys()].sort(), [...expectTags].sort(), 'exactly the expected tags');
}

/** results.csv row of this run checked against TensorBoard and the printed lines. */
async function checkResultRow(row: string[], e: Expect, configAsGiven: string): Promise<void> {
  const last = await readCheckpoint(path.join(e.runDir, 'checkpoints', 'last.safetensors'));
  const tb = readTensorboard(e.runDir);
  const val1 = series(tb, 'test/Acc@1_avg').map((p) => p.value);
  const val5 = series(tb, 'test/Acc@5_avg').map((p) => p.value);
  const printed = epochLines(e.text);
  const train1 = [0, 1].map((ep) => printed.get(ep)!.train1);
  assert.deepEqual(row.slice(1), [
    configAsGiven,
    e.config.name,
    String(e.config.prune_rate).includes('.') ? String(e.config.prune_rate) : `${e.config.prune_rate}.0`,
    val1[1].toFixed(2),
    val5[1].toFixed(2),
    Math.max(...val1).toFixed(2),
    Math.max(...val5).toFixed(2),
    Math.max(...train1).toFixed(2),
    last.meta.best_train_acc5.toFixed(2),
  ]);
  const now = new Date();
  const [mdy] = row[0].split('_');
  const [mm, dd, yy] = mdy.split('-').map(Number);
  assert.deepEqual([mm, dd, yy], [now.getMonth() + 1, now.getDate(), now.getFullYear() % 100], 'local date, %m-%d-%y');
}

describe('training run end to end (tiny synthetic ImageFolder, wasm)', () => {
  let root: string;
  let logDir: string;
  const runs: { e: Expect; configAsGiven: string }[] = [];

  before(async () => {
    root = tmpDir('run-outputs');
    const data = await tinyDataset(root);
    logDir = path.join(root, 'runs');
    writeYaml(path.join(root, 'tiny-str.yaml'), tinyConfig(data, { name: 'STR', conv_type: 'STRConv', sInit_value: -4 }));
    writeYaml(path.join(root, 'tiny-dnw.yaml'), tinyConfig(data, { name: 'DNW', conv_type: 'DNWConv', prune_rate: 0.5 }));
    writeYaml(path.join(root, 'tiny-gmp.yaml'), tinyConfig(data, { name: 'GMP', conv_type: 'GMPConv', prune_rate: 0.5, init_prune_epoch: 0, final_prune_epoch: 1 }));
    writeYaml(path.join(root, 'tiny-dense.yaml'), tinyConfig(data, { name: 'baseline', conv_type: 'DenseConv' }));
    await useBackend('wasm');
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  test('STR through the CLI: exit 0, the reference progress lines, every output file', async () => {
    const args = ['--config', 'tiny-str.yaml', '--log-dir', logDir, '--progress', 'plain', '--save-every', '1'];
    const r = runCli(args, root);
    assert.equal(r.code, 0, r.stderr);
    const runDir = runFolderOf(r.stdout);
    assert.equal(runDir, path.join(logDir, 'tiny-str', 'STR', 'prune_rate=0.0', 'width_mult=0.125'));
    const config = loadConfig(args, { cwd: root }).config;

    // ---- progress lines (STR-SPEC §11.4): every print_freq batches, tab-separated meters
    const lines = r.stdout.split('\n');
    const trainRe =
      /^Epoch: \[(\d+)\]\[(\d)\/4\]\tTime +\d+\.\d{3} \( *\d+\.\d{3}\)\tData +\d+\.\d{3} \( *\d+\.\d{3}\)\tLoss (\d+\.\d{3}) \((\d+\.\d{3})\)\tAcc@1 +(\d+\.\d{2}) \( *(\d+\.\d{2})\)\tAcc@5 +(\d+\.\d{2}) \( *(\d+\.\d{2})\)$/;
    const testRe = /^Test: \[(\d)\/2\]\tTime +\d+\.\d{3} \( *\d+\.\d{3}\)\tLoss \d+\.\d{3} \(\d+\.\d{3}\)\tAcc@1 +\d+\.\d{2} \( *\d+\.\d{2}\)\tAcc@5 +\d+\.\d{2} \( *\d+\.\d{2}\)$/;
    const train = lines.filter((l) => l.startsWith('Epoch: '));
    assert.deepEqual(train.map((l) => trainRe.exec(l)?.slice(1, 3).join('/')), ['0/0', '0/2', '1/0', '1/2'], train.join('\n'));
    const tests = lines.filter((l) => l.startsWith('Test: '));
    // every print_freq batches, then the summary line with index = number of batches
    assert.deepEqual(tests.map((l) => testRe.exec(l)?.[1]), ['0', '2', '0', '2'], tests.join('\n'));
    // the printed Loss/Acc@1 values are the ones logged to TensorBoard at (numBatches·epoch + i)·batch
    const tb = readTensorboard(runDir);
    train.forEach((l, k) => {
      const m = trainRe.exec(l)!;
      const step = (NUM_BATCHES * Number(m[1]) + Number(m[2])) * BATCH;
      const at = (tag: string) => series(tb, tag).find((p) => p.step === step)!.value;
      assert.equal(at('train/Loss_val').toFixed(3), m[3], `line ${k} loss`);
      assert.equal(at('train/Loss_avg').toFixed(3), m[4]);
      assert.equal(at('train/Acc@1_val').toFixed(2), m[5]);
      assert.equal(at('train/Acc@1_avg').toFixed(2), m[6]);
    });
    // the validation summary line's averages are the test/ scalars
    const summaries = tests.filter((l) => l.startsWith(`Test: [${VAL_BATCHES}/`));
    summaries.forEach((l, ep) => {
      const m = /Loss \d+\.\d{3} \((\d+\.\d{3})\)\tAcc@1 +\S+ \( *(\d+\.\d{2})\)/.exec(l)!;
      assert.equal(series(tb, 'test/Loss_avg')[ep].value.toFixed(3), m[1]);
      assert.equal(series(tb, 'test/Acc@1_avg')[ep].value.toFixed(2), m[2]);
    });
    assert.equal(r.stderr.trim().split('\n').length, 1, `stderr is the backend line only:\n${r.stderr}`);

    const e: Expect = { kind: 'STR', config, runDir, logDir, text: r.stdout, checkpoints: ['initial', 'epoch_0', 'epoch_1', 'last', 'model_best'] };
    await checkRun(e);
    runs.push({ e, configAsGiven: 'tiny-str.yaml' });
  });

  test('a second run of the same config goes to <base>/0 and overwrites the JSON of its name', async () => {
    const r = await runInProcess(['--config', 'tiny-str.yaml', '--log-dir', logDir], root);
    const base = path.join(logDir, 'tiny-str', 'STR', 'prune_rate=0.0', 'width_mult=0.125');
    assert.equal(r.result.runDir, path.join(base, '0'));
    const e: Expect = { kind: 'STR', config: r.config, runDir: r.result.runDir!, logDir, text: r.lines.join('\n'), checkpoints: ['initial', 'epoch_1', 'last', 'model_best'] };
    await checkRun(e);
    runs.push({ e, configAsGiven: 'tiny-str.yaml' });
    // the run returns what it wrote
    assert.equal(r.result.totalSparsity, readPyJson(path.join(logDir, 'layerwise_sparsity', 'STR.json')).values.total);
  });

  for (const [kind, file] of [['DNW', 'tiny-dnw'], ['GMP', 'tiny-gmp'], ['dense', 'tiny-dense']] as const) {
    test(`${kind} run: every output file`, async () => {
      const r = await runInProcess(['--config', `${file}.yaml`, '--log-dir', logDir], root);
      const p = kind === 'dense' ? '0.0' : '0.5';
      assert.equal(r.result.runDir, path.join(logDir, file, r.config.name!, `prune_rate=${p}`, 'width_mult=0.125'));
      const e: Expect = { kind, config: r.config, runDir: r.result.runDir!, logDir, text: r.lines.join('\n'), checkpoints: ['initial', 'epoch_1', 'last', 'model_best'] };
      // the last epoch's file is kept, whether or not it was a new best (quirk 22 fixed)
      await checkRun(e);
      runs.push({ e, configAsGiven: `${file}.yaml` });
      if (kind === 'dense') {
        assert.equal(r.result.totalSparsity, undefined);
        assert.equal(fs.existsSync(path.join(logDir, 'layerwise_sparsity', 'baseline.json')), false);
      }
    });
  }

  test('plain progress pads the batch index to the digits of the batch count (§11.4)', async () => {
    const out = path.join(root, 'progress-runs');
    const r = await runInProcess(['--config', 'tiny-dense.yaml', '--log-dir', out, '--batch-size', '2', '--print-freq', '5', '--epochs', '1', '--progress', 'plain'], root);
    const prefixes = r.lines.filter((l) => /^(Epoch|Test): /.test(l)).map((l) => l.split('\t')[0]);
    assert.deepEqual(prefixes, [
      'Epoch: [0][ 0/16]',
      'Epoch: [0][ 5/16]',
      'Epoch: [0][10/16]',
      'Epoch: [0][15/16]',
      'Test: [0/8]',
      'Test: [5/8]',
      'Test: [8/8]',
    ]);
    fs.rmSync(out, { recursive: true, force: true });
  });

  test('results.csv: the reference header and one row per run, in order', async () => {
    assert.equal(runs.length, 5, 'every run above finished');
    const { rows } = readResults(path.join(logDir, 'results.csv'));
    assert.equal(rows.length, runs.length);
    for (const [k, row] of rows.entries()) await checkResultRow(row, runs[k].e, runs[k].configAsGiven);
    // nothing stray beside the run folders, the CSV and the JSON folders
    const top = fs.readdirSync(logDir).sort();
    assert.deepEqual(top, ['layerwise_sparsity', 'layerwise_threshold', 'results.csv', 'tiny-dense', 'tiny-dnw', 'tiny-gmp', 'tiny-str']);
    assert.deepEqual(listFiles(path.join(logDir, 'layerwise_sparsity')), ['DNW.json', 'GMP.json', 'STR.json']);
    assert.ok(listFiles(logDir).every((f) => !path.basename(f).startsWith('.')), 'no temp files left');
  });
});
