/**
 * The training command's other modes and its error paths, through the CLI in a child process
 * (exit codes and one-line messages matter): --evaluate (STR-SPEC §13.5), --summary, and user
 * mistakes that must end with one line, a non-zero exit and nothing half-written under the log dir.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readCheckpoint } from '../../src/train/checkpoint.js';
import { useBackend } from '../helpers/tf.js';
import { listFiles, listTree, readResults, runCli, runFolderOf, runInProcess, tinyConfig, tinyDataset, tmpDir, writeYaml, RESNET18_LAYERS } from '../helpers/run.js';

/** A user mistake: exit 2, exactly one stderr line `str-train: …` (no stack trace), nothing on stdout but progress. */
function assertOneLineError(r: ReturnType<typeof runCli>, pattern: RegExp): void {
  assert.equal(r.code, 2, `exit code; stderr:\n${r.stderr}`);
  const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('backend: '));
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0], /^str-train: /);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

describe('str-train CLI: --evaluate, --summary, error paths', () => {
  let root: string;
  let data: string;
  let logDir: string;
  let trained: { runDir: string; last: string; settings: string };

  before(async () => {
    root = tmpDir('run-cli');
    data = await tinyDataset(root);
    logDir = path.join(root, 'runs');
    writeYaml(path.join(root, 'tiny.yaml'), tinyConfig(data, { name: 'STR', conv_type: 'STRConv', sInit_value: -4, epochs: 1 }));
    await useBackend('wasm');
    // one trained epoch to evaluate (in this process: quicker than a child)
    const r = await runInProcess(['--config', 'tiny.yaml', '--log-dir', logDir], root);
    const runDir = r.result.runDir!;
    trained = { runDir, last: path.join(runDir, 'checkpoints', 'last.safetensors'), settings: path.join(runDir, 'settings.yaml') };
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  test('--evaluate --resume: top-1/top-5 of the checkpoint, the sparsity summary, no checkpoint written', async () => {
    const ck = await readCheckpoint(trained.last);
    const before = new Map(listFiles(logDir).map((f) => [f, fs.readFileSync(path.join(logDir, f))]));
    const r = runCli(['--config', 'tiny.yaml', '--log-dir', logDir, '--evaluate', '--resume', trained.last], root);
    assert.equal(r.code, 0, r.stderr);
    // same weights, BN statistics and val data ⇒ the accuracy the training run measured
    const m = /^=> evaluation: top-1 (\S+) +top-5 (\S+) +loss (\S+)$/m.exec(r.stdout);
    assert.ok(m, r.stdout);
    assert.equal(m[1], ck.meta.curr_acc1!.toFixed(2));
    assert.equal(m[2], ck.meta.curr_acc5!.toFixed(2));
    // the sparsity summary: one row per layer and the total
    for (const l of RESNET18_LAYERS) assert.match(r.stdout, new RegExp(`^ *\\d+ +${l.replace(/\./g, '\\.')} +STRConv `, 'm'));
    assert.match(r.stdout, /^ +total +[\d,]+ +[\d,]+ +\d+\.\d\d /m);
    assert.match(r.stdout, /^non-zero conv\/fc weights: .*sparsity \d+\.\d\d %$/m);
    // a fresh run folder with settings only (§13.5, quirk 28); the trained run is untouched
    const evalDir = runFolderOf(r.stdout);
    assert.notEqual(path.resolve(evalDir), path.resolve(trained.runDir), '--evaluate does not write into the resumed run');
    assert.deepEqual(listFiles(evalDir), ['settings.yaml']);
    for (const [f, bytes] of before) assert.ok(fs.readFileSync(path.join(logDir, f)).equals(bytes), `${f} unchanged`);
    const after = listFiles(logDir).filter((f) => !before.has(f));
    assert.deepEqual(after, [path.relative(logDir, path.join(evalDir, 'settings.yaml'))], 'only the new settings file');
    assert.equal(readResults(path.join(logDir, 'results.csv')).rows.length, 1, 'no results.csv row for --evaluate');
  });

  test('--evaluate --pretrained gives the same numbers', () => {
    const r = runCli(['--config', 'tiny.yaml', '--log-dir', logDir, '--evaluate', '--pretrained', trained.last], root);
    assert.equal(r.code, 0, r.stderr);
    const fromResume = runCli(['--config', 'tiny.yaml', '--log-dir', logDir, '--evaluate', '--resume', trained.last], root);
    const line = (s: string) => /^=> evaluation: .*$/m.exec(s)?.[0];
    assert.ok(line(r.stdout));
    assert.equal(line(r.stdout), line(fromResume.stdout));
  });

  test('--summary prints the table without data and writes nothing', () => {
    const out = path.join(root, 'summary-runs');
    const r = runCli(['--config', 'tiny.yaml', '--data', path.join(root, 'no-such-data'), '--log-dir', out, '--summary', '--num-classes', '10'], root);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ResNet18 @ 16x16$/m);
    assert.match(r.stdout, /^ *21 +module\.fc +STRConv +\[10,64,1,1\]/m);
    assert.match(r.stdout, /^parameters: [\d,]+ \(conv\/fc weights [\d,]+, BN [\d,]+, thresholds 21\)$/m);
    assert.equal(fs.existsSync(out), false, 'no run folder for --summary');
  });

  const errorCases: Array<[string, (root: string) => string[], RegExp]> = [
    ['a missing --data folder', (r) => ['--config', 'tiny.yaml', '--data', path.join(r, 'missing')], /missing/],
    ['a missing config', () => ['--config', 'nope.yaml'], /^str-train: --config nope\.yaml: file not found$/],
    ['an unknown flag', () => ['--config', 'tiny.yaml', '--bogus-flag', '3'], /unknown flag --bogus-flag/],
    ['--resume of a missing file', (r) => ['--config', 'tiny.yaml', '--resume', path.join(r, 'nope.safetensors')], /--resume .*nope\.safetensors: no such file/],
    [
      "--resume of a missing file in another run's checkpoints/",
      (r) => ['--config', 'tiny.yaml', '--resume', path.join(r, 'runs', 'x', 'y', 'checkpoints', 'last.safetensors')],
      /--resume .*last\.safetensors: no such file/,
    ],
  ];
  for (const [what, args, pattern] of errorCases) {
    test(`${what}: one line, exit 2, nothing written`, () => {
      const before = listTree(logDir);
      const r = runCli([...args(root), '--log-dir', logDir], root);
      assertOneLineError(r, pattern);
      assert.deepEqual(listTree(logDir), before, 'nothing new under the log dir');
      assert.equal(fs.existsSync(path.join(logDir, 'x')), false, 'no folder made for the missing checkpoint');
    });
  }

  test("--resume of another model's checkpoint: one line, the run's files untouched", () => {
    const dnw = writeYaml(path.join(root, 'dnw.yaml'), tinyConfig(data, { name: 'DNW', conv_type: 'DNWConv', prune_rate: 0.5 }));
    const before = new Map(listFiles(logDir).map((f) => [f, fs.readFileSync(path.join(logDir, f))]));
    const r = runCli(['--config', dnw, '--log-dir', logDir, '--resume', trained.last], root);
    assertOneLineError(r, /last\.safetensors does not match the model \(unexpected: conv1\.sparseThreshold/);
    assert.deepEqual(listFiles(logDir), [...before.keys()]);
    for (const [f, bytes] of before) assert.ok(fs.readFileSync(path.join(logDir, f)).equals(bytes), `${f} unchanged (settings.yaml too)`);
  });

  test('--resume of a truncated checkpoint: one line naming the file, nothing written', () => {
    const bad = path.join(root, 'truncated.safetensors');
    const full = fs.readFileSync(trained.last);
    fs.writeFileSync(bad, full.subarray(0, full.length - 100));
    const before = listTree(logDir);
    const r = runCli(['--config', 'tiny.yaml', '--log-dir', logDir, '--resume', bad], root);
    assertOneLineError(r, /truncated\.safetensors: not a valid safetensors file/);
    assert.deepEqual(listTree(logDir), before);
  });

  test('--resume of a finished run: no epoch runs, results.csv gets the checkpoint accuracies (quirk 19)', async () => {
    const ck = await readCheckpoint(trained.last);
    const r = await runInProcess(['--config', 'tiny.yaml', '--log-dir', logDir, '--resume', trained.last], root);
    assert.equal(r.result.runDir, trained.runDir);
    assert.ok(!r.lines.some((l) => l.startsWith('=> epoch')), 'no epoch left to run');
    const rows = readResults(path.join(logDir, 'results.csv')).rows;
    assert.equal(rows.length, 2);
    assert.deepEqual(rows[1].slice(4, 8), [ck.meta.curr_acc1, ck.meta.curr_acc5, ck.meta.best_acc1, ck.meta.best_acc5].map((v) => v!.toFixed(2)));
    assert.deepEqual(rows[1].slice(4), rows[0].slice(4), 'the same numbers as the run that finished');
  });
});
