// Issue 6, acceptance 2, through the real CLI: `mpirun -np 2 str-train … --distributed mpi` with
// global batch B ends where one process with batch B ends, and both ranks hold bit-identical
// parameters after every step. BatchNorm is frozen for the comparison: see cli-equivalence.test.ts.
// Skipped, with the reason, where mpirun or libmpi is missing (.ci/run installs Open MPI when it can).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { mpiUnavailableReason, mpirunArgs } from '../../src/distributed/mpi.js';
import { ENV_TEST_HOOKS } from '../../src/distributed/test-hooks.js';
import {
  TINY_MODEL, assertBitIdenticalSteps, assertRunsClose, checkpointOf, cliArgs, epochLines, hookEnv, runCli, startCommand, tempDir, tinyData,
} from './cli-common.js';

const unavailable = mpiUnavailableReason();
const skip = unavailable ? `MPI not available: ${unavailable}` : false;

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const STEPS = 8; // 32 images, global batch 8, 2 epochs
const RTOL = 1e-3;

let data: string;
before(async () => {
  if (!skip) data = await tinyData(tempDir('str-cli-mpi-data-', dirs), 8);
});

const common = (conv: string) => [
  '--data', data, ...TINY_MODEL, '--batch-size', '8', '--epochs', '2', '--lr', '0.001', '--momentum', '0.9',
  '--weight-decay', '0.0005', '--seed', '11', '--conv-type', conv, ...(conv === 'STRConv' ? ['--sinit-value', '-4'] : []),
];

describe('mpirun -np 2 str-train --distributed mpi', () => {
  for (const conv of ['DenseConv', 'STRConv']) {
    test(`${conv}: 2 MPI ranks reach the parameters of 1 process with the same global batch; ranks bit-identical after every step`, { skip }, async () => {
      const root = tempDir(`str-cli-mpi-${conv}-`, dirs);
      const hashes = join(root, 'hashes');
      const [one, two] = [join(root, 'one'), join(root, 'two')];
      const env = hookEnv({ frozenBatchNorm: true, hashDir: hashes });
      // mpirun forwards only the variables named with -x
      const args = [...mpirunArgs(2), '-x', ENV_TEST_HOOKS, process.execPath, ...cliArgs([...common(conv), '--distributed', 'mpi', '--log-dir', two])];
      const r2 = await startCommand('mpirun', args, { ...process.env, ...env }, 60_000).done;
      assert.equal(r2.code, 0, `mpirun failed:\n${r2.stdout.slice(-3000)}\n${r2.stderr.slice(-3000)}`);
      // rank 0 alone printed (one line per epoch, not one per rank)
      assert.equal(epochLines(r2.stdout).length, 2, r2.stdout);

      const r1 = await runCli([...common(conv), '--log-dir', one], { hooks: { frozenBatchNorm: true } });
      assertBitIdenticalSteps(hashes, STEPS);
      const [init1, init2, last1, last2] = await Promise.all([checkpointOf(one, 'initial'), checkpointOf(two, 'initial'), checkpointOf(one), checkpointOf(two)]);
      assertRunsClose(init2, init1, init1, 0, `${conv}: initial weights`);
      assertRunsClose(last2, last1, init1, RTOL, `${conv}: 2 MPI ranks vs 1 process after ${STEPS} steps`);
      const [e1, e2] = [epochLines(r1.stdout), epochLines(r2.stdout)];
      for (let e = 0; e < 2; e++) {
        assert.equal(e2[e].trainTop1, e1[e].trainTop1);
        assert.equal(e2[e].valTop1, e1[e].valTop1);
      }
    });
  }
});
