import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { HostTensor, StateDict } from '../../src/io/host-tensor.js';
import {
  PyDict,
  PyTuple,
  extractStateDict,
  isHostTensor,
  readTorchCheckpoint,
  readTorchCheckpointBuffer,
  readTorchCheckpointInfo,
  stateDictToPy,
  torchArchiveName,
  torchCheckpointBuffer,
  toPyInt,
  writeTorchCheckpoint,
  type PyValue,
} from '../../src/io/pytorch/index.js';
import { UserError } from '../../src/util/errors.js';
import { findTorchPython, fixture, tmpDir } from './helpers.js';

interface Described {
  key: string;
  shape: number[];
  dtype: string;
  first: number[];
  sum: number;
}
const SIDECAR = JSON.parse(fs.readFileSync(fixture('fixtures.json'), 'utf8')) as {
  'epoch_1.state': {
    state_dict: Described[];
    meta: Record<string, number | string>;
    optimizer: { state_len: number; group_keys: string[]; group_params: number[][]; momentum_buffer_0: Described };
  };
  'model_best.pth': { keys_and_sums: [string, number][] };
  hostile_marker: string;
};

function values(t: HostTensor): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v));
}

function checkDescribed(t: HostTensor, d: Described): void {
  assert.deepEqual(t.shape, d.shape, d.key);
  assert.equal(t.dtype, d.dtype, d.key);
  const v = values(t);
  assert.deepEqual(v.slice(0, d.first.length), d.first, d.key);
  const sum = v.reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(sum - d.sum) <= 1e-9 * Math.max(1, Math.abs(d.sum)), `${d.key}: sum ${sum} vs ${d.sum}`);
}

function get(obj: PyValue | undefined, key: PyValue): PyValue | undefined {
  assert.ok(obj instanceof Map, `expected a dict, got ${String(obj)}`);
  return obj.get(key);
}

describe('reading checkpoints written by torch.save', () => {
  test('reference-style training checkpoint: names, order, shapes, dtypes, values, metadata, optimizer', () => {
    const obj = readTorchCheckpoint(fixture('epoch_1.state'));
    const side = SIDECAR['epoch_1.state'];
    assert.ok(obj instanceof PyDict && !obj.ordered);
    assert.deepEqual([...obj.keys()], ['epoch', 'arch', 'state_dict', 'best_acc1', 'best_acc5', 'best_train_acc1', 'best_train_acc5', 'optimizer', 'curr_acc1', 'curr_acc5']);
    assert.equal(obj.get('epoch'), 2n, 'Python int → bigint');
    assert.equal(obj.get('best_acc5'), 50, 'Python float → number');
    const sd = obj.get('state_dict');
    assert.ok(sd instanceof PyDict && sd.ordered, 'state_dict is an OrderedDict');
    assert.deepEqual([...sd.keys()], side.state_dict.map((d) => d.key));
    side.state_dict.forEach((d) => checkDescribed(sd.get(d.key) as HostTensor, d));
    const nbt = sd.get('module.bn1.num_batches_tracked') as HostTensor;
    assert.equal(nbt.dtype, 'int64');
    assert.deepEqual(nbt.shape, []);
    assert.deepEqual([...(nbt.data as BigInt64Array)], [2n]);
    assert.deepEqual((sd.get('module.conv1.sparseThreshold') as HostTensor).shape, [1, 1]);
    // The state_dict's _metadata attribute (pickle BUILD) is kept.
    const meta = get(sd.state ?? undefined, '_metadata');
    assert.ok(meta instanceof PyDict && meta.ordered);
    assert.equal(get(meta.get('module.bn1'), 'version'), 2n);

    const opt = obj.get('optimizer');
    const state = get(opt, 'state') as PyDict;
    assert.equal(state.size, side.optimizer.state_len);
    checkDescribed(get(state.get(0n), 'momentum_buffer') as HostTensor, side.optimizer.momentum_buffer_0);
    const groups = get(opt, 'param_groups') as PyDict[];
    assert.equal(groups.length, 3);
    assert.deepEqual([...groups[0]!.keys()], side.optimizer.group_keys);
    assert.deepEqual(groups.map((g) => (g.get('params') as bigint[]).map(Number)), side.optimizer.group_params);
    assert.equal(groups[0]!.get('dampening'), 0n);
    assert.equal(groups[0]!.get('nesterov'), false);
    assert.equal(groups[0]!.get('foreach'), null);

    const ex = extractStateDict(obj, 'epoch_1.state');
    assert.deepEqual([...ex.stateDict.keys()], side.state_dict.map((d) => d.key));
    assert.deepEqual(ex.meta, side.meta);
    assert.equal(ex.optimizer, opt);
  });

  test('dense-compatible checkpoint: no thresholds, weights equal sign(W)·relu(|W| − σ(s)) of the STR one', () => {
    const dense = extractStateDict(readTorchCheckpoint(fixture('model_best.pth')));
    assert.deepEqual(dense.meta, { epoch: 0, arch: 'ResNet18' });
    assert.equal(dense.optimizer, undefined);
    const expected = SIDECAR['model_best.pth'].keys_and_sums;
    assert.deepEqual([...dense.stateDict.keys()], expected.map(([k]) => k));
    for (const [k, sum] of expected) {
      const s = values(dense.stateDict.get(k)!).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(s - sum) <= 1e-9 * Math.max(1, Math.abs(sum)), k);
    }
    const str = extractStateDict(readTorchCheckpoint(fixture('epoch_1.state'))).stateDict;
    let zeros = 0;
    for (const [k, t] of str) {
      if (!k.endsWith('.sparseThreshold')) continue;
      const wKey = k.replace(/sparseThreshold$/, 'weight');
      const tau = Math.fround(1 / (1 + Math.exp(-(t.data[0] as number))));
      const w = values(str.get(wKey)!);
      const got = values(dense.stateDict.get(wKey)!);
      w.forEach((x, i) => {
        const want = Math.sign(x) * Math.max(Math.abs(x) - tau, 0);
        if (want === 0) zeros++;
        assert.ok(Math.abs(got[i]! - want) <= 1e-6, `${wKey}[${i}]: ${got[i]} vs ${want}`);
      });
    }
    assert.ok(zeros > 0, 'some weights are pruned');
  });

  test('legacy (non-zip) format, bare state dict without the module. prefix', () => {
    const info = readTorchCheckpointInfo(fixture('plain_legacy.pth'));
    assert.equal(info.format, 'legacy');
    const plain = extractStateDict(info.value);
    assert.deepEqual(plain.meta, {});
    const str = extractStateDict(readTorchCheckpoint(fixture('epoch_1.state'))).stateDict;
    assert.deepEqual([...plain.stateDict.keys()], [...str.keys()].map((k) => k.slice('module.'.length)));
    for (const [k, t] of str) {
      const u = plain.stateDict.get(k.slice('module.'.length))!;
      assert.equal(u.dtype, t.dtype);
      assert.deepEqual(u.shape, t.shape);
      assert.deepEqual(values(u), values(t), k);
    }
  });

  test('views of one storage: storage offsets and non-contiguous strides give contiguous data', () => {
    const obj = readTorchCheckpoint(fixture('views.pth'));
    const base = Array.from({ length: 24 }, (_, i) => i);
    const t = get(obj, 't') as HostTensor;
    assert.deepEqual(t.shape, [6, 4]);
    assert.deepEqual(values(t), Array.from({ length: 24 }, (_, k) => base[(k % 4) * 6 + Math.floor(k / 4)]));
    assert.deepEqual(values(get(obj, 'row') as HostTensor), [12, 13, 14, 15, 16, 17]);
    const cols = get(obj, 'cols') as HostTensor;
    assert.deepEqual(cols.shape, [4, 2]);
    assert.deepEqual(values(cols), [1, 2, 7, 8, 13, 14, 19, 20]);
    assert.deepEqual(values(get(obj, 'base') as HostTensor), base);
  });
});

/** The object of test/fixtures/make_torch_fixtures.py's simple.pth, rebuilt from its formulas. */
function simpleObject(): PyValue {
  const sd: StateDict = new Map<string, HostTensor>([
    ['w', { dtype: 'float32', shape: [3, 4], data: Float32Array.from({ length: 12 }, (_, i) => i / 8) }],
    ['b', { dtype: 'float64', shape: [2], data: Float64Array.from([1.5, -2.0]) }],
    ['n', { dtype: 'int64', shape: [], data: BigInt64Array.from([7n]) }],
    ['h', { dtype: 'float16', shape: [4], data: Uint16Array.from([0x0000, 0x3c00, 0x4000, 0x4200]) }],
    ['bf', { dtype: 'bfloat16', shape: [2], data: Uint16Array.from([0x3f80, 0xc000]) }],
    ['i32', { dtype: 'int32', shape: [2], data: Int32Array.from([-1, 2]) }],
    ['i16', { dtype: 'int16', shape: [2], data: Int16Array.from([-3, 4]) }],
    ['i8', { dtype: 'int8', shape: [2], data: Int8Array.from([-5, 6]) }],
    ['u8', { dtype: 'uint8', shape: [2], data: Uint8Array.from([255, 0]) }],
    ['m', { dtype: 'bool', shape: [2], data: Uint8Array.from([1, 0]) }],
    ['e', { dtype: 'float32', shape: [2, 0, 3], data: new Float32Array(0) }],
  ]);
  return {
    epoch: 3n, arch: 'ResNet18', state_dict: sd, best_acc1: 71.25, flag: true,
    none: null, big: 2n ** 40n, neg: -5n, mid: 70000n, u16: 300n, huge: -(2n ** 70n),
    tuple: new PyTuple([1n, 2.5, 'x']), tuple4: new PyTuple([1n, 2n, 3n, 4n]), list: [1n, 2n, 3n], one: [0.5],
    nested: { a: [0.5], lr: 0.1 }, text: 'Not evaluated', unicode: 'sparsité',
  };
}

describe('writing checkpoints byte-for-byte like torch.save', () => {
  test('an object built in JS gives exactly the bytes torch wrote for the same object', () => {
    const ours = torchCheckpointBuffer(simpleObject(), { archiveName: 'simple' });
    assert.deepEqual(ours, fs.readFileSync(fixture('simple.pth')));
  });

  for (const name of ['epoch_1.state', 'model_best.pth', 'simple.pth', 'batches.pth']) {
    test(`read → write of ${name} reproduces torch's file byte for byte`, () => {
      const orig = fs.readFileSync(fixture(name));
      const info = readTorchCheckpointBuffer(orig, name);
      assert.equal(info.archiveName, torchArchiveName(name));
      const ours = torchCheckpointBuffer(info.value, { archiveName: info.archiveName! });
      assert.equal(ours.length, orig.length);
      assert.ok(ours.equals(orig), `first difference at byte ${ours.findIndex((b, i) => b !== orig[i])}`);
    });
  }

  test('batches of 1000 in dicts, OrderedDicts and lists read back with the right sizes and kinds', () => {
    const obj = readTorchCheckpoint(fixture('batches.pth'));
    for (const [k, n, ordered] of [['d1000', 1000, false], ['d1001', 1001, false], ['od1000', 1000, true], ['od1001', 1001, true]] as const) {
      const d = get(obj, k) as PyDict;
      assert.equal(d.size, n, k);
      assert.equal(d.ordered, ordered, k);
      assert.equal(d.get(BigInt(n - 1)), BigInt(n - 1), k);
    }
    assert.deepEqual(get(obj, 'l1001'), Array.from({ length: 1001 }, (_, i) => BigInt(i)));
  });

  test('the archive folder is the file stem, as torch names it; writes are atomic', async () => {
    assert.equal(torchArchiveName('/x/runs/checkpoints/model_best.pth'), 'model_best');
    assert.equal(torchArchiveName('epoch_12.state'), 'epoch_12');
    assert.equal(torchArchiveName('a.b.c'), 'a.b');
    assert.equal(torchArchiveName('noext'), 'noext');
    assert.equal(torchArchiveName('.hidden'), 'archive');
    const dir = tmpDir('pth');
    const f = path.join(dir, 'ckpts', 'epoch_3.state');
    await writeTorchCheckpoint(f, simpleObject());
    const info = readTorchCheckpointInfo(f);
    assert.equal(info.archiveName, 'epoch_3');
    assert.deepEqual(torchCheckpointBuffer(info.value, { archiveName: 'simple' }), fs.readFileSync(fixture('simple.pth')));
    assert.deepEqual(fs.readdirSync(path.dirname(f)), ['epoch_3.state']);
  });

  test('JS numbers are Python floats, bigints (toPyInt) are Python ints', () => {
    const back = readTorchCheckpointBuffer(torchCheckpointBuffer({ f: 0, i: toPyInt(0), j: toPyInt(-3) })).value as PyDict;
    assert.equal(back.get('f'), 0);
    assert.equal(back.get('i'), 0n);
    assert.equal(back.get('j'), -3n);
    assert.throws(() => toPyInt(1.5), /not a safe integer/);
  });

  test('a bare StateDict (JS Map) is written as an OrderedDict; stateDictToPy can attach _metadata', () => {
    const sd: StateDict = new Map([['module.fc.weight', { dtype: 'float32', shape: [2, 1, 1, 1], data: Float32Array.from([0, -1]) } as HostTensor]]);
    const back = readTorchCheckpointBuffer(torchCheckpointBuffer(sd)).value;
    assert.ok(back instanceof PyDict && back.ordered && back.state === undefined);
    assert.deepEqual(values(back.get('module.fc.weight') as HostTensor), [0, -1]);
    const withMeta = stateDictToPy(sd, new PyDict([['', new PyDict([['version', 1n]])]], { ordered: true }));
    const back2 = readTorchCheckpointBuffer(torchCheckpointBuffer(withMeta)).value as PyDict;
    assert.equal(get(get(get(back2.state!, '_metadata'), ''), 'version'), 1n);
  });
});

describe('torch.load reads what we write (needs Debian python3-torch)', () => {
  const py = findTorchPython();
  test('our files load in torch with the same names, dtypes, shapes and values', { skip: py ? false : 'python3 with torch not found' }, () => {
    const dir = tmpDir('pth-torch');
    const files: Record<string, PyValue> = {
      'epoch_1.state': readTorchCheckpoint(fixture('epoch_1.state')),
      'views.pth': readTorchCheckpoint(fixture('views.pth')), // shared storage → separate copies
      'plain.pth': readTorchCheckpoint(fixture('plain_legacy.pth')), // legacy → zip
      'simple.pth': simpleObject(),
    };
    for (const [n, v] of Object.entries(files)) fs.writeFileSync(path.join(dir, n), torchCheckpointBuffer(v, { archiveName: torchArchiveName(n) }));
    const script = `
import sys, torch
from collections import OrderedDict
def same(a, b, where):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and b.is_contiguous(), where
        assert torch.equal(a, b) or (a.numel() == 0), where
    elif isinstance(a, dict):
        assert type(a) is type(b) and list(a.keys()) == list(b.keys()), where
        for k in a: same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)): same(x, y, f"{where}[{i}]")
    else:
        assert type(a) is type(b) and a == b, (where, a, b)
d, fx = sys.argv[1], sys.argv[2]
pairs = [("epoch_1.state", "epoch_1.state"), ("views.pth", "views.pth"), ("plain.pth", "plain_legacy.pth"), ("simple.pth", "simple.pth")]
for ours, theirs in pairs:
    same(torch.load(f"{fx}/{theirs}"), torch.load(f"{d}/{ours}"), ours)
print("ok", len(pairs))
`;
    const r = spawnSync(py!, ['-c', script, dir, path.dirname(fixture('x'))], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^ok 4/);
  });
});

describe('safety and broken files', () => {
  const marker = SIDECAR.hostile_marker;
  for (const [name, global] of [
    ['hostile_system.pkl', 'posix.system'],
    ['hostile_system.pth', 'posix.system'],
    ['hostile_eval.pth', '__builtin__.eval'],
  ] as const) {
    test(`${name}: a pickle calling ${global} is refused and nothing runs`, () => {
      fs.rmSync(marker, { force: true });
      const f = fixture(name);
      assert.throws(() => readTorchCheckpoint(f), (e: unknown) => {
        assert.ok(e instanceof UserError);
        assert.equal(e.message, `${f}: refuses to unpickle ${global} (not a tensor checkpoint class)`);
        return true;
      });
      assert.equal(fs.existsSync(marker), false, 'the payload must not have run');
    });
  }

  test('truncated, empty and non-checkpoint files are UserErrors naming the file', () => {
    const dir = tmpDir('pth-bad');
    const zip = fs.readFileSync(fixture('epoch_1.state'));
    const legacy = fs.readFileSync(fixture('plain_legacy.pth'));
    const cases: [string, Uint8Array, RegExp][] = [
      ['zip-half.pth', zip.subarray(0, zip.length >> 1), /not a readable PyTorch zip checkpoint/],
      ['zip-no-end.pth', zip.subarray(0, zip.length - 10), /not a readable PyTorch zip checkpoint/],
      ['legacy-half.pth', legacy.subarray(0, legacy.length >> 1), /truncated/],
      ['legacy-last-byte.pth', legacy.subarray(0, legacy.length - 1), /truncated in storage/],
      ['empty.pth', new Uint8Array(0), /not a PyTorch checkpoint/],
      ['text.pth', Buffer.from('hello world'), /not a PyTorch checkpoint/],
      ['plain-pickle.pth', Buffer.from([0x80, 0x02, 0x4b, 0x05, 0x2e]), /invalid magic number/],
    ];
    for (const [name, bytes, re] of cases) {
      const f = path.join(dir, name);
      fs.writeFileSync(f, bytes);
      assert.throws(() => readTorchCheckpoint(f), (e: unknown) => {
        assert.ok(e instanceof UserError, `${name}: ${String(e)}`);
        assert.ok(e.message.startsWith(`${f}: `), e.message);
        assert.match(e.message, re, `${name}: ${e.message}`);
        return true;
      });
    }
    assert.throws(() => readTorchCheckpoint(path.join(dir, 'missing.pth')), /cannot read checkpoint.*ENOENT/);
  });

  test('extractStateDict explains what it found when there is no state dict', () => {
    assert.throws(() => extractStateDict(new PyDict([['epoch', 1n], ['model', 'x']]), 'f.pth'), /f\.pth: no "state_dict" key.*keys: epoch, model/);
    assert.throws(() => extractStateDict([1n], 'f.pth'), /f\.pth: holds a list/);
    assert.throws(() => extractStateDict({ state_dict: { a: 1n } }, 'f.pth'), /state_dict entry a is a int, expected a tensor/);
    const t: HostTensor = { dtype: 'float32', shape: [1], data: Float32Array.from([1]) };
    assert.ok(isHostTensor(extractStateDict({ 'module.conv1.weight': t }).stateDict.get('module.conv1.weight')));
  });
});
