import { describe, test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '../../src/tf.js';
import { launch } from './run-fixture.js';
import { BATCHES, IN, LR, OUT, batchStart, initialWeights, meanLoss } from './fixtures/grads-model.js';
import { SingleCollective, type Collective } from '../../src/distributed/collective.js';
import { checkParametersIdentical, hashVariables, reduceGradientsHook, broadcastParameters } from '../../src/distributed/gradients.js';
import { assertClose, assertNoLeak } from '../helpers/tf.js';

interface Result {
  rank: number;
  identical: boolean[];
  leaked: number;
  grads: number[][];
  w: number[];
  b: number[];
}

/** One process on the whole global batch: what the data-parallel run must reproduce. */
async function reference(): Promise<{ grads: number[][]; w: number[]; b: number[] }> {
  const init = initialWeights(0);
  const w = tf.variable(tf.tensor2d(init.w, [IN, OUT]));
  const b = tf.variable(tf.tensor1d(init.b));
  const grads: number[][] = [];
  for (let step = 0; step < BATCHES.length; step++) {
    const s0 = batchStart(step);
    const { value, grads: g } = tf.variableGrads(() => meanLoss(w, b, s0, s0 + BATCHES[step]), [w, b]);
    grads.push([...(await g[w.name].data()), ...(await g[b.name].data())]);
    tf.tidy(() => {
      w.assign(w.sub(g[w.name].mul(LR)));
      b.assign(b.sub(g[b.name].mul(LR)));
    });
    tf.dispose([value, g[w.name], g[b.name]]);
  }
  const out = { grads, w: [...(await w.data())], b: [...(await b.data())] };
  tf.dispose([w, b]);
  return out;
}

describe('data-parallel gradient averaging across worker processes', () => {
  const dirs: string[] = [];
  before(async () => {
    await tf.setBackend('cpu');
  });
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  // 2 ranks: shards of 7 are 3+4, of 2 are 1+1; 3 ranks: 2+2+3 and, for the last batch of 2, 0+1+1
  for (const worldSize of [2, 3]) {
    test(`world size ${worldSize}: SGD steps equal one process on the global batch; parameters bit-identical after every step`, async () => {
      const out = mkdtempSync(join(tmpdir(), 'str-dist-grads-'));
      dirs.push(out);
      const devices = Array.from({ length: worldSize }, (_, i) => i).join(',');
      const r = await launch(devices, 'worker-grads', { out, mode: 'none' }).done;
      assert.equal(r.code, 0, r.stderr);
      const results: Result[] = Array.from({ length: worldSize }, (_, k) => JSON.parse(readFileSync(join(out, `grads-r${k}.json`), 'utf8')));
      const ref = await reference();
      for (const res of results) {
        // different initial weights per rank until rank 0's are broadcast, then identical throughout
        assert.deepEqual(res.identical, [false, true, ...BATCHES.map(() => true)]);
        assert.equal(res.leaked, 0, `rank ${res.rank} leaked tensors`);
        assert.deepEqual(res.grads, results[0].grads, `rank ${res.rank}: averaged gradients differ from rank 0`);
        assert.deepEqual([res.w, res.b], [results[0].w, results[0].b]);
      }
      for (let s = 0; s < BATCHES.length; s++) assertClose(results[0].grads[s], ref.grads[s], 2e-6, `step ${s} gradient`);
      assertClose(results[0].w, ref.w, 2e-6, 'final weight');
      assertClose(results[0].b, ref.b, 2e-6, 'final bias');
    });
  }
});

/**
 * A fake two-rank world seen from one rank: the other rank's contributions to the hook's two sums
 * (its sample count, then its weighted gradients) are added by hand, in order.
 */
class FakePeer implements Collective {
  readonly rank = 0;
  readonly worldSize = 2;
  readonly transport = 'local' as const;
  private calls = 0;
  constructor(private readonly other: Float32Array[]) {}
  async allReduceSum(buf: Float32Array) {
    const o = this.other[this.calls++];
    assert.equal(buf.length, o.length, `sum ${this.calls}: buffer length`);
    for (let i = 0; i < buf.length; i++) buf[i] += o[i];
  }
  async broadcast() {}
  async barrier() {}
  async close() {}
}

describe('reduceGradientsHook (in process)', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  for (const hostMath of [true, false]) {
    test(`weights each rank by its samples: (3·g0 + 1·g1) / 4, in the order given, without leaks (${hostMath ? 'host' : 'device'} division)`, async () => {
      // the peer holds 1 sample of 4 with mean gradients a=[10, 20], b=[[1],[2],[3]] → [1/4·b, 1/4·a]
      const peer = new FakePeer([Float32Array.of(1), Float32Array.of(1, 2, 3, 10, 20).map((v) => v / 4)]);
      const hook = reduceGradientsHook(peer, ['b', 'a'], { hostMath });
      const grads = { a: tf.tensor1d([2, 4]), b: tf.tensor2d([[5], [6], [7]]) };
      const out = await assertNoLeak(async () => {
        const o = await hook(grads, 3);
        const v = { a: [...(await o.a.data())], b: [...(await o.b.data())], shape: o.b.shape };
        tf.dispose(o);
        return v;
      });
      assert.deepEqual(out.a, [(3 * 2 + 10) / 4, (3 * 4 + 20) / 4]);
      assert.deepEqual(out.b, [(3 * 5 + 1) / 4, (3 * 6 + 2) / 4, (3 * 7 + 3) / 4]);
      assert.deepEqual(out.shape, [3, 1]);
      tf.dispose([grads.a, grads.b]);
    });
  }

  test('a rank without samples contributes nothing, even with NaN gradients', async () => {
    // the peer holds 2 samples with mean gradient [2, 4]: weight 2/2
    const peer = new FakePeer([Float32Array.of(2), Float32Array.of(2, 4)]);
    const hook = reduceGradientsHook(peer, ['a']);
    const g = { a: tf.tensor1d([NaN, NaN]) };
    const o = await hook(g, 0);
    assert.deepEqual([...(await o.a.data())], [2, 4]);
    tf.dispose([o.a, g.a]);
  });

  test('refuses gradients that do not match the order, and a step without samples anywhere', async () => {
    const hook = reduceGradientsHook(new FakePeer([new Float32Array(1)]), ['a']);
    const g = { a: tf.tensor1d([1, 2]), z: tf.scalar(1) };
    await assert.rejects(hook(g, 1), /unexpected z/);
    await assert.rejects(hook({ a: g.a }, 0), /no rank had any samples/);
    tf.dispose([g.a, g.z]);
    assert.throws(() => reduceGradientsHook(new SingleCollective(), ['a', 'a']), /duplicate/);
  });

  test('a single process returns its gradients unchanged', async () => {
    const g = { a: tf.tensor1d([1, 2]) };
    assert.equal(await reduceGradientsHook(new SingleCollective(), ['a'])(g, 5), g);
    g.a.dispose();
  });

  test('parameter hashes see every bit; one process is always identical to itself', async () => {
    const v1 = tf.variable(tf.tensor1d([1, 2, 3]));
    const v2 = tf.variable(tf.tensor1d([1, 2, 3]));
    assert.ok((await hashVariables([v1])).equals(await hashVariables([v2])));
    v2.assign(tf.tensor1d([1, 2, Math.fround(3 + 2 ** -22)]));
    assert.ok(!(await hashVariables([v1])).equals(await hashVariables([v2])));
    const c = new SingleCollective();
    assert.equal((await checkParametersIdentical(c, [v1, { variable: v2 }])).identical, true);
    await broadcastParameters(c, [v1]);
    tf.dispose([v1, v2]);
  });
});
