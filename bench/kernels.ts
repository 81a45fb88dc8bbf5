// Per-kernel convolution timings on the active training backend: forward vs backprop-input vs
// backprop-filter for the distinct conv layer shapes of ResNet18 (32 px, batch 32, ImageNet stem),
// ResNet50, ResNet18 and MobileNetV1 (224 px, batch 16).
//   node --import tsx bench/kernels.ts [--quick] [--backend wasm|cpu|tensorflow|auto] [--json FILE]
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import * as tf from '../src/tf.js';
import { describeBackend, initBackend, type BackendChoice } from '../src/backend/select.js';

export interface LayerShape {
  model: string;
  layer: string;
  kind: 'dense' | 'depthwise';
  N: number; H: number; CI: number; CO: number; K: number; S: number; P: number;
  /** number of such layers in the model (for the per-model total) */
  count: number;
}

export interface KernelTiming extends LayerShape {
  OH: number;
  gmac: number;
  fwdMs: number; bwdInputMs: number; bwdFilterMs: number;
  fwdGmacs: number; bwdInputGmacs: number; bwdFilterGmacs: number;
}

const L = (model: string, layer: string, kind: 'dense' | 'depthwise', N: number, H: number, CI: number, CO: number,
  K: number, S: number, count = 1): LayerShape => ({ model, layer, kind, N, H, CI, CO, K, S, P: (K - 1) >> 1, count });

/** Distinct conv shapes (with multiplicities) per model; quick mode keeps the heaviest few. */
export function layerShapes(quick: boolean): LayerShape[] {
  const r18s = 'ResNet18@32px b32';
  const r18 = 'ResNet18@224 b16';
  const r50 = 'ResNet50@224 b16';
  const mb = 'MobileNetV1@224 b16';
  const all: LayerShape[] = [
    L(r18s, 'conv1 7x7/2', 'dense', 32, 32, 3, 64, 7, 2),
    L(r18s, 'layer1 3x3', 'dense', 32, 8, 64, 64, 3, 1, 4),
    L(r18s, 'layer2 3x3/2', 'dense', 32, 8, 64, 128, 3, 2),
    L(r18s, 'layer2 3x3', 'dense', 32, 4, 128, 128, 3, 1, 3),
    L(r18s, 'layer2 down 1x1/2', 'dense', 32, 8, 64, 128, 1, 2),
    L(r18s, 'layer3 3x3/2', 'dense', 32, 4, 128, 256, 3, 2),
    L(r18s, 'layer3 3x3', 'dense', 32, 2, 256, 256, 3, 1, 3),
    L(r18s, 'layer3 down 1x1/2', 'dense', 32, 4, 128, 256, 1, 2),
    L(r18s, 'layer4 3x3/2', 'dense', 32, 2, 256, 512, 3, 2),
    L(r18s, 'layer4 3x3', 'dense', 32, 1, 512, 512, 3, 1, 3),
    L(r18s, 'layer4 down 1x1/2', 'dense', 32, 2, 256, 512, 1, 2),
    L(r18, 'conv1 7x7/2', 'dense', 16, 224, 3, 64, 7, 2),
    L(r18, 'layer1 3x3', 'dense', 16, 56, 64, 64, 3, 1, 4),
    L(r18, 'layer2 3x3/2', 'dense', 16, 56, 64, 128, 3, 2),
    L(r18, 'layer2 3x3', 'dense', 16, 28, 128, 128, 3, 1, 3),
    L(r18, 'layer2 down 1x1/2', 'dense', 16, 56, 64, 128, 1, 2),
    L(r18, 'layer3 3x3/2', 'dense', 16, 28, 128, 256, 3, 2),
    L(r18, 'layer3 3x3', 'dense', 16, 14, 256, 256, 3, 1, 3),
    L(r18, 'layer3 down 1x1/2', 'dense', 16, 28, 128, 256, 1, 2),
    L(r18, 'layer4 3x3/2', 'dense', 16, 14, 256, 512, 3, 2),
    L(r18, 'layer4 3x3', 'dense', 16, 7, 512, 512, 3, 1, 3),
    L(r18, 'layer4 down 1x1/2', 'dense', 16, 14, 256, 512, 1, 2),
    L(r50, 'conv1 7x7/2', 'dense', 16, 224, 3, 64, 7, 2),
    L(r50, 'layer1 1x1 64->64', 'dense', 16, 56, 64, 64, 1, 1),
    L(r50, 'layer1 1x1 256->64', 'dense', 16, 56, 256, 64, 1, 1, 2),
    L(r50, 'layer1 3x3', 'dense', 16, 56, 64, 64, 3, 1, 3),
    L(r50, 'layer1 1x1 64->256', 'dense', 16, 56, 64, 256, 1, 1, 4),
    L(r50, 'layer2 1x1 256->128', 'dense', 16, 56, 256, 128, 1, 1),
    L(r50, 'layer2 3x3/2', 'dense', 16, 56, 128, 128, 3, 2),
    L(r50, 'layer2 down 1x1/2', 'dense', 16, 56, 256, 512, 1, 2),
    L(r50, 'layer2 3x3', 'dense', 16, 28, 128, 128, 3, 1, 3),
    L(r50, 'layer2 1x1 128->512', 'dense', 16, 28, 128, 512, 1, 1, 4),
    L(r50, 'layer2 1x1 512->128', 'dense', 16, 28, 512, 128, 1, 1, 3),
    L(r50, 'layer3 1x1 512->256', 'dense', 16, 28, 512, 256, 1, 1),
    L(r50, 'layer3 3x3/2', 'dense', 16, 28, 256, 256, 3, 2),
    L(r50, 'layer3 down 1x1/2', 'dense', 16, 28, 512, 1024, 1, 2),
    L(r50, 'layer3 3x3', 'dense', 16, 14, 256, 256, 3, 1, 5),
    L(r50, 'layer3 1x1 256->1024', 'dense', 16, 14, 256, 1024, 1, 1, 6),
    L(r50, 'layer3 1x1 1024->256', 'dense', 16, 14, 1024, 256, 1, 1, 5),
    L(r50, 'layer4 1x1 1024->512', 'dense', 16, 14, 1024, 512, 1, 1),
    L(r50, 'layer4 3x3/2', 'dense', 16, 14, 512, 512, 3, 2),
    L(r50, 'layer4 down 1x1/2', 'dense', 16, 14, 1024, 2048, 1, 2),
    L(r50, 'layer4 3x3', 'dense', 16, 7, 512, 512, 3, 1, 2),
    L(r50, 'layer4 1x1 512->2048', 'dense', 16, 7, 512, 2048, 1, 1, 3),
    L(r50, 'layer4 1x1 2048->512', 'dense', 16, 7, 2048, 512, 1, 1, 2),
    L(mb, 'model.0 3x3/2', 'dense', 16, 224, 3, 32, 3, 2),
    L(mb, 'dw 32 @112', 'depthwise', 16, 112, 32, 32, 3, 1),
    L(mb, 'pw 32->64 @112', 'dense', 16, 112, 32, 64, 1, 1),
    L(mb, 'dw/2 64 @112', 'depthwise', 16, 112, 64, 64, 3, 2),
    L(mb, 'pw 64->128 @56', 'dense', 16, 56, 64, 128, 1, 1),
    L(mb, 'dw 128 @56', 'depthwise', 16, 56, 128, 128, 3, 1),
    L(mb, 'pw 128->128 @56', 'dense', 16, 56, 128, 128, 1, 1),
    L(mb, 'dw/2 128 @56', 'depthwise', 16, 56, 128, 128, 3, 2),
    L(mb, 'pw 128->256 @28', 'dense', 16, 28, 128, 256, 1, 1),
    L(mb, 'dw 256 @28', 'depthwise', 16, 28, 256, 256, 3, 1),
    L(mb, 'pw 256->256 @28', 'dense', 16, 28, 256, 256, 1, 1),
    L(mb, 'dw/2 256 @28', 'depthwise', 16, 28, 256, 256, 3, 2),
    L(mb, 'pw 256->512 @14', 'dense', 16, 14, 256, 512, 1, 1),
    L(mb, 'dw 512 @14', 'depthwise', 16, 14, 512, 512, 3, 1, 5),
    L(mb, 'pw 512->512 @14', 'dense', 16, 14, 512, 512, 1, 1, 5),
    L(mb, 'dw/2 512 @14', 'depthwise', 16, 14, 512, 512, 3, 2),
    L(mb, 'pw 512->1024 @7', 'dense', 16, 7, 512, 1024, 1, 1),
    L(mb, 'dw 1024 @7', 'depthwise', 16, 7, 1024, 1024, 3, 1),
    L(mb, 'pw 1024->1024 @7', 'dense', 16, 7, 1024, 1024, 1, 1),
  ];
  if (!quick) return all;
  const keep = new Set(['conv1 7x7/2', 'layer1 3x3', 'layer2 3x3/2', 'layer3 3x3', 'layer2 down 1x1/2',
    'layer1 1x1 64->256', 'layer4 1x1 2048->512', 'dw 32 @112', 'dw/2 64 @112', 'pw 32->64 @112', 'dw 512 @14',
    'pw 512->512 @14']);
  return all.filter((l) => keep.has(l.layer) && (l.model !== 'ResNet18@224 b16'));
}

/** Best-of-N wall time: this machine's timings are noisy (shared host), the minimum is the stable statistic. */
function timeMs(f: () => tf.Tensor, minMs: number, maxReps: number): number {
  tf.dispose(f()); // warm-up (XNNPACK operator creation, memory growth)
  const times: number[] = [];
  const start = performance.now();
  while (times.length < maxReps && (times.length < 2 || performance.now() - start < minMs)) {
    const t0 = performance.now();
    const r = f();
    r.dataSync();
    times.push(performance.now() - t0);
    r.dispose();
  }
  return Math.min(...times);
}

function benchLayer(l: LayerShape, minMs: number, maxReps: number): KernelTiming {
  const { N, H, CI, CO, K, S, P } = l;
  const OH = Math.floor((H + 2 * P - K) / S) + 1;
  const dw = l.kind === 'depthwise';
  const x = tf.randomNormal([N, H, H, CI], 0, 1, 'float32', 1) as tf.Tensor4D;
  const w = tf.randomNormal(dw ? [K, K, CI, 1] : [K, K, CI, CO], 0, 0.1, 'float32', 2) as tf.Tensor4D;
  const dy = tf.randomNormal([N, OH, OH, CO], 0, 1, 'float32', 3) as tf.Tensor4D;
  const gmac = (N * OH * OH * K * K * CI * (dw ? 1 : CO)) / 1e9;
  const attrs = { strides: [S, S], pad: P, dataFormat: 'NHWC', dimRoundingMode: undefined, dilations: [1, 1] };
  const engine = tf.engine();
  const run = (name: string, inputs: Record<string, tf.Tensor>, extra: Record<string, unknown>) =>
    () => engine.runKernel(name, inputs as never, { ...attrs, ...extra } as never) as tf.Tensor;
  try {
    // a fresh copy of the weights each time, as in training (XNNPACK packs every new filter)
    const fwdMs = timeMs(() => tf.tidy(() => engine.runKernel(dw ? tf.DepthwiseConv2dNative : tf.Conv2D,
      { x, filter: tf.clone(w) } as never, attrs as never) as tf.Tensor), minMs, maxReps);
    const bwdInputMs = timeMs(run(dw ? tf.DepthwiseConv2dNativeBackpropInput : tf.Conv2DBackpropInput, { dy, filter: w },
      { inputShape: x.shape }), minMs, maxReps);
    const bwdFilterMs = timeMs(run(dw ? tf.DepthwiseConv2dNativeBackpropFilter : tf.Conv2DBackpropFilter, { x, dy },
      { filterShape: w.shape }), minMs, maxReps);
    const g = (ms: number) => +(gmac / (ms / 1000)).toFixed(2);
    return { ...l, OH, gmac: +gmac.toFixed(4), fwdMs: +fwdMs.toFixed(2), bwdInputMs: +bwdInputMs.toFixed(2),
      bwdFilterMs: +bwdFilterMs.toFixed(2), fwdGmacs: g(fwdMs), bwdInputGmacs: g(bwdInputMs), bwdFilterGmacs: g(bwdFilterMs) };
  } finally {
    tf.dispose([x, w, dy]);
  }
}

export interface KernelBenchResult {
  backend: string;
  quick: boolean;
  layers: KernelTiming[];
  /** per model: summed ms over all its conv layers (with multiplicity), and bwd/fwd ratios */
  models: Array<{ model: string; fwdMs: number; bwdInputMs: number; bwdFilterMs: number; bwdOverFwd: number }>;
}

export async function benchKernels(opts: { quick: boolean; backend?: BackendChoice; log?: (line: string) => void }): Promise<KernelBenchResult> {
  const log = opts.log ?? (() => {});
  await initBackend(opts.backend ?? 'wasm', log);
  const minMs = opts.quick ? 150 : 600;
  const maxReps = opts.quick ? 3 : 10;
  const layers: KernelTiming[] = [];
  for (const l of layerShapes(opts.quick)) {
    const t = benchLayer(l, minMs, maxReps);
    layers.push(t);
    log(`${t.model.padEnd(20)} ${t.layer.padEnd(22)} ${t.gmac.toFixed(3).padStart(7)} GMAC  fwd ${t.fwdMs.toFixed(1).padStart(7)} ms`
      + ` (${t.fwdGmacs.toFixed(1).padStart(5)} GMAC/s)  bwd-in ${t.bwdInputMs.toFixed(1).padStart(7)} ms (${(t.bwdInputMs / t.fwdMs).toFixed(2)}x)`
      + `  bwd-filter ${t.bwdFilterMs.toFixed(1).padStart(7)} ms (${(t.bwdFilterMs / t.fwdMs).toFixed(2)}x)`);
  }
  const models = [...new Set(layers.map((l) => l.model))].map((model) => {
    const ls = layers.filter((l) => l.model === model);
    const sum = (k: 'fwdMs' | 'bwdInputMs' | 'bwdFilterMs') => +ls.reduce((a, l) => a + l[k] * l.count, 0).toFixed(1);
    const fwdMs = sum('fwdMs'), bwdInputMs = sum('bwdInputMs'), bwdFilterMs = sum('bwdFilterMs');
    return { model, fwdMs, bwdInputMs, bwdFilterMs, bwdOverFwd: +((bwdInputMs + bwdFilterMs) / fwdMs).toFixed(2) };
  });
  for (const m of models) {
    log(`${m.model}${opts.quick ? ' (quick subset)' : ''}: conv fwd ${m.fwdMs} ms, bwd-input ${m.bwdInputMs} ms, bwd-filter ${m.bwdFilterMs} ms, (bwd-in + bwd-filter)/fwd = ${m.bwdOverFwd}`);
  }
  return { backend: describeBackend(), quick: opts.quick, layers, models };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const bi = args.indexOf('--backend');
  const ji = args.indexOf('--json');
  const backend = (bi >= 0 ? args[bi + 1] : 'wasm') as BackendChoice;
  const result = await benchKernels({ quick, backend, log: (l) => console.log(l) });
  console.log(result.backend);
  if (ji >= 0) writeFileSync(args[ji + 1], JSON.stringify(result, null, 2));
}
