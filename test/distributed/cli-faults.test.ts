// Issue 6, acceptance 3, through the real CLI: a worker killed mid-epoch ends the whole run within
// seconds with one line naming its device and the cause, non-zero, leaving no process behind and
// the last checkpoint intact; `--resume` with the same device list completes the run. Also a
// worker that fails on its own (a corrupt image under --strict-data), and the errors caught
// before anything starts.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  TINY_MODEL, assertBitIdenticalSteps, checkpointOf, childrenOf, epochLines, processesWith, runCli, runDirOf, startCli, tempDir, tinyData,
} from './cli-common.js';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

let data: string;
before(async () => {
  // 128 train images, global batch 8: 16 steps per epoch
  data = await tinyData(tempDir('str-cli-fault-data-', dirs), 32);
});

const args = (logDir: string) => ['--data', data, ...TINY_MODEL, '--batch-size', '8', '--epochs', '3', '--lr', '0.02', '--seed', '2', '--log-dir', logDir];

/** The launcher's own verdict lines (workers' lines are prefixed differently). */
const verdicts = (stderr: string) => stderr.split('\n').filter((l) => /^str-train: worker rank /.test(l));

function workerEnv(pid: number): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kv of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
    const i = kv.indexOf('=');
    if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return env;
}

async function noneLeft(marker: string): Promise<void> {
  // the launcher waits for its workers; allow a moment for ps to stop listing reaped processes
  const end = Date.now() + 3000;
  while (processesWith(marker).length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(processesWith(marker), [], 'no process of the run is left');
}

describe('faults of --multigpu 0,1 runs through the CLI', () => {
  test('SIGKILL to worker rank 1 mid-epoch: the run stops within seconds, one line names device 1 and the signal; --resume completes it', async () => {
    const logDir = tempDir('str-cli-fault-kill-', dirs);
    const run = startCli([...args(logDir), '--multigpu', '0,1']);
    // wait until rank 0 prints step 3 of epoch 1 (epoch 0's checkpoint is written by then)
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (/^Epoch: \[1\]\[ *3\//m.test(run.output().stdout)) resolve();
      };
      run.child.stdout.on('data', check);
      run.done.then(() => reject(new Error(`the run ended before epoch 1:\n${run.output().stdout}\n${run.output().stderr}`)), reject);
    });
    const launcher = run.child.pid!;
    const workers = childrenOf(launcher).map(([pid]) => ({ pid, env: workerEnv(pid) }));
    assert.deepEqual(workers.map((w) => w.env.STR_TRAIN_RANK).sort(), ['0', '1'], 'the launcher runs one worker per device');
    const victim = workers.find((w) => w.env.STR_TRAIN_RANK === '1')!;
    const rendezvous = victim.env.STR_TRAIN_RENDEZVOUS;
    assert.ok(existsSync(rendezvous));
    const t0 = performance.now();
    process.kill(victim.pid, 'SIGKILL');
    const r = await run.done;
    const stopMs = performance.now() - t0;

    assert.equal(r.code, 128 + 9, `exit code ${r.code}:\n${r.stderr}`);
    assert.ok(stopMs < 10_000, `the run took ${stopMs.toFixed(0)} ms to stop`);
    const lines = verdicts(r.stderr);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], new RegExp(`^str-train: worker rank 1 \\(device 1, pid ${victim.pid}\\) was killed by SIGKILL .*; stopped all 2 workers$`));
    assert.equal(r.stderr.trim().split('\n').at(-1), lines[0], 'the verdict is the last line');
    assert.doesNotMatch(r.stdout, /^=> epoch 1:/m, 'killed during epoch 1');
    await noneLeft(logDir);
    assert.ok(!existsSync(rendezvous), 'the rendezvous directory is removed');

    const runDir = runDirOf(logDir);
    const last = join(runDir, 'checkpoints', 'last.safetensors');
    const ck = await checkpointOf(logDir);
    assert.equal(ck.meta.epoch, 1, 'last.safetensors is epoch 0’s, whole');
    assert.equal(ck.optimizer?.steps, 16);
    assert.ok(!existsSync(join(logDir, 'results.csv')));

    const hashes = join(logDir, 'hashes');
    const resumed = await runCli([...args(logDir), '--multigpu', '0,1', '--resume', last], { hooks: { hashDir: hashes } });
    assert.match(resumed.stdout, /^=> resumed from .*last\.safetensors at epoch 1 /m);
    assert.deepEqual(epochLines(resumed.stdout).map((e) => e.epoch), [1, 2]);
    assertBitIdenticalSteps(hashes, 32);
    const done = await checkpointOf(logDir);
    assert.equal(done.meta.epoch, 3);
    assert.equal(done.optimizer?.steps, 48);
    assert.equal(runDirOf(logDir), runDir, 'the resumed run continued in its own folder');
    const results = readFileSync(join(logDir, 'results.csv'), 'utf8').trim().split('\n');
    assert.equal(results.length, 2, 'a header and one row');
    assert.ok(readdirSync(join(runDir, 'checkpoints')).includes('epoch_2.safetensors'));
  });

  test('a worker that fails on its own (corrupt image, --strict-data): one line names its device and the error; nothing left', async () => {
    const bad = await tinyData(tempDir('str-cli-fault-bad-', dirs), 8);
    const cls = join(bad, 'train', readdirSync(join(bad, 'train'))[0]);
    const victimFile = join(cls, readdirSync(cls)[0]);
    writeFileSync(victimFile, 'not a JPEG');
    const logDir = tempDir('str-cli-fault-strict-', dirs);
    const r = await startCli(['--data', bad, ...TINY_MODEL, '--batch-size', '8', '--epochs', '1', '--seed', '1', '--strict-data', '--multigpu', '0,1', '--log-dir', logDir]).done;
    assert.equal(r.code, 2, r.stderr);
    const lines = verdicts(r.stderr);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /^str-train: worker rank (\d) \(device \1, pid \d+\) exited with code 2: str-train: --strict-data: cannot load .+; stopped all 2 workers$/);
    assert.ok(lines[0].includes(victimFile), lines[0]);
    await noneLeft(logDir);
  });

  for (const [what, flags, message] of [
    ['a duplicate device id', ['--batch-size', '8', '--multigpu', '0,1,0'], 'str-train: --multigpu must not repeat a device id, got "0,1,0"'],
    ['a global batch not divisible by the device count', ['--batch-size', '9', '--multigpu', '0,1'], 'str-train: --batch-size (9) must be divisible by the 2 devices of --multigpu 0,1'],
  ] as const) {
    test(`${what}: one line, exit code 2, no run folder`, async () => {
      const logDir = join(tempDir('str-cli-fault-early-', dirs), 'runs');
      const r = await startCli(['--data', data, ...TINY_MODEL, '--epochs', '1', ...flags, '--log-dir', logDir]).done;
      assert.equal(r.code, 2);
      assert.equal(r.stderr.trim(), message);
      assert.equal(r.stdout, '');
      assert.ok(!existsSync(logDir), 'nothing was created');
    });
  }
});
