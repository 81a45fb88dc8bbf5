/**
 * TensorBoard event files without libtensorflow: TFRecord-framed `tensorflow.Event` protobufs.
 * No maintained npm package writes them without native TensorFlow, so this is a small writer on
 * top of protobufjs (encoding) and @aws-crypto/crc32c (framing, see tfrecord.ts).
 *
 * Schema: the subset of tensorflow/core/util/event.proto and
 * tensorflow/core/framework/summary.proto that scalars need, with the real field numbers.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import protobuf from 'protobufjs';
import { frameRecord, RecordCorruptError, unframeRecords } from './tfrecord.js';
import { UserError, readUserFile } from '../util/errors.js';

const SCHEMA = `
syntax = "proto3";
package tensorflow;
message Event {
  double wall_time = 1;
  int64 step = 2;
  oneof what {
    string file_version = 3;
    Summary summary = 5;
  }
}
message Summary {
  message Value {
    string node_name = 7;
    string tag = 1;
    oneof value {
      float simple_value = 2;
    }
  }
  repeated Value value = 1;
}
`;

const EventType = protobuf.parse(SCHEMA, { keepCase: false }).root.lookupType('tensorflow.Event');

export const FILE_VERSION = 'brain.Event:2';

export interface TbSummaryValue {
  tag: string;
  simpleValue?: number;
}

export interface TbEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  summary?: { value: TbSummaryValue[] };
}

export function encodeEvent(e: TbEvent): Uint8Array {
  const err = EventType.verify(e);
  if (err) throw new Error(`invalid TensorBoard event: ${err}`);
  // proto3 omits fields holding their default value (as TensorFlow's writer does).
  const msg: Record<string, unknown> = {};
  if (e.wallTime !== 0) msg.wallTime = e.wallTime;
  if (e.step !== 0) msg.step = e.step;
  if (e.fileVersion !== undefined) msg.fileVersion = e.fileVersion;
  if (e.summary !== undefined) msg.summary = e.summary;
  return EventType.encode(EventType.create(msg)).finish();
}

export function decodeEvent(data: Uint8Array): TbEvent {
  const msg = EventType.decode(data);
  const o = EventType.toObject(msg, { longs: Number, defaults: true, oneofs: false }) as {
    wallTime: number;
    step: number;
    fileVersion?: string;
    summary?: { value?: { tag: string; simpleValue?: number }[] };
  };
  const ev: TbEvent = { wallTime: o.wallTime, step: o.step };
  if (o.fileVersion !== undefined && o.fileVersion !== '') ev.fileVersion = o.fileVersion;
  if (o.summary) {
    ev.summary = {
      value: (o.summary.value ?? []).map((v) => {
        const out: TbSummaryValue = { tag: v.tag };
        if (v.simpleValue !== undefined && v.simpleValue !== null) out.simpleValue = v.simpleValue;
        return out;
      }),
    };
  }
  return ev;
}

export interface SummaryWriterOptions {
  /** Buffered events are written at least this often (seconds). Default 10. */
  flushSecs?: number;
  /** Write as soon as this many events are buffered. Default 100. */
  maxQueue?: number;
  /** Appended to the file name (like torch's filename_suffix). */
  filenameSuffix?: string;
}

let fileCounter = 0;
const openWriters = new Set<SummaryWriter>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A normal exit (also process.exit) still writes what is buffered; SIGKILL loses at most
  // flushSecs worth of events and can leave a partial last record, which the reader tolerates.
  process.on('exit', () => {
    for (const w of openWriters) {
      try {
        w.close();
      } catch {
        /* exiting anyway */
      }
    }
  });
}

/**
 * Writes scalars to `<logDir>/events.out.tfevents.<secs>.<hostname>.<pid>.<n>` (torch's
 * SummaryWriter naming). Writes are buffered and flushed every `flushSecs`, when `maxQueue`
 * events are pending, on flush()/close(), and at process exit.
 */
export class SummaryWriter {
  readonly logDir: string;
  readonly filePath: string;
  private fd: number | undefined;
  private pending: Buffer[] = [];
  private readonly maxQueue: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(logDir: string, opts: SummaryWriterOptions = {}) {
    this.logDir = logDir;
    this.maxQueue = opts.maxQueue ?? 100;
    fs.mkdirSync(logDir, { recursive: true });
    const secs = Math.floor(Date.now() / 1000).toString().padStart(10, '0');
    const name = `events.out.tfevents.${secs}.${os.hostname()}.${process.pid}.${fileCounter++}${opts.filenameSuffix ?? ''}`;
    this.filePath = path.join(logDir, name);
    this.fd = fs.openSync(this.filePath, 'wx');
    this.pending.push(frameRecord(encodeEvent({ wallTime: Date.now() / 1000, step: 0, fileVersion: FILE_VERSION })));
    this.flush();
    const secsBetween = opts.flushSecs ?? 10;
    this.timer = setInterval(() => this.flush(), secsBetween * 1000);
    this.timer.unref();
    openWriters.add(this);
    installExitHook();
  }

  /** Logs one scalar (stored as float32 simple_value, like TensorBoard's). */
  addScalar(tag: string, value: number, step: number, wallTime: number = Date.now() / 1000): void {
    if (this.fd === undefined) throw new Error(`SummaryWriter for ${this.filePath} is closed`);
    if (!Number.isSafeInteger(step)) throw new Error(`addScalar ${tag}: step must be an integer, got ${step}`);
    const ev: TbEvent = { wallTime, step, summary: { value: [{ tag, simpleValue: Number(value) }] } };
    this.pending.push(frameRecord(encodeEvent(ev)));
    if (this.pending.length >= this.maxQueue) this.flush();
  }

  /** Writes buffered events to the file. */
  flush(): void {
    if (this.fd === undefined || this.pending.length === 0) return;
    const buf = Buffer.concat(this.pending);
    this.pending = [];
    let off = 0;
    while (off < buf.length) off += fs.writeSync(this.fd, buf, off, buf.length - off);
  }

  close(): void {
    if (this.fd === undefined) return;
    this.flush();
    if (this.timer) clearInterval(this.timer);
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    this.fd = undefined;
    openWriters.delete(this);
  }
}

export interface EventFileContent {
  events: TbEvent[];
  /** The file ends inside a record (writer killed mid-write); that partial record is skipped. */
  truncated: boolean;
}

/** Reads an event file record by record, checking both CRCs of every record (UserError on mismatch). */
export function readEventFile(file: string): EventFileContent {
  const buf = readUserFile(file, 'event file');
  let un: ReturnType<typeof unframeRecords>;
  try {
    un = unframeRecords(buf);
  } catch (e) {
    if (e instanceof RecordCorruptError) throw new UserError(`${file}: corrupt TensorBoard event file (${e.message})`);
    throw e;
  }
  const events: TbEvent[] = [];
  for (const r of un.records) {
    try {
      events.push(decodeEvent(r.data));
    } catch (e) {
      throw new UserError(`${file}: record at byte ${r.offset} is not a tensorflow.Event (${(e as Error).message})`);
    }
  }
  return { events, truncated: un.truncated };
}

export interface ScalarPoint {
  step: number;
  value: number;
  wallTime: number;
}

/** Groups the scalar values of events by tag, in file order. */
export function scalarsByTag(events: readonly TbEvent[]): Map<string, ScalarPoint[]> {
  const out = new Map<string, ScalarPoint[]>();
  for (const e of events) {
    for (const v of e.summary?.value ?? []) {
      if (v.simpleValue === undefined) continue;
      let list = out.get(v.tag);
      if (!list) out.set(v.tag, (list = []));
      list.push({ step: e.step, value: v.simpleValue, wallTime: e.wallTime });
    }
  }
  return out;
}
