/**
 * A sweep survives a kill at any moment: SIGKILL of the sweep and its runs (the whole process
 * group) at a random moment, started again on the same folder, then killed again while a run is
 * mid-way (its last.safetensors written, the run unfinished), started again: it ends with the
 * same CSV rows as an uninterrupted sweep (time aside). Runs are seeded, so this also checks that
 * a resumed run computes what an uninterrupted one does. Also: GMP and DNW land on the target
 * total sparsity, and a finished sweep started again runs nothing.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OPTION_KEYS } from '../../src/config/schema.js';
import { TARGET_KEY } from '../../src/sweep/plan.js';
import { readSweepCsv, type SweepRow } from '../../src/sweep/csv.js';
import { cliArgv, runCli, tinyConfig, tinyDataset, tmpDir, writeYaml } from '../helpers/run.js';

const HAS_TARGET = (OPTION_KEYS as readonly string[]).includes(TARGET_KEY);
// one target keeps the test short (5 runs per sweep); gmp's window 0-1 of 3 epochs reaches 87.5 %
const TARGETS = [80];
const METHODS = HAS_TARGET ? 'dense,str,gmp,dnw,dnw-str-budget' : 'dense,gmp,dnw';

interface Started {
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }>;
  kill: () => void;
  out: () => string;
}

/** The sweep in its own process group, so one kill reaches it and its runs. */
function startSweep(root: string, out: string): Started {
  const child = spawn(process.execPath, cliArgv(['sweep', '--config', 'base.yaml', '--methods', METHODS, '--targets', TARGETS.join(','), '--parallel', '2', '--out', out, '--no-png']), {
    cwd: root,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout!.on('data', (d) => (text += d));
  child.stderr!.on('data', (d) => (text += d));
  return {
    done: new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, out: text }))),
    kill: () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    },
    out: () => text,
  };
}

/** Every row without its wall time. */
const comparable = (rows: SweepRow[]) => rows.map(({ seconds: _s, ...r }) => r);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('sweep: kill and restart', () => {
  let root: string;
  before(async () => {
    root = tmpDir('sweep-kill');
    const data = await tinyDataset(root, { perClass: 8, valPerClass: 4 });
    // a dense classifier: the total counts it, so the sparse layers must prune a little more
    writeYaml(path.join(root, 'base.yaml'), tinyConfig(data, { conv_type: 'STRConv', sInit_value: -4, epochs: 3, print_freq: 1, last_layer_dense: true }));
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  test('killed at a random moment and mid-run, restarted: the same rows as an uninterrupted sweep', { timeout: 600_000 }, async (t) => {
    const t0 = performance.now();
    const a = await startSweep(root, 'a').done;
    const ms = performance.now() - t0;
    assert.equal(a.code, 0, a.out);
    const expected = readSweepCsv(path.join(root, 'a', 'sweep.csv'));
    assert.deepEqual(
      expected.map((r) => (r.target === undefined ? r.method : `${r.method}-${r.target}`)),
      ['dense', ...TARGETS.flatMap((t) => METHODS.split(',').slice(1).map((m) => `${m}-${t}`))],
    );
    for (const r of expected) {
      if (r.method === 'gmp' || r.method === 'dnw') assert.ok(Math.abs(r.sparsity - r.target!) <= 0.01, `${r.method} at ${r.target} %: achieved ${r.sparsity}`);
      if (r.method === 'dense') assert.equal(r.sparsity, 0);
    }
    if (HAS_TARGET) {
      for (const t of TARGETS) {
        const str = expected.find((r) => r.method === 'str' && r.target === t)!;
        assert.ok(Math.abs(str.sparsity - t) <= 0.5, `STR with --target-sparsity ${t}: achieved ${str.sparsity}`);
        const budget = expected.find((r) => r.method === 'dnw-str-budget' && r.target === t)!;
        assert.ok(Math.abs(str.sparsity - budget.sparsity) < 0.05, `DNW with STR's budget at ${t}: ${budget.sparsity} vs STR ${str.sparsity}`);
      }
    }

    // kill 1: anywhere in the first 90 % of an uninterrupted sweep's time
    const delay = Math.round(ms * (0.05 + 0.85 * Math.random()));
    const b1 = startSweep(root, 'b');
    await Promise.race([sleep(delay), b1.done]);
    b1.kill();
    const r1 = await b1.done;
    // kill 2: as soon as an unfinished run has saved an epoch (its resume path is taken on restart)
    const b2 = startSweep(root, 'b');
    const midRun = async () => {
      for (;;) {
        for (const slot of fs.existsSync(path.join(root, 'b')) ? fs.readdirSync(path.join(root, 'b')) : []) {
          const log = path.join(root, 'b', slot, 'train.log');
          if (fs.existsSync(log) && !fs.existsSync(path.join(root, 'b', slot, 'result.json')) && /^=> epoch 0:/m.test(fs.readFileSync(log, 'utf8'))) return slot;
        }
        await sleep(20);
      }
    };
    const hit = await Promise.race([midRun(), b2.done.then(() => undefined)]);
    b2.kill();
    await b2.done;
    const b3 = await startSweep(root, 'b').done;
    assert.equal(b3.code, 0, `killed after ${delay} ms (${r1.signal ?? r1.code}), then in ${hit ?? 'nothing'}:\n${b3.out}`);
    if (hit) assert.match(b3.out, new RegExp(`start ${hit} .*resuming from checkpoints/last\\.safetensors`), 'the run killed mid-way resumed');
    t.diagnostic(`uninterrupted sweep ${Math.round(ms)} ms; killed after ${delay} ms, then mid-run in ${hit ?? '(finished first)'}`);
    const got = readSweepCsv(path.join(root, 'b', 'sweep.csv'));
    assert.deepEqual(comparable(got), comparable(expected), `killed after ${delay} ms, then in ${hit ?? 'nothing'}`);

    // finished: started again it only reads the results back
    const again = runCli(['sweep', '--config', 'base.yaml', '--methods', METHODS, '--targets', TARGETS.join(','), '--parallel', '2', '--out', 'b', '--no-png'], root, 60_000);
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stdout, / start /);
    assert.equal((again.stdout.match(/finished earlier/g) ?? []).length, expected.length);
  });
});
