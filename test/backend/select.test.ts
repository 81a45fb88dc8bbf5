// --backend selection: one log line, clear one-line errors, idempotence, no tfjs banner, and a
// process that exits on its own with the threaded wasm build.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';
import * as tf from '../../src/tf.js';
import { describeBackend, initBackend } from '../../src/backend/select.js';
import { UserError } from '../../src/util/errors.js';

// the tree this test runs from: the sources (tsx) or the compiled dist/
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
const require = createRequire(import.meta.url);

function installed(pkg: string): boolean {
  try {
    require.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}
const tfjsNodeInstalled = installed('@tensorflow/tfjs-node') || installed('@tensorflow/tfjs-node-gpu');

test('--backend tensorflow without tfjs-node(-gpu) is a one-line UserError', { skip: tfjsNodeInstalled && 'tfjs-node is installed here' }, async () => {
  const lines: string[] = [];
  await assert.rejects(initBackend('tensorflow', (l) => lines.push(l)), (e: unknown) => {
    assert.ok(e instanceof UserError);
    assert.equal(e.message, '--backend tensorflow: neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node could be '
      + 'loaded (not installed); install one, or use --backend wasm');
    assert.ok(!e.message.includes('\n'));
    return true;
  });
  assert.deepEqual(lines, []);
});

test('an unknown choice is a UserError naming --backend', async () => {
  await assert.rejects(initBackend('gpu' as never, () => {}), (e: unknown) =>
    e instanceof UserError && /^--backend: expected one of auto, tensorflow, webgpu, wasm, cpu, got 'gpu'$/.test(e.message));
});

test('auto picks wasm here and says why in exactly one line; calling again is fine', { skip: tfjsNodeInstalled && 'tfjs-node is installed here' }, async () => {
  for (let i = 0; i < 2; i++) {
    const lines: string[] = [];
    const r = await initBackend('auto', (l) => lines.push(l));
    assert.equal(r.name, 'wasm');
    assert.equal(tf.getBackend(), 'wasm');
    assert.equal(lines.length, 1);
    assert.match(lines[0], /^backend: wasm \(tfjs-node-gpu and tfjs-node not installed; webgpu: (no Vulkan loader \(libvulkan\.so\.1\)|Dawn found no GPU adapter|only a software adapter \([^)]*\)|the webgpu package: not installed); wasm is the fastest npm-only backend that can train; (threaded-simd|simd|plain), \d+ threads?/);
    assert.equal(lines[0], `backend: wasm (${r.reason})`);
  }
  assert.match(describeBackend(), /^wasm \((threaded-simd|simd|plain), \d+ thread\(s\), project training kernels; tfjs 4\.22\.0\)$/);
  const y = tf.tidy(() => tf.conv2d(tf.ones([1, 4, 4, 2]) as tf.Tensor4D, tf.ones([3, 3, 2, 1]) as tf.Tensor4D, 1, 1));
  assert.equal(y.dataSync()[5], 18); // interior pixel: 3*3*2 ones
  y.dispose();
});

test('cpu warns that it is slow; the tfjs "Hi, looks like..." banner never appears', async () => {
  const warned: string[] = [];
  const orig = console.warn;
  console.warn = (...a: unknown[]) => { warned.push(a.join(' ')); };
  try {
    const lines: string[] = [];
    const r = await initBackend('cpu', (l) => lines.push(l));
    assert.equal(r.name, 'cpu');
    assert.equal(lines.length, 1);
    assert.match(lines[0], /^backend: cpu \(.*very slow for training/);
    tf.tidy(() => tf.add(tf.tensor1d([1, 2]), 1).dataSync());
    assert.ok(!warned.some((w) => w.includes('Hi, looks like')), warned.join('\n'));
    await initBackend('wasm', () => {}); // switching back and forth is fine
    assert.equal(tf.getBackend(), 'wasm');
  } finally {
    console.warn = orig;
  }
});

test('threaded wasm: the project kernels (shared-memory build) match cpu, and the process exits by itself', () => {
  const script = `
    import { initBackend } from './src/backend/select.${ext}';
    import * as tf from './src/tf.${ext}';
    const r = await initBackend('wasm', (l) => console.log(l), { threads: 2 });
    const y = tf.tidy(() => tf.conv2d(tf.ones([2, 16, 16, 8]), tf.ones([3, 3, 8, 8]), 1, 1).sum());
    console.log('sum', y.dataSync()[0]);
    const grads = () => tf.tidy(() => {
      const x = tf.randomNormal([2, 9, 9, 8], 0, 1, 'float32', 1), w = tf.randomNormal([3, 3, 8, 6], 0, 1, 'float32', 2);
      const wd = tf.randomNormal([3, 3, 8, 1], 0, 1, 'float32', 3);
      const g = tf.grads((a, b, c) => tf.sum(tf.square(tf.conv2d(tf.depthwiseConv2d(a, c, 2, 1), b, 1, 1))))([x, w, wd]);
      return tf.concat(g.map((t) => t.flatten())).dataSync();
    });
    const a = grads();
    await tf.setBackend('cpu');
    const b = grads();
    let d = 0, m = 0;
    for (let i = 0; i < a.length; i++) { d = Math.max(d, Math.abs(a[i] - b[i])); m = Math.max(m, Math.abs(b[i])); }
    console.log('relerr', d / m);
  `;
  const res = spawnSync(process.execPath, [...(ext === 'ts' ? ['--import', 'tsx'] : []), '--input-type=module', '-e', script],
    { cwd: root, encoding: 'utf8', timeout: 60_000 });
  assert.equal(res.error, undefined, String(res.error));
  assert.equal(res.status, 0, res.stderr);
  assert.match(res.stdout, /^backend: wasm \(as requested; (threaded-simd, 2 threads|simd, 1 thread; threaded wasm unavailable: .*)\)$/m);
  // 2 * (4 corners * 4 + 14*4 edges * 6 + 14*14 * 9) * 8 channels * 8 filters
  assert.match(res.stdout, new RegExp(`sum ${2 * (4 * 4 + 56 * 6 + 196 * 9) * 64}\\b`));
  const relerr = Number(/relerr (\S+)/.exec(res.stdout)?.[1]);
  assert.ok(relerr < 1e-5, `relative error ${relerr}`);
});
