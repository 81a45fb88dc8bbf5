import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { repoPath } from '../helpers/paths.js';

// The README's library example is examples/str-in-your-model.ts, verbatim but for the import.
const isTs = fileURLToPath(import.meta.url).endsWith('.ts');
const example = isTs ? repoPath('examples/str-in-your-model.ts') : repoPath('dist/examples/str-in-your-model.js');

test('the README shows examples/str-in-your-model.ts verbatim', () => {
  const readme = readFileSync(repoPath('README.md'), 'utf8');
  const code = readFileSync(repoPath('examples/str-in-your-model.ts'), 'utf8').replace("'../src/index.js'", "'str-train'");
  assert.ok(readme.includes('```ts\n' + code + '```'), 'README library example differs from examples/str-in-your-model.ts');
});

test('the library example trains an STRConv inside a plain tfjs model and reports its sparsity', () => {
  const out = execFileSync(process.execPath, [...(isTs ? ['--import', 'tsx'] : []), example], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const field = (k: string) => {
    const m = new RegExp(`${k}: ([\\d.e-]+)`).exec(out);
    assert.ok(m, `no ${k} in: ${out}`);
    return Number(m[1]);
  };
  assert.equal(field('numel'), 3 * 3 * 3 * 16);
  assert.ok(field('zeros') > 0, 'σ(−5) ≈ 0.0067 prunes the smallest default-init weights');
  assert.equal(field('sparsity'), (100 * field('zeros')) / field('numel'));
  assert.ok(field('threshold') > 1 / (1 + Math.exp(5)), 'weight decay moved s up from −5');
});

const sparseExample = isTs ? repoPath('examples/sparse-inference.ts') : repoPath('dist/examples/sparse-inference.js');

test('the README shows examples/sparse-inference.ts verbatim', () => {
  const readme = readFileSync(repoPath('README.md'), 'utf8');
  const code = readFileSync(repoPath('examples/sparse-inference.ts'), 'utf8').replace("'../src/index.js'", "'str-train'");
  assert.ok(readme.includes('```ts\n' + code + '```'), 'README sparse inference example differs from examples/sparse-inference.ts');
});

test('the sparse inference example runs sparse kernels with the plain forward\'s logits', () => {
  const out = execFileSync(process.execPath, [...(isTs ? ['--import', 'tsx'] : []), sparseExample], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const m = /(\d+) of (\d+) convs sparse/.exec(out);
  assert.ok(m && Number(m[1]) > 0, `no sparse layers in: ${out}`);
  const d = /max \|difference\|: ([\d.e-]+)/.exec(out);
  assert.ok(d && Number(d[1]) < 1e-3, `logits differ: ${out}`);
});
