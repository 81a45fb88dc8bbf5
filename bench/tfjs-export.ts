/**
 * TF.js export accuracy (issue 13 item 4): top-1 on a val split of `--evaluate` (str-train) and
 * of the exported TF.js model with float32, float16 and uint8 weights, loaded by
 * tf.loadLayersModel and fed the same val-transformed images.
 *
 *   node --import tsx bench/tfjs-export.ts --checkpoint RUN/checkpoints/model_best.safetensors \
 *     [--config configs/smallscale/fmnist-resnet18-str.yaml] [--json bench/results/tfjs-export.json]
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tfjs from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/select.js';
import { loadConfig } from '../src/config/load.js';
import { runTraining } from '../src/train/run.js';
import { createDatasets } from '../src/data/datasets.js';
import { exportCheckpoint } from '../src/cli/export.js';
import { defaultValResize } from '../src/data/transforms.js';

const args = process.argv.slice(2);
const flag = (name: string, d?: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : d;
};
const checkpoint = flag('--checkpoint');
if (!checkpoint) throw new Error('bench/tfjs-export.ts needs --checkpoint FILE');
const configFile = flag('--config', 'configs/smallscale/fmnist-resnet18-str.yaml')!;
const jsonOut = flag('--json');

await initBackend('wasm', () => {});
const tmp = mkdtempSync(path.join(tmpdir(), 'tfjs-export-'));
const { config } = loadConfig(['--config', configFile, '--pretrained', checkpoint, '--evaluate', '--log-dir', path.join(tmp, 'runs'), '--progress', 'none']);
const evaluated = await runTraining({ config, log: () => {} });
process.stdout.write(`--evaluate: top-1 ${evaluated.lastAcc1.toFixed(2)}\n`);

async function tfjsTop1(dir: string): Promise<{ top1: number; predictions: Int32Array }> {
  const json = JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const bin = readFileSync(path.join(dir, json.weightsManifest[0].paths[0]));
  const model = await tfjs.loadLayersModel(
    tfjs.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest[0].weights, weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength) }),
  );
  const ds = await createDatasets({
    data: config.data, set: config.set, batchSize: 100, workers: 2, seed: 0, imageSize: config.image_size,
    valResize: config.val_resize ?? defaultValResize(config.image_size), strictData: true, log: () => {},
  });
  const predictions = new Int32Array(ds.val.numSamples);
  let correct = 0;
  for await (const b of ds.val.epoch(0)) {
    const pred = tfjs.tidy(() => tfjs.argMax(model.predict(b.images) as tfjs.Tensor, 1));
    const p = pred.dataSync();
    const l = b.labels.dataSync();
    for (let i = 0; i < b.size; i++) {
      predictions[b.indices[i]] = p[i];
      if (p[i] === l[i]) correct++;
    }
    pred.dispose();
    b.images.dispose();
    b.labels.dispose();
  }
  await ds.train.close();
  await ds.val.close();
  model.dispose();
  return { top1: (100 * correct) / ds.val.numSamples, predictions };
}

const rows: Array<{ weights: string; sizeMB: number; top1: number; changed: number }> = [];
let reference: Int32Array | undefined;
for (const q of [undefined, 'float16', 'uint8'] as const) {
  const out = path.join(tmp, q ?? 'float32');
  await exportCheckpoint({ checkpoint, format: 'tfjs', out, quantize: q, log: () => {} });
  const { top1, predictions } = await tfjsTop1(out);
  reference ??= predictions;
  const changed = predictions.reduce((a, p, i) => a + (p !== reference![i] ? 1 : 0), 0);
  const sizeMB = +(readFileSync(path.join(out, 'weights.bin')).length / 1e6).toFixed(3);
  rows.push({ weights: q ?? 'float32', sizeMB, top1, changed });
  process.stdout.write(`${JSON.stringify(rows.at(-1))}\n`);
}
rmSync(tmp, { recursive: true, force: true });

const table = [
  `| model | weights.bin MB | val top-1 % | predictions changed vs float32 |`,
  '| --- | ---: | ---: | ---: |',
  `| str-train \`--evaluate\` | | ${evaluated.lastAcc1.toFixed(2)} | |`,
  ...rows.map((r) => `| TF.js ${r.weights} | ${r.sizeMB} | ${r.top1.toFixed(2)} | ${r.changed} |`),
].join('\n');
process.stdout.write(`${table}\n`);
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ checkpoint, config: configFile, evaluateTop1: evaluated.lastAcc1, rows, table }, null, 2) + '\n');
