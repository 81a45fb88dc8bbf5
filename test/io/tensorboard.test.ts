import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  FILE_VERSION,
  SummaryWriter,
  decodeEvent,
  encodeEvent,
  readEventFile,
  scalarsByTag,
} from '../../src/io/tensorboard.js';
import { frameRecord, maskedCrc32c, unframeRecords } from '../../src/io/tfrecord.js';
import { UserError } from '../../src/util/errors.js';
import { childNodeArgs, srcModuleUrl, tmpDir } from './helpers.js';

function onlyEventFile(dir: string): string {
  const files = fs.readdirSync(dir);
  assert.equal(files.length, 1, `one event file in ${dir}: ${files.join(', ')}`);
  return path.join(dir, files[0]!);
}

describe('TFRecord framing', () => {
  test('masked CRC32C follows the TFRecord definition (CRC32C check value 0xE3069283)', () => {
    // crc32c("123456789") = 0xE3069283; mask = rotr15 + 0xa282ead8 (mod 2^32), computed by hand:
    // rotr(0xE3069283, 15) = 0x2507C60D; + 0xA282EAD8 = 0xC78AB0E5.
    assert.equal(maskedCrc32c(Buffer.from('123456789')), 0xc78ab0e5);
  });

  test('a framed record is length, masked CRC of length, data, masked CRC of data', () => {
    const data = Buffer.from('abc');
    const rec = frameRecord(data);
    assert.equal(rec.length, 8 + 4 + 3 + 4);
    assert.equal(rec.readBigUInt64LE(0), 3n);
    assert.equal(rec.readUInt32LE(8), maskedCrc32c(rec.subarray(0, 8)));
    assert.deepEqual(rec.subarray(12, 15), data);
    assert.equal(rec.readUInt32LE(15), maskedCrc32c(data));
    const back = unframeRecords(Buffer.concat([rec, frameRecord(Buffer.alloc(0))]));
    assert.equal(back.records.length, 2);
    assert.equal(back.truncated, false);
  });
});

describe('Event protobuf', () => {
  test('scalar events use the field numbers of event.proto / summary.proto', () => {
    const bytes = Buffer.from(encodeEvent({ wallTime: 1.5, step: 3, summary: { value: [{ tag: 'a', simpleValue: 0.5 }] } }));
    const expected = Buffer.concat([
      Buffer.from([0x09]), // field 1 (wall_time), wire type 1 (64-bit)
      Buffer.from([0, 0, 0, 0, 0, 0, 0xf8, 0x3f]), // 1.5 as little-endian double
      Buffer.from([0x10, 0x03]), // field 2 (step), varint 3
      Buffer.from([0x2a, 0x0a]), // field 5 (summary), 10 bytes
      Buffer.from([0x0a, 0x08]), //   Summary field 1 (value), 8 bytes
      Buffer.from([0x0a, 0x01, 0x61]), //     Value field 1 (tag) "a"
      Buffer.from([0x15, 0, 0, 0, 0x3f]), //     Value field 2 (simple_value), fixed32 0.5f
    ]);
    assert.deepEqual(bytes, expected);
    const fv = Buffer.from(encodeEvent({ wallTime: 0, step: 0, fileVersion: FILE_VERSION }));
    assert.deepEqual(fv, Buffer.concat([Buffer.from([0x1a, FILE_VERSION.length]), Buffer.from(FILE_VERSION)]));
    assert.deepEqual(decodeEvent(bytes), { wallTime: 1.5, step: 3, summary: { value: [{ tag: 'a', simpleValue: 0.5 }] } });
  });
});

describe('SummaryWriter', () => {
  test('writes a readable event file: file_version first, then each scalar with tag, value, step', () => {
    const dir = tmpDir('tb');
    const w = new SummaryWriter(path.join(dir, 'logs'), { flushSecs: 3600 });
    assert.match(path.basename(w.filePath), new RegExp(`^events\\.out\\.tfevents\\.\\d{10}\\.${os.hostname().replace(/\./g, '\\.')}\\.${process.pid}\\.\\d+$`));
    const logged: [string, number, number][] = [
      ['train/Loss_val', 2.302585, 0],
      ['train/Acc@1_val', 12.5, 256],
      ['test/lr', 0.256, 1],
      ['sparsity/module.layer1.0.conv1', 0.1, 1],
      ['sparsity/module.conv1', 0, 1],
      ['thresh/module.fc', 1e-30, 1],
      ['sparsity/total', -3.75, 2 ** 40],
    ];
    for (const [tag, v, step] of logged) w.addScalar(tag, v, step, 1700000000.25);
    // Buffered: only the file_version record is on disk until flush.
    assert.equal(readEventFile(w.filePath).events.length, 1);
    w.flush();
    assert.equal(readEventFile(w.filePath).events.length, 1 + logged.length);
    w.close();
    const { events, truncated } = readEventFile(w.filePath);
    assert.equal(truncated, false);
    assert.equal(events[0]!.fileVersion, FILE_VERSION);
    assert.ok(Math.abs(events[0]!.wallTime - Date.now() / 1000) < 60);
    assert.equal(events.length, 1 + logged.length);
    logged.forEach(([tag, v, step], i) => {
      const e = events[i + 1]!;
      assert.equal(e.step, step);
      assert.equal(e.wallTime, 1700000000.25);
      assert.deepEqual(e.summary!.value, [{ tag, simpleValue: Math.fround(v) }]);
    });
    const byTag = scalarsByTag(events);
    assert.deepEqual(byTag.get('test/lr'), [{ step: 1, value: Math.fround(0.256), wallTime: 1700000000.25 }]);
    assert.throws(() => w.addScalar('x', 1, 1), /closed/);
  });

  test('flushes by itself when maxQueue events are pending', () => {
    const dir = tmpDir('tb-queue');
    const w = new SummaryWriter(dir, { flushSecs: 3600, maxQueue: 3 });
    w.addScalar('a', 1, 1);
    w.addScalar('a', 2, 2);
    assert.equal(readEventFile(w.filePath).events.length, 1);
    w.addScalar('a', 3, 3);
    assert.equal(readEventFile(w.filePath).events.length, 4);
    w.close();
  });

  test('a corrupted byte is detected by the CRC checks (data and length)', () => {
    const dir = tmpDir('tb-corrupt');
    const w = new SummaryWriter(dir);
    w.addScalar('train/Loss_avg', 1.25, 10);
    w.close();
    const good = fs.readFileSync(w.filePath);
    const firstLen = Number(good.readBigUInt64LE(0));
    const second = 16 + firstLen;
    const flipData = Buffer.from(good);
    flipData[second + 12 + 3]! ^= 0x01; // inside the second record's payload
    fs.writeFileSync(w.filePath, flipData);
    assert.throws(() => readEventFile(w.filePath), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.match(e.message, new RegExp(`^${w.filePath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: corrupt .*data CRC mismatch in the record at byte ${second}`));
      return true;
    });
    const flipLen = Buffer.from(good);
    flipLen[second]! ^= 0x40; // the second record's length
    fs.writeFileSync(w.filePath, flipLen);
    assert.throws(() => readEventFile(w.filePath), /length CRC mismatch/);
  });

  test('a partial last record (writer died mid-write) is skipped and flagged', () => {
    const dir = tmpDir('tb-partial');
    const w = new SummaryWriter(dir);
    w.addScalar('a', 1, 1);
    w.addScalar('a', 2, 2);
    w.close();
    const full = fs.readFileSync(w.filePath);
    for (const cut of [5, 14, 30]) {
      fs.writeFileSync(w.filePath, full.subarray(0, full.length - cut));
      const { events, truncated } = readEventFile(w.filePath);
      assert.equal(truncated, true, `cut ${cut}`);
      assert.deepEqual(events.map((e) => e.summary?.value[0]?.simpleValue), [undefined, 1]);
    }
  });

  test('events flushed before a SIGKILL survive; a normal exit without close() flushes the rest', () => {
    const dir = tmpDir('tb-child');
    const run = (killAfter: boolean) => {
      const logDir = path.join(dir, killAfter ? 'killed' : 'exited');
      const code = `
        import { SummaryWriter } from ${JSON.stringify(srcModuleUrl('io/tensorboard'))};
        const w = new SummaryWriter(${JSON.stringify(logDir)}, { flushSecs: 3600 });
        for (let i = 0; i < 10; i++) w.addScalar('train/Loss_val', i / 2, i);
        w.flush();
        for (let i = 10; i < 15; i++) w.addScalar('train/Loss_val', i / 2, i);
        ${killAfter ? "process.kill(process.pid, 'SIGKILL');" : ''}
      `;
      const r = spawnSync(process.execPath, [...childNodeArgs(), '--input-type=module', '-e', code], { encoding: 'utf8' });
      if (killAfter) assert.equal(r.signal, 'SIGKILL');
      else assert.equal(r.status, 0, r.stderr);
      return readEventFile(onlyEventFile(logDir));
    };
    const killed = run(true);
    assert.equal(killed.truncated, false);
    assert.deepEqual(killed.events.slice(1).map((e) => e.step), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const exited = run(false);
    assert.deepEqual(exited.events.slice(1).map((e) => e.summary!.value[0]!.simpleValue), Array.from({ length: 15 }, (_, i) => i / 2));
  });

  test('reading a missing file is a UserError', () => {
    assert.throws(() => readEventFile('/nonexistent/events.out.tfevents.1'), /cannot read event file.*ENOENT/);
  });
});
