/**
 * The exported TF.js model in a real browser: exports CHECKPOINT with `--format tfjs`, serves it
 * with @tensorflow/tfjs' own browser bundle (dist/tf.min.js) to headless Chromium, which runs
 * tf.loadLayersModel('model.json') and predicts a fixed random input; the logits are compared
 * with str-train's in Node. Not part of the test suite (needs a browser):
 *
 *   apt-get install chromium
 *   node --import tsx bench/tfjs-browser-check.ts --checkpoint X [--size 28] [--chromium /usr/bin/chromium]
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '../src/tf.js';
import { initBackend } from '../src/backend/select.js';
import { exportCheckpoint } from '../src/cli/export.js';
import { readCheckpoint } from '../src/train/checkpoint.js';
import { modelFromCheckpoint } from '../src/report/checkpoint-model.js';

const args = process.argv.slice(2);
const flag = (name: string, d?: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : d;
};
const checkpoint = flag('--checkpoint');
if (!checkpoint) throw new Error('needs --checkpoint FILE');
const size = Number(flag('--size', '28'));
const chromium = flag('--chromium', '/usr/bin/chromium')!;

await initBackend('cpu', () => {});
const dir = mkdtempSync(path.join(tmpdir(), 'tfjs-browser-'));
await exportCheckpoint({ checkpoint, format: 'tfjs', out: path.join(dir, 'model'), log: () => {} });

const n = 2;
const input = Array.from({ length: n * size * size * 3 }, (_, i) => Math.sin(i * 0.37) * 1.5);
const { model } = modelFromCheckpoint(await readCheckpoint(checkpoint, '--checkpoint'));
model.eval();
const want = tf.tidy(() => model.forward(tf.tensor4d(input, [n, size, size, 3]))).dataSync();
model.dispose();

const tfBundle = path.join(path.dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs/package.json')), 'dist', 'tf.min.js');
writeFileSync(
  path.join(dir, 'index.html'),
  `<!doctype html><html><body><pre id="out">pending</pre>
<script src="tf.min.js"></script>
<script>
(async () => {
  try {
    await tf.setBackend('cpu');
    const m = await tf.loadLayersModel('model/model.json');
    const x = tf.tensor4d(${JSON.stringify(input)}, [${n}, ${size}, ${size}, 3]);
    const y = await m.predict(x).data();
    document.getElementById('out').textContent = 'RESULT ' + JSON.stringify(Array.from(y)) + ' END';
  } catch (e) {
    document.getElementById('out').textContent = 'ERROR ' + e.message + ' END';
  }
})();
</script></body></html>`,
);
const files: Record<string, string> = {
  '/index.html': path.join(dir, 'index.html'),
  '/tf.min.js': tfBundle,
  '/model/model.json': path.join(dir, 'model', 'model.json'),
  '/model/weights.bin': path.join(dir, 'model', 'weights.bin'),
};
const server = createServer((req, res) => {
  const f = files[req.url ?? ''];
  if (!f) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'content-type': f.endsWith('.html') ? 'text/html' : f.endsWith('.js') ? 'text/javascript' : 'application/octet-stream' });
  res.end(readFileSync(f));
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const port = (server.address() as { port: number }).port;
let dom: string;
try {
  // asynchronous: this process serves the files meanwhile
  const r = await promisify(execFile)(chromium, ['--headless', '--no-sandbox', '--disable-gpu', '--virtual-time-budget=60000', '--dump-dom', `http://127.0.0.1:${port}/index.html`], {
    encoding: 'utf8',
    timeout: 180_000,
    maxBuffer: 64 * 2 ** 20,
  });
  dom = r.stdout;
} finally {
  server.close();
}
rmSync(dir, { recursive: true, force: true });
const m = /(RESULT|ERROR) (.*) END/.exec(dom);
if (!m || m[1] === 'ERROR') throw new Error(`browser: ${m ? m[2] : dom.slice(0, 500)}`);
const got = JSON.parse(m[2]) as number[];
let d = 0;
let s = 0;
for (let i = 0; i < want.length; i++) {
  d = Math.max(d, Math.abs(got[i] - want[i]));
  s = Math.max(s, Math.abs(want[i]));
}
process.stdout.write(`headless Chromium (${execFileSync(chromium, ['--version'], { encoding: 'utf8' }).trim()}): ${got.length} logits, max relative difference to str-train ${(d / s).toExponential(2)}\n`);
if (d / s > 1e-4) process.exitCode = 1;
