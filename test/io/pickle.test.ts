/**
 * The safe pickle VM and the pickler against bytes produced by CPython's pickle (vectors generated
 * with Python 3.11 `pickle.dumps(..., protocol=N)` and pasted here as hex).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { materialize } from '../../src/io/pytorch/materialize.js';
import { encodeLong, picklePyValue } from '../../src/io/pytorch/pickler.js';
import { PyDict, PyTuple, type PyValue } from '../../src/io/pytorch/py-values.js';
import { decodeLong, unpickle, type Item } from '../../src/io/pytorch/unpickler.js';
import { UserError } from '../../src/util/errors.js';

const hex = (s: string) => Buffer.from(s, 'hex');

function load(bytes: Uint8Array): PyValue {
  const { value } = unpickle(bytes, { source: 'test.pkl' });
  return materialize(value, { littleEndian: true, bytes: () => new Uint8Array(0) }, 'test.pkl');
}

function refuses(bytes: Uint8Array, re: RegExp): void {
  assert.throws(() => load(bytes), (e: unknown) => {
    assert.ok(e instanceof UserError, String(e));
    assert.ok(e.message.startsWith('test.pkl: '), e.message);
    assert.match(e.message, re);
    return true;
  });
}

// pickle.dumps({"a": [1, -1, 300, 70000, 2**31, -2**31-1, 2**70, -2**70, 255, 256, 65535, 65536,
//   -256, 1.0, -0.5, None, True, False, (), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), "é", "", "a"]}, protocol=2)
const SCALARS =
  '80027d710058010000006171015d7102284b014affffffff4d2c014a701101008a0500000080008a05ffffff7fff8a09000000000000000040' +
  '8a090000000000000000c04bff4d00014dffff4a000001004a00ffffff473ff000000000000047bfe00000000000004e8889294b018571034b' +
  '014b028671044b014b024b03877105284b014b024b034b047471065802000000c3a9710758000000007108680165732e';

function scalarsObject(): PyValue {
  return new PyDict([
    ['a', [
      1n, -1n, 300n, 70000n, 2n ** 31n, -(2n ** 31n) - 1n, 2n ** 70n, -(2n ** 70n), 255n, 256n, 65535n, 65536n, -256n,
      1.0, -0.5, null, true, false, new PyTuple([]), new PyTuple([1n]), new PyTuple([1n, 2n]), new PyTuple([1n, 2n, 3n]),
      new PyTuple([1n, 2n, 3n, 4n]), 'é', '', 'a',
    ]],
  ]);
}

describe('unpickler', () => {
  test('decodes every int/float/str/tuple/list/dict encoding CPython uses in protocol 2', () => {
    assert.deepEqual(load(hex(SCALARS)), scalarsObject());
  });

  test('protocol 4 (FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL) OrderedDict', () => {
    // pickle.dumps(OrderedDict([("x", 1), ("y", [2.5])]), protocol=4)
    const v = load(hex('8004953a000000000000008c0b636f6c6c656374696f6e73948c0b4f72646572656444696374949394295294288c0178944b018c0179945d9447400400000000000061752e'));
    assert.deepEqual(v, new PyDict([['x', 1n], ['y', [2.5]]], { ordered: true }));
  });

  test('a self-referencing list does not hang the reader', () => {
    const v = load(hex('80025d71006800612e')) as PyValue[]; // l = []; l.append(l)
    assert.equal(v.length, 1);
    assert.equal(v[0], v);
  });

  test('refuses globals outside the whitelist, however they are spelled', () => {
    refuses(Buffer.from('cposix\nsystem\np0\n.', 'latin1'), /refuses to unpickle posix\.system \(not a tensor checkpoint class\)/);
    // protocol 4 STACK_GLOBAL of os.system
    refuses(hex('80049514000000000000008c05706f736978948c0673797374656d9493942e'), /refuses to unpickle posix\.system/);
    refuses(Buffer.from('\x80\x02cbuiltins\ngetattr\n.', 'latin1'), /refuses to unpickle builtins\.getattr/);
    refuses(Buffer.from('\x80\x02ctorch\nload\n.', 'latin1'), /refuses to unpickle torch\.load/);
    refuses(Buffer.from('\x80\x02ctorch._utils\n_rebuild_tensor_v2x\n.', 'latin1'), /refuses to unpickle torch\._utils\._rebuild_tensor_v2x/);
  });

  test('refuses opcodes torch checkpoints do not use (INST, OBJ, NEWOBJ, text PUT, ...)', () => {
    refuses(Buffer.from('(ios\nsystem\n.', 'latin1'), /refuses pickle opcode 0x69 \(INST\) at byte 1/);
    refuses(Buffer.from('\x80\x02ctorch\nSize\n)\x81.', 'latin1'), /opcode 0x81 \(NEWOBJ\)/);
    refuses(Buffer.from('(o.', 'latin1'), /opcode 0x6f \(OBJ\)/);
    refuses(Buffer.from('\x80\x02Np0\n.', 'latin1'), /opcode 0x70 \(PUT\)/);
    refuses(Buffer.from('\x80\x02\xff.', 'latin1'), /opcode 0xff \(unknown\)/);
  });

  test('whitelisted names are only usable the way checkpoints use them', () => {
    // torch.FloatStorage() called directly
    refuses(Buffer.from('\x80\x02ctorch\nFloatStorage\n)R.', 'latin1'), /torch\.FloatStorage is not callable here/);
    // a class object left in the data
    refuses(Buffer.from('\x80\x02}X\x01\x00\x00\x00kctorch\nTensor\ns.', 'latin1'), /holds torch\.Tensor as a value/);
    // BUILD on a plain dict (would set attributes)
    refuses(Buffer.from('\x80\x02}}b.', 'latin1'), /refuses BUILD of dict/);
    // a persistent id outside a checkpoint
    refuses(Buffer.from('\x80\x02NQ.', 'latin1'), /persistent id/);
    // REDUCE on a non-global
    refuses(Buffer.from('\x80\x02N)R.', 'latin1'), /REDUCE on None/);
  });

  test('malformed pickles fail cleanly', () => {
    refuses(Buffer.from('\x80\x02X\x10\x00\x00\x00abc', 'latin1'), /truncated at byte/);
    refuses(Buffer.from('\x80\x02h\x05.', 'latin1'), /memo 5 not defined/);
    refuses(Buffer.from('\x80\x02.', 'latin1'), /stack underflow/);
    refuses(Buffer.from('\x80\x02t.', 'latin1'), /MARK expected/);
    refuses(Buffer.from('\x80\x02K\x00K\x01K\x02s.', 'latin1'), /SETITEM\(S\) on bigint/);
    refuses(Buffer.from('\x80\x02K\x01s.', 'latin1'), /stack underflow|empty stack/);
    refuses(Buffer.from('\x80\x02', 'latin1'), /truncated/);
  });

  test('tensor rebuild refuses backward hooks or Python state', () => {
    const storage = { kind: 'storage' as const, key: '0', dtype: 'float32' as const, numel: 1, location: 'cpu', elemOffset: 0 };
    // _rebuild_tensor_v2(storage, 0, (1,), (1,), False, OrderedDict([(0, None)]))
    const bytes = Buffer.from(
      '\x80\x02ctorch._utils\n_rebuild_tensor_v2\n(NQK\x00K\x01\x85K\x01\x85\x89ccollections\nOrderedDict\n)RK\x00NstR.',
      'latin1',
    );
    assert.throws(
      () => unpickle(bytes, { source: 'hooks.pth', persistentLoad: (): Item => storage }),
      /hooks\.pth: torch\._utils\._rebuild_tensor_v2 with hooks or metadata/,
    );
  });
});

describe('pickler', () => {
  test('writes exactly the bytes CPython writes (memo, BINGET of repeated strings, int encodings)', () => {
    assert.deepEqual(Buffer.from(picklePyValue(scalarsObject()).pickle), hex(SCALARS));
  });

  test('Python long encoding matches pickle.encode_long', () => {
    const vectors: [bigint, string][] = [
      [0n, ''], [1n, '01'], [-1n, 'ff'], [127n, '7f'], [128n, '8000'], [255n, 'ff00'], [-128n, '80'], [-129n, '7fff'],
      [2n ** 31n, '0000008000'], [-(2n ** 31n) - 1n, 'ffffff7fff'], [2n ** 63n, '000000000000008000'],
      [-(2n ** 63n), '0000000000000080'], [2n ** 70n, '000000000000000040'],
    ];
    for (const [v, h] of vectors) {
      assert.equal(Buffer.from(encodeLong(v)).toString('hex'), h, String(v));
      assert.equal(decodeLong(hex(h)), v, String(v));
    }
  });

  test('shared JS objects are pickled once and referenced (like Python object identity)', () => {
    const shared = [1n];
    const { pickle } = picklePyValue({ a: shared, b: shared });
    const back = load(pickle) as PyDict;
    assert.equal(back.get('a'), back.get('b'));
  });

  test('refuses values Python has no equivalent for', () => {
    assert.throws(() => picklePyValue({ a: undefined as unknown as PyValue }), /cannot pickle a JS undefined/);
    assert.throws(() => picklePyValue(new Date() as unknown as PyValue), /cannot pickle a Date/);
    assert.throws(() => picklePyValue(new PyDict([], { state: new PyDict() })), /plain dict cannot carry pickled state/);
  });
});
