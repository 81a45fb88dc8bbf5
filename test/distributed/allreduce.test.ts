import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SIZES, checkAllReduceOutputs } from './check-outputs.js';
import { launch } from './run-fixture.js';
import { SingleCollective, allGatherBytes } from '../../src/distributed/collective.js';

describe('local transport: ring all-reduce across worker processes', () => {
  const dirs: string[] = [];
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  for (const worldSize of [2, 3]) {
    test(`world size ${worldSize}: sums of sizes ${SIZES.join(', ')} match a local sum and are bit-identical on all ranks`, async () => {
      const out = mkdtempSync(join(tmpdir(), 'str-dist-ar-'));
      dirs.push(out);
      const devices = Array.from({ length: worldSize }, (_, i) => i).join(',');
      const r = await launch(devices, 'worker-allreduce', { out, sizes: SIZES, mode: 'none' }).done;
      assert.equal(r.code, 0, `launcher failed: ${r.stderr}`);
      for (let rank = 0; rank < worldSize; rank++) {
        const info = JSON.parse(readFileSync(join(out, `r${rank}-info.json`), 'utf8'));
        assert.deepEqual(info, { rank, worldSize, transport: 'local' });
      }
      checkAllReduceOutputs(out, worldSize);
    });
  }
});

describe('single-process collective', () => {
  test('ops are identities and all-gather returns the own bytes', async () => {
    const c = new SingleCollective();
    const b = Float32Array.of(1.5, -2);
    await c.allReduceSum(b);
    await c.broadcast(b, 0);
    await c.barrier();
    assert.deepEqual([...b], [1.5, -2]);
    const g = await allGatherBytes(c, Uint8Array.of(1, 255, 0, 7, 9));
    assert.deepEqual(g.map((x) => [...x]), [[1, 255, 0, 7, 9]]);
    await assert.rejects(c.broadcast(b, 1), /root 1 out of range/);
    await c.close();
  });
});
