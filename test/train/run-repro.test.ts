/**
 * Seeded runs are reproducible on the cpu backend (issue 3, item 5): the same --seed gives the
 * same initial weights, batch order, augmentation and hence bit-identical losses; another seed
 * does not. Tiny on purpose (8 px, 4 steps + 2 validation batches per run): the cpu backend is
 * pure JavaScript.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { useBackend } from '../helpers/tf.js';
import { epochLines, readTensorboard, runInProcess, series, tinyConfig, tinyDataset, tmpDir, writeYaml } from '../helpers/run.js';

describe('reproducibility (cpu backend)', () => {
  let root: string;
  let logDir: string;

  before(async () => {
    root = tmpDir('run-repro');
    const data = await tinyDataset(root);
    logDir = path.join(root, 'runs');
    writeYaml(
      path.join(root, 'repro.yaml'),
      tinyConfig(data, { name: 'STR', conv_type: 'STRConv', sInit_value: -4, image_size: 8, epochs: 1, print_freq: 1, backend: 'cpu' }),
    );
    await useBackend('cpu');
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  async function run(seed: number) {
    const r = await runInProcess(['--config', 'repro.yaml', '--log-dir', logDir, '--seed', String(seed)], root);
    const tb = readTensorboard(r.result.runDir!);
    const at = (tag: string) => series(tb, tag).map((p) => [p.step, p.value]);
    return {
      losses: at('train/Loss_val'),
      acc: at('train/Acc@1_val'),
      val: at('test/Loss_avg'),
      sparsity: at('sparsity/total'),
      printed: [...epochLines(r.lines.join('\n')).values()],
      ms: r.ms,
    };
  }

  test('same seed ⇒ identical losses; another seed ⇒ different ones', async () => {
    const a = await run(7);
    const b = await run(7);
    const c = await run(8);
    assert.equal(a.losses.length, 4, 'every step logged (print_freq 1)');
    assert.deepEqual(b.losses, a.losses, 'train/Loss_val per step');
    assert.deepEqual(b.acc, a.acc);
    assert.deepEqual(b.val, a.val, 'validation loss');
    assert.deepEqual(b.sparsity, a.sparsity);
    assert.deepEqual(b.printed, a.printed, 'printed epoch line');
    // a different seed changes the initial weights and the batch order from the first step on
    assert.notEqual(c.losses[0][1], a.losses[0][1]);
    assert.ok(c.losses.every(([, v], i) => v !== a.losses[i][1]), 'every step differs');
    assert.notDeepEqual(c.val, a.val);
  });
});
