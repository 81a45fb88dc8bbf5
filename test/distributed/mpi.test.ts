import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeArgs, startCommand } from './run-fixture.js';
import { SIZES, checkAllReduceOutputs } from './check-outputs.js';
import { initMpi, mpiUnavailableReason, mpirunArgs } from '../../src/distributed/mpi.js';
import { UserError } from '../../src/util/errors.js';

const unavailable = mpiUnavailableReason();
const skip = unavailable ? `MPI not available: ${unavailable}` : false;

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** `mpirun -np N node <fixture>` with the fixture's config forwarded to every rank. */
async function mpirun(np: number, fixture: string, cfg: object, env: Record<string, string> = {}, expectCode = 0) {
  const vars = { STR_DIST_FIXTURE: JSON.stringify(cfg), ...env };
  const args = [...mpirunArgs(np), ...Object.keys(vars).flatMap((k) => ['-x', k]), process.execPath, ...nodeArgs(fixture)];
  const r = await startCommand('mpirun', args, vars, 50_000).done;
  if (expectCode === 0) assert.equal(r.code, 0, `mpirun failed:\n${r.stdout}\n${r.stderr}`);
  return r;
}

describe('MPI transport (Open MPI through koffi, under mpirun on localhost)', () => {
  test('a missing libmpi is a clear UserError', () => {
    assert.throws(() => initMpi({ library: '/nonexistent/libmpi.so.40' }), (e: unknown) => e instanceof UserError && /^--distributed mpi: cannot load Open MPI's libmpi/.test(e.message));
  });

  for (const [np, sum] of [[2, 'reduce-scatter'], [3, 'reduce-scatter'], [2, 'allreduce'], [3, 'allreduce']] as const) {
    test(`mpirun -np ${np}, sums by ${sum}: results match a local sum and are bit-identical on all ranks`, { skip }, async () => {
      const out = mkdtempSync(join(tmpdir(), 'str-dist-mpi-'));
      dirs.push(out);
      await mpirun(np, 'worker-allreduce', { out, sizes: SIZES, mode: 'mpi' }, { STR_TRAIN_MPI_SUM: sum });
      for (let rank = 0; rank < np; rank++) {
        assert.deepEqual(JSON.parse(readFileSync(join(out, `r${rank}-info.json`), 'utf8')), { rank, worldSize: np, transport: 'mpi' });
      }
      checkAllReduceOutputs(out, np);
    });
  }

  test('a rank that exits with code 3 mid-run ends the whole mpirun job within seconds, non-zero', { skip }, async () => {
    const out = mkdtempSync(join(tmpdir(), 'str-dist-mpi-fault-'));
    dirs.push(out);
    const r = await mpirun(2, 'worker-fault', { out, mode: 'mpi', exitRank: 1, exitCode: 3, after: 10 }, {}, 3);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /fixture: failing on purpose with code 3/);
    assert.ok(r.ms < 30_000, `took ${r.ms} ms`);
  });

  test('mpirun -np 2: data-parallel SGD keeps parameters bit-identical and matches the reference gradients of the local run', { skip }, async () => {
    const out = mkdtempSync(join(tmpdir(), 'str-dist-mpi-grads-'));
    dirs.push(out);
    await mpirun(2, 'worker-grads', { out, mode: 'mpi' });
    const [r0, r1] = [0, 1].map((k) => JSON.parse(readFileSync(join(out, `grads-r${k}.json`), 'utf8')));
    assert.deepEqual(r0.identical, [false, true, true, true, true]);
    assert.deepEqual(r1.identical, r0.identical);
    assert.deepEqual([r1.grads, r1.w, r1.b], [r0.grads, r0.w, r0.b]);
    // with two ranks every element is one float32 addition: the same bits as the local ring
    const local = mkdtempSync(join(tmpdir(), 'str-dist-mpi-grads-local-'));
    dirs.push(local);
    const { launch } = await import('./run-fixture.js');
    const l = await launch('0,1', 'worker-grads', { out: local, mode: 'none' }).done;
    assert.equal(l.code, 0, l.stderr);
    const l0 = JSON.parse(readFileSync(join(local, 'grads-r0.json'), 'utf8'));
    assert.deepEqual([r0.grads, r0.w, r0.b], [l0.grads, l0.w, l0.b]);
  });
});
