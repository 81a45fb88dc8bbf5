/**
 * Issue 12 item 5: --evaluate needs only the validation split. A user evaluating a downloaded
 * checkpoint has `<data>/val` and no `<data>/train`: the run evaluates, with the number of
 * classes taken from the val folders, and gives the same numbers as with both splits present;
 * a missing val split is still a one-line error.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { useBackend } from '../helpers/tf.js';
import { runTraining } from '../../src/train/run.js';
import { writeSyntheticImageFolder } from '../../src/data/synthetic.js';
import { saveCheckpoint } from '../../src/train/checkpoint.js';
import { runCli } from '../helpers/run.js';
import { buildModel, configOf, randomizeState, tmpDir, META } from './helpers.js';

const dir = tmpDir('evaluate-val-only');
const full = path.join(dir, 'full');
const valOnly = path.join(dir, 'val-only');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

// no --num-classes: it must come from the val folders (7, not the 1000 of a run without data)
const SMALL = ['--arch', 'ResNet18', '--width-mult', '0.125', '--conv-type', 'STRConv'];
let ckpt: string;

before(async () => {
  await useBackend('cpu');
  await writeSyntheticImageFolder({ out: full, classes: 7, perClass: 1, valPerClass: 2, size: [40, 40], seed: 5, log: () => {} });
  fs.mkdirSync(valOnly);
  fs.cpSync(path.join(full, 'val'), path.join(valOnly, 'val'), { recursive: true });
  const { model, config } = buildModel([...SMALL, '--num-classes', '7', '--seed', '3']);
  randomizeState(model, 'evaluate-val-only');
  ckpt = path.join(dir, 'str.safetensors');
  await saveCheckpoint(ckpt, { model, meta: { ...META, arch: 'ResNet18' }, config });
  model.dispose();
});

const evalArgs = (data: string) => [
  ...SMALL, '--pretrained', ckpt, '--evaluate', '--data', data, '--set', 'ImageFolder', '--image-size', '32',
  '--batch-size', '4', '--workers', '0', '--log-dir', path.join(dir, 'runs'), '--progress', 'none',
];

async function evaluate(data: string): Promise<string[]> {
  const lines: string[] = [];
  await runTraining({ config: configOf(evalArgs(data)), log: (l) => lines.push(...l.split('\n')) });
  return lines;
}

describe('--evaluate with the val split only', () => {
  test('no <data>/train: evaluates the checkpoint (classes from val/), the same numbers as with both splits', async () => {
    assert.equal(fs.existsSync(path.join(valOnly, 'train')), false);
    const only = await evaluate(valOnly);
    assert.ok(only.some((l) => /^=> data: 14 val images in 7 classes from .*val-only, val split only/.test(l)), only.join('\n'));
    assert.ok(only.some((l) => l.startsWith('=> ResNet18 (STRConv, 7 classes)')), only.join('\n'));
    const line = only.find((l) => l.startsWith('=> evaluation: '));
    assert.match(line ?? '', /^=> evaluation: top-1 \d+\.\d\d {2}top-5 \d+\.\d\d {2}loss \d+\.\d{4}$/);
    const both = await evaluate(full);
    assert.equal(both.find((l) => l.startsWith('=> evaluation: ')), line, 'train/ present or not, the evaluation is the same');
  });

  test('no val split: a one-line error naming it, exit 2, nothing evaluated', () => {
    const empty = path.join(dir, 'train-only');
    fs.mkdirSync(empty);
    fs.cpSync(path.join(full, 'train'), path.join(empty, 'train'), { recursive: true });
    const r = runCli([...evalArgs(empty), '--backend', 'cpu'], dir);
    assert.equal(r.code, 2, r.stderr);
    // the backend notice, then the error as one line
    const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('backend: '));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /^str-train: val split \(--data .*train-only --set ImageFolder\): folder .*train-only\/val does not exist/);
    assert.doesNotMatch(r.stdout, /evaluation:/);
  });
});
