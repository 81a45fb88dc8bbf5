/**
 * `export --format tfjs`: the files load with TensorFlow.js alone (the loading path below uses
 * only '@tensorflow/tfjs' and node:fs) and give str-train's logits within 1e-4 relative, for
 * ResNet18 (small stem), ResNet50 and MobileNetV1 with STR/DNW sparsity; quantised weights load
 * through tfjs' own dequantisation.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tfjs from '@tensorflow/tfjs';
import { useBackend, relErr } from '../helpers/tf.js';
import { saveCheckpoint } from '../../src/train/checkpoint.js';
import { exportCheckpoint } from '../../src/cli/export.js';
import { float16Bits, quantizeUint8 } from '../../src/export/tfjs-files.js';
import { buildModel, randomizeState, logitsOf, META, tmpDir } from '../interop/helpers.js';
import type { HostTensor } from '../../src/io/host-tensor.js';
import seedrandom from 'seedrandom';
import { runCli } from '../helpers/run.js';

const dir = tmpDir('tfjs-export');
after(() => fs.rmSync(dir, { recursive: true, force: true }));
before(async () => {
  await useBackend('cpu');
});

/** tf.loadLayersModel through an IOHandler that reads the files: TensorFlow.js only. */
async function loadWithTfjs(modelDir: string): Promise<tfjs.LayersModel> {
  const json = JSON.parse(fs.readFileSync(path.join(modelDir, 'model.json'), 'utf8'));
  const handler: tfjs.io.IOHandler = {
    load: async () => {
      const specs = json.weightsManifest.flatMap((g: { weights: tfjs.io.WeightsManifestEntry[] }) => g.weights);
      const bufs = json.weightsManifest.flatMap((g: { paths: string[] }) => g.paths.map((p) => fs.readFileSync(path.join(modelDir, p))));
      const all = Buffer.concat(bufs);
      return { modelTopology: json.modelTopology, weightSpecs: specs, weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) };
    },
  };
  return tfjs.loadLayersModel(handler);
}

function randomNchw(n: number, size: number, seed: string): HostTensor {
  const rng = seedrandom(seed);
  const data = new Float32Array(n * 3 * size * size);
  for (let i = 0; i < data.length; i++) data[i] = 2 * rng() - 1;
  return { dtype: 'float32', shape: [n, 3, size, size], data };
}

function tfjsLogits(m: tfjs.LayersModel, x: HostTensor): Float32Array {
  const out = tfjs.tidy(() => m.predict(tfjs.transpose(tfjs.tensor(x.data as Float32Array, x.shape), [0, 2, 3, 1])) as tfjs.Tensor);
  const v = Float32Array.from(out.dataSync());
  out.dispose();
  return v;
}

const CASES = [
  { name: 'STR ResNet18, small stem', argv: ['--arch', 'ResNet18', '--conv-type', 'STRConv', '--stem', 'small', '--width-mult', '0.25'], size: 17 },
  { name: 'STR ResNet18, ImageNet stem, first/last layer dense', argv: ['--arch', 'ResNet18', '--conv-type', 'STRConv', '--width-mult', '0.125', '--first-layer-dense', '--last-layer-dense'], size: 33 },
  { name: 'DNW ResNet50 at 80 %', argv: ['--arch', 'ResNet50', '--conv-type', 'DNWConv', '--prune-rate', '0.8', '--width-mult', '0.125'], size: 32 },
  { name: 'STR MobileNetV1', argv: ['--arch', 'MobileNetV1', '--conv-type', 'STRConv', '--width-mult', '0.25'], size: 30 },
];

for (const c of CASES) {
  describe(`export --format tfjs: ${c.name}`, () => {
    const base = path.join(dir, c.name.replace(/\W+/g, '_'));
    const x = randomNchw(3, c.size, c.name);
    let want: Float32Array;
    before(async () => {
      const { model, config } = buildModel([...c.argv, '--num-classes', '10', '--seed', '2']);
      randomizeState(model, c.name);
      want = logitsOf(model, x);
      await saveCheckpoint(`${base}.safetensors`, { model, meta: { ...META, arch: model.arch }, config });
      model.dispose();
    });

    test('float32: tfjs alone gives str-train\'s logits within 1e-4 relative', async (t) => {
      const r = await exportCheckpoint({ checkpoint: `${base}.safetensors`, format: 'tfjs', out: `${base}_tfjs`, log: () => {} });
      assert.equal(r.out, `${base}_tfjs`);
      const before = tfjs.memory().numTensors;
      const m = await loadWithTfjs(`${base}_tfjs`);
      const got = tfjsLogits(m, x);
      m.dispose();
      assert.equal(tfjs.memory().numTensors, before, 'no tensors left behind');
      const err = relErr(got, want);
      t.diagnostic(`float32 relative error ${err.toExponential(2)}, logit scale ${Math.max(...want.map(Math.abs)).toFixed(3)}`);
      assert.ok(err <= 1e-4, `relative error ${err}`);
    });

    test('float16 and uint8 weights load through tfjs\' dequantisation; logits close', async (t) => {
      for (const [q, tol] of [['float16', 2e-3], ['uint8', 0.1]] as const) {
        await exportCheckpoint({ checkpoint: `${base}.safetensors`, format: 'tfjs', out: `${base}_${q}`, quantize: q, log: () => {} });
        const json = JSON.parse(fs.readFileSync(path.join(`${base}_${q}`, 'model.json'), 'utf8'));
        const specs = json.weightsManifest[0].weights as tfjs.io.WeightsManifestEntry[];
        assert.ok(specs.some((s) => s.quantization?.dtype === q), `${q} entries`);
        assert.ok(specs.filter((s) => /moving_variance/.test(s.name)).every((s) => !s.quantization), 'BN statistics stay float32');
        const m = await loadWithTfjs(`${base}_${q}`);
        const got = tfjsLogits(m, x);
        m.dispose();
        const err = relErr(got, want);
        t.diagnostic(`${q} relative error ${err.toExponential(2)}`);
        assert.ok(err <= tol, `${q}: relative error ${err}`);
      }
    });
  });
}

test('float16Bits: exact halves, round to nearest even, subnormals, overflow', () => {
  assert.equal(float16Bits(1), 0x3c00);
  assert.equal(float16Bits(-2), 0xc000);
  assert.equal(float16Bits(0), 0);
  assert.equal(float16Bits(-0), 0x8000);
  assert.equal(float16Bits(65504), 0x7bff);
  assert.equal(float16Bits(1e6), 0x7c00);
  assert.equal(float16Bits(2 ** -24), 0x0001, 'smallest subnormal');
  assert.equal(float16Bits(1 + 2 ** -11), 0x3c00, 'tie → even (down)');
  assert.equal(float16Bits(1 + 3 * 2 ** -11), 0x3c02, 'tie → even (up)');
  assert.equal(float16Bits(0.1), 0x2e66);
});

test('quantizeUint8: zero maps to an integer exactly; error ≤ scale/2', () => {
  const w = Float32Array.from([-0.3, 0, 0, 0.11, 0.5, -0.02]);
  const { q, min, scale } = quantizeUint8(w);
  const back = Array.from(q, (v) => v * scale + min);
  assert.equal(back[1], 0);
  assert.equal(back[2], 0);
  for (let i = 0; i < w.length; i++) assert.ok(Math.abs(back[i] - w[i]) <= scale / 2 + 1e-9, `${i}`);
});

test('wrong flag combinations are one-line errors', async () => {
  const ck = path.join(dir, 'STR_ResNet18_small_stem.safetensors');
  await assert.rejects(exportCheckpoint({ checkpoint: ck, format: 'tfjs', dense: true, log: () => {} }), /--format tfjs --dense: a TF\.js model always holds the effective/);
  await assert.rejects(exportCheckpoint({ checkpoint: ck, format: 'tfjs', quantize: 'int4' as never, log: () => {} }), /--quantize int4: expected uint8 or float16/);
  await assert.rejects(exportCheckpoint({ checkpoint: ck, format: 'pth', quantize: 'uint8', out: path.join(dir, 'q.pth'), log: () => {} }), /--quantize: only for --format tfjs/);
});

test('CLI: export --format tfjs --quantize and --format sparse print what they wrote', () => {
  const ck = path.join(dir, 'STR_ResNet18_small_stem.safetensors');
  const t = runCli(['export', '--checkpoint', ck, '--format', 'tfjs', '--quantize', 'uint8', '--out', path.join(dir, 'cli_tfjs')], dir);
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stdout, /^=> wrote .*cli_tfjs\/ \(tfjs layers model, ResNet18, weights uint8: \d+\.\d\d MB; input NHWC float32 normalised with the ImageNet mean\/std, output logits\)\n$/);
  assert.ok(fs.existsSync(path.join(dir, 'cli_tfjs', 'model.json')) && fs.existsSync(path.join(dir, 'cli_tfjs', 'weights.bin')));
  const s = runCli(['export', '--checkpoint', ck, '--format', 'sparse'], dir);
  assert.equal(s.code, 0, s.stderr);
  assert.match(s.stdout, /^=> wrote .*STR_ResNet18_small_stem\.sparse\.safetensors \(sparse, ResNet18, \d+\.\d\d MB: [\d,]+ non-zero conv weights, \d+ tensors as values \+ mask; the weights as dense float32: \d+\.\d\d MB\)\n$/);
  const bad = runCli(['export', '--checkpoint', ck, '--format', 'tfjs', '--quantize', 'int8'], dir);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, 'str-train: export --quantize int8: expected uint8 or float16\n');
});
