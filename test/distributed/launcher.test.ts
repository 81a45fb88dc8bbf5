import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { launch, startFixture } from './run-fixture.js';
import { checkDevicesExist, mpiDeviceForRank, parseDeviceList, workerExecArgv, workerInfo } from '../../src/distributed/launcher.js';
import { EXIT_PEER_LOST } from '../../src/distributed/collective.js';
import { UserError } from '../../src/util/errors.js';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'str-dist-launch-'));
  dirs.push(d);
  return d;
};

/** Processes whose command line contains the marker (workers get it as an argument). */
function processesWith(marker: string): string[] {
  const ps = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  return ps.split('\n').filter((l) => l.includes(marker) && !l.includes(' ps -eo'));
}

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The launcher's own lines (rank 0's forwarded output aside). */
const launcherLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('str-train:'));

describe('device lists', () => {
  test('parseDeviceList accepts distinct non-negative integers', () => {
    assert.deepEqual(parseDeviceList('0,1,2,3'), [0, 1, 2, 3]);
    assert.deepEqual(parseDeviceList(' 3, 1 '), [3, 1]);
    assert.deepEqual(parseDeviceList([0, '2']), [0, 2]);
    assert.deepEqual(parseDeviceList(5), [5]);
  });
  for (const [bad, why] of [
    ['0,0', /device id 0 is listed twice/],
    ['1,-1', /"-1" is not a non-negative integer/],
    ['0,1.5', /"1.5" is not a non-negative integer/],
    ['0,gpu1', /"gpu1" is not a non-negative integer/],
    ['', /empty list/],
    ['0,,1', /"" is not a non-negative integer/],
  ] as const) {
    test(`parseDeviceList rejects ${JSON.stringify(bad)} with a UserError naming --multigpu`, () => {
      assert.throws(() => parseDeviceList(bad), (e: unknown) => e instanceof UserError && /^--multigpu: /.test(e.message) && why.test(e.message));
    });
  }
  test('ids are checked against the GPUs nvidia-smi lists, and not at all without nvidia-smi', () => {
    assert.throws(() => checkDevicesExist([0, 1, 5], '--multigpu', [0, 1]), /device 5 does not exist \(nvidia-smi lists GPUs 0,1\)/);
    assert.throws(() => checkDevicesExist([0], '--multigpu', []), /lists GPUs none/);
    checkDevicesExist([0, 1], '--multigpu', [0, 1, 2]);
    checkDevicesExist([7, 9], '--multigpu', undefined); // cpu/wasm: ids are worker slots
  });
  test('an invalid list stops the launcher before any worker starts', async () => {
    const out = tmp();
    const r = await launch('0,1,1', 'worker-fault', { out }).done;
    assert.equal(r.code, 2);
    assert.equal(r.stderr.trim(), 'error: --multigpu: device id 1 is listed twice (0,1,1)');
    assert.deepEqual(readdirSync(out), []);
  });
});

describe('worker Node flags', () => {
  test('loader flags are kept; eval, test-runner and inspector flags are dropped', () => {
    assert.deepEqual(workerExecArgv(['--import', 'tsx', '-e', 'code()', '--test', '--test-reporter=tap', '--inspect=9229', '--max-old-space-size=8192']), [
      '--import', 'tsx', '--max-old-space-size=8192',
    ]);
    assert.deepEqual(workerExecArgv(['--eval=x', '-p', 'y', '--require', 'a.cjs']), ['--require', 'a.cjs']);
  });
});

describe('workerInfo', () => {
  test('reads the launcher variables, then Open MPI variables, else a single process', () => {
    assert.deepEqual(workerInfo({}), { rank: 0, worldSize: 1, launcher: 'none', localRank: 0 });
    assert.deepEqual(workerInfo({ STR_TRAIN_RANK: '1', STR_TRAIN_WORLD_SIZE: '2', STR_TRAIN_RENDEZVOUS: '/tmp/x', STR_TRAIN_DEVICE: '3' }), {
      rank: 1, worldSize: 2, launcher: 'local', rendezvous: '/tmp/x', device: 3, localRank: 1,
    });
    assert.deepEqual(workerInfo({ OMPI_COMM_WORLD_RANK: '3', OMPI_COMM_WORLD_SIZE: '4', OMPI_COMM_WORLD_LOCAL_RANK: '1' }), {
      rank: 3, worldSize: 4, launcher: 'mpi', device: 1, localRank: 1,
    });
    assert.throws(() => workerInfo({ STR_TRAIN_RANK: '2', STR_TRAIN_WORLD_SIZE: '2', STR_TRAIN_RENDEZVOUS: '/tmp/x' }), UserError);
    assert.throws(() => workerInfo({ STR_TRAIN_RANK: 'x' }), /STR_TRAIN_RANK=x is not a non-negative integer/);
  });
  test('under mpirun the device follows the local rank, within an existing CUDA_VISIBLE_DEVICES list', () => {
    const mpi = { OMPI_COMM_WORLD_RANK: '5', OMPI_COMM_WORLD_SIZE: '8', OMPI_COMM_WORLD_LOCAL_RANK: '1' };
    assert.equal(mpiDeviceForRank({}), undefined);
    assert.equal(mpiDeviceForRank(mpi), '1');
    assert.equal(mpiDeviceForRank({ ...mpi, CUDA_VISIBLE_DEVICES: '4,6' }), '6');
    assert.throws(() => mpiDeviceForRank({ ...mpi, CUDA_VISIBLE_DEVICES: '3' }), /local rank 1 has no device \(CUDA_VISIBLE_DEVICES=3 lists 1\)/);
  });
});

describe('launcher supervision', () => {
  test('a worker that exits with code 3 stops the run: one line naming its device, non-zero exit, nothing left behind', async () => {
    const out = tmp();
    const marker = `marker-${randomUUID()}`;
    const r = await launch('0,1,2', 'worker-fault', { out, exitRank: 1, exitCode: 3, after: 20 }, { argv: [marker] }).done;
    assert.equal(r.code, 3, r.stderr);
    const lines = launcherLines(r.stderr);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /^str-train: worker rank 1 \(device 1, pid \d+\) exited with code 3: fixture: failing on purpose with code 3; stopped all 3 workers$/);
    // its hidden output is shown, prefixed with the device, before the verdict
    assert.match(r.stderr, /\[device 1\] fixture: some context line\n/);
    assert.deepEqual(processesWith(marker), []);
  });

  test('a worker killed by SIGKILL mid-run stops the others within seconds', async () => {
    const out = tmp();
    const marker = `marker-${randomUUID()}`;
    const run = launch('0,1', 'worker-fault', { out }, { argv: [marker] });
    await waitFor(() => existsSync(join(out, 'pid-0')) && existsSync(join(out, 'pid-1')), 30_000, 'workers to connect');
    await new Promise((r) => setTimeout(r, 300)); // mid-run: all-reducing
    assert.equal(processesWith(marker).length, 2);
    const t0 = performance.now();
    process.kill(Number(readFileSync(join(out, 'pid-1'), 'utf8')), 'SIGKILL');
    const r = await run.done;
    assert.ok(performance.now() - t0 < 8000, `took ${performance.now() - t0} ms`);
    assert.equal(r.code, 128 + 9, r.stderr);
    const lines = launcherLines(r.stderr);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /^str-train: worker rank 1 \(device 1, pid \d+\) was killed by SIGKILL .*; stopped all 2 workers$/);
    assert.deepEqual(processesWith(marker), []);
  });

  test('SIGTERM to the launcher stops all workers', async () => {
    const out = tmp();
    const marker = `marker-${randomUUID()}`;
    const run = launch('0,1', 'worker-fault', { out }, { argv: [marker] });
    await waitFor(() => existsSync(join(out, 'pid-0')) && existsSync(join(out, 'pid-1')), 30_000, 'workers to connect');
    run.child.kill('SIGTERM');
    const r = await run.done;
    assert.equal(r.code, 128 + 15, r.stderr);
    assert.deepEqual(launcherLines(r.stderr), ['str-train: received SIGTERM; stopped all 2 workers']);
    assert.deepEqual(processesWith(marker), []);
  });

  test('workers exit on their own when the launcher is SIGKILLed', async () => {
    const out = tmp();
    const marker = `marker-${randomUUID()}`;
    const run = launch('0,1', 'worker-fault', { out }, { argv: [marker] });
    await waitFor(() => existsSync(join(out, 'pid-0')) && existsSync(join(out, 'pid-1')), 30_000, 'workers to connect');
    const rendezvous = readFileSync(join(out, 'rendezvous-0'), 'utf8');
    assert.ok(existsSync(rendezvous));
    run.child.kill('SIGKILL');
    await run.done;
    await waitFor(() => processesWith(marker).length === 0, 6000, 'orphaned workers to exit');
    // they also removed the rendezvous directory, which the launcher no longer could
    assert.equal(existsSync(rendezvous), false);
  });
});

describe('ring failures without a launcher', () => {
  test('ranks calling different collectives fail with a message naming both ops', async () => {
    const out = tmp();
    const rendezvous = tmp();
    const env = (rank: number) => ({
      STR_TRAIN_RANK: String(rank), STR_TRAIN_WORLD_SIZE: '2', STR_TRAIN_RENDEZVOUS: rendezvous, STR_DIST_FIXTURE: JSON.stringify({ out }),
    });
    const rs = await Promise.all([startFixture('worker-mismatch', env(0)).done, startFixture('worker-mismatch', env(1)).done]);
    rs.forEach((r) => assert.equal(r.code, 0, r.stderr));
    const [m0, m1] = [0, 1].map((k) => readFileSync(join(out, `msg-${k}`), 'utf8'));
    assert.equal(m0, 'collective mismatch: rank 0 is in allReduceSum of 4000 bytes (op #1) but rank 1 sent broadcast from root 1 of 4000 bytes (op #1); every rank must call the same collective ops in the same order with the same sizes');
    assert.match(m1, /collective mismatch: rank 1 is in broadcast from root 1 of 4000 bytes \(op #1\) but rank 0 sent allReduceSum|rank 1: lost connection to rank 0/);
  });


  test('killing one rank mid-all-reduce makes the survivor fail fast with EXIT_PEER_LOST', async () => {
    const out = tmp();
    const rendezvous = tmp();
    const env = (rank: number) => ({
      STR_TRAIN_RANK: String(rank), STR_TRAIN_WORLD_SIZE: '2', STR_TRAIN_RENDEZVOUS: rendezvous,
      STR_DIST_FIXTURE: JSON.stringify({ out, floats: 2_000_000 }),
    });
    const w0 = startFixture('worker-fault', env(0));
    const w1 = startFixture('worker-fault', env(1));
    await waitFor(() => existsSync(join(out, 'pid-0')) && existsSync(join(out, 'pid-1')), 30_000, 'workers to connect');
    await new Promise((r) => setTimeout(r, 300));
    const t0 = performance.now();
    w1.child.kill('SIGKILL');
    const [r0, r1] = await Promise.all([w0.done, w1.done]);
    assert.equal(r1.signal, 'SIGKILL');
    assert.equal(r0.code, EXIT_PEER_LOST, r0.stderr);
    assert.match(r0.stderr, /rank 0: lost connection to rank 1/);
    assert.ok(performance.now() - t0 < 5000);
  });
});
