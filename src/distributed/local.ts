/**
 * Local transport: the worker processes of one machine form a one-way ring over Unix domain
 * sockets (rank r sends to r+1 and receives from r−1). All-reduce is the classic chunked ring
 * (reduce-scatter, then all-gather), streamed: every received piece is reduced (or stored) in place
 * and forwarded as soon as a segment is complete, so sending, receiving and adding overlap.
 *
 * Bitwise identity across ranks: chunk c is summed exactly once, along the ring in a fixed order
 * starting at rank c, by the ranks it passes through; its owner then circulates the finished bits
 * unchanged in the all-gather. No rank ever adds the same numbers in a different order.
 *
 * Written by hand because no maintained npm package offers process collectives without native
 * code; shared memory would need an addon (Node cannot map memory across processes).
 *
 * Wire format (a byte stream per ring edge, no framing beyond this): every op starts with a
 * 16-byte header [magic, op | root << 8, sequence number, payload bytes] that each rank sends to
 * its successor and checks against its own; ranks that call different ops fail loudly instead of
 * exchanging garbage. The payload of an op follows in ring order; its sizes are implied by the header.
 */
import net from 'node:net';
import { existsSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { type Collective, CollectiveError, bytesOf } from './collective.js';

const MAGIC = 0x43525453; // 'STRC'
const OP_HELLO = 1;
const OP_ALLREDUCE = 2;
const OP_BROADCAST = 3;
const OP_BYE = 4;
const HEADER_BYTES = 16;
const OP_NAMES: Record<number, string> = { [OP_HELLO]: 'hello', [OP_ALLREDUCE]: 'allReduceSum', [OP_BROADCAST]: 'broadcast', [OP_BYE]: 'close' };

export interface LocalOptions {
  rank: number;
  worldSize: number;
  /** Directory holding the ranks' sockets (rank-<r>.sock), created by the launcher. */
  rendezvous: string;
  /** How long to wait for the neighbours to appear (default 300 s: peers may still be loading data). */
  connectTimeoutMs?: number;
  /** Forwarding granularity in bytes (default 256 KiB). */
  segmentBytes?: number;
  /** Receive buffer in bytes (default 1 MiB). */
  recvBytes?: number;
  /**
   * Called once when a neighbour disconnects without closing cleanly, even between ops (the
   * current op, if any, is rejected as well). Lets a worker exit at once instead of at its next op.
   */
  onPeerLost?: (err: CollectiveError) => void;
}

export const socketPath = (dir: string, rank: number) => join(dir, `rank-${rank}.sock`);

function header(op: number, root: number, seq: number, bytes: number): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  h.writeUInt32LE(MAGIC, 0);
  h.writeUInt32LE(op | (root << 8), 4);
  h.writeUInt32LE(seq >>> 0, 8);
  h.writeUInt32LE(bytes, 12);
  return h;
}

function describeHeader(h: Uint8Array): string {
  const b = Buffer.from(h.buffer, h.byteOffset, HEADER_BYTES);
  if (b.readUInt32LE(0) !== MAGIC) return 'bytes that are not a str-train header';
  const w = b.readUInt32LE(4);
  const op = w & 0xff;
  const name = OP_NAMES[op] ?? `op ${op}`;
  const root = op === OP_BROADCAST ? ` from root ${w >>> 8}` : '';
  return `${name}${root} of ${b.readUInt32LE(12)} bytes (op #${b.readUInt32LE(8)})`;
}

/** The receiving side of one op's payload. */
interface Payload {
  /** Consumes bytes from src (not beyond the payload's end); returns how many it took. */
  feed(src: Uint8Array): number;
  readonly done: boolean;
}

/** The ring all-reduce payload as seen by one rank: 2(N−1) received chunks, all but the last forwarded. */
class RingAllReduce implements Payload {
  private readonly u8: Uint8Array;
  private readonly starts: number[] = []; // chunk c = floats [starts[c], starts[c+1])
  private readonly steps: number;
  private t = 0; // current step
  private got = 0; // bytes of the current step received
  private fwd = 0; // bytes of the current step forwarded
  private readonly carry = new Float32Array(1);
  private readonly carryU8 = new Uint8Array(this.carry.buffer);
  private carryLen = 0;
  private scratch = new Float32Array(0);

  constructor(
    private readonly buf: Float32Array,
    private readonly rank: number,
    private readonly n: number,
    private readonly segment: number,
    private readonly send: (bytes: Uint8Array) => void,
  ) {
    this.u8 = bytesOf(buf);
    for (let c = 0; c <= n; c++) this.starts.push(Math.floor((c * buf.length) / n));
    this.steps = 2 * (n - 1);
    this.skipEmpty();
  }

  /** Sends this rank's own chunk, which starts its reduction chain. */
  start(): void {
    const c = this.rank;
    const [a, b] = [this.starts[c] * 4, this.starts[c + 1] * 4];
    if (b > a) this.send(this.u8.subarray(a, b));
  }

  get done(): boolean {
    return this.t >= this.steps;
  }

  private chunk(t: number): number {
    return (((this.rank - t - 1) % this.n) + this.n) % this.n;
  }

  private skipEmpty(): void {
    while (this.t < this.steps) {
      const c = this.chunk(this.t);
      if (this.starts[c + 1] > this.starts[c]) break;
      this.t++;
    }
  }

  feed(src: Uint8Array): number {
    let used = 0;
    while (used < src.length && this.t < this.steps) {
      const c = this.chunk(this.t);
      const base = this.starts[c] * 4;
      const size = this.starts[c + 1] * 4 - base;
      const k = Math.min(src.length - used, size - this.got);
      const piece = src.subarray(used, used + k);
      const reduce = this.t < this.n - 1;
      if (reduce) this.accumulate(piece, base + this.got);
      else this.u8.set(piece, base + this.got);
      used += k;
      this.got += k;
      // forward everything but the last step; reduced bytes only once whole floats are summed
      if (this.t < this.steps - 1) {
        const ready = reduce ? this.got - this.carryLen : this.got;
        if (ready - this.fwd >= this.segment || ready === size) {
          this.send(this.u8.subarray(base + this.fwd, base + ready));
          this.fwd = ready;
        }
      }
      if (this.got === size) {
        this.t++;
        this.got = 0;
        this.fwd = 0;
        this.skipEmpty();
      }
    }
    return used;
  }

  /** buf[at…] += the float32 values in piece (which may split a float across calls or be unaligned). */
  private accumulate(piece: Uint8Array, at: number): void {
    const dst = this.buf;
    let i = 0;
    let f = (at - this.carryLen) >> 2; // float index of the next value to complete
    if (this.carryLen > 0) {
      const k = Math.min(4 - this.carryLen, piece.length);
      this.carryU8.set(piece.subarray(0, k), this.carryLen);
      this.carryLen += k;
      i = k;
      if (this.carryLen < 4) return;
      dst[f] += this.carry[0];
      f++;
      this.carryLen = 0;
    }
    const whole = (piece.length - i) >> 2;
    if (whole > 0) {
      const abs = piece.byteOffset + i;
      let v: Float32Array;
      if ((abs & 3) === 0) {
        v = new Float32Array(piece.buffer, abs, whole);
      } else {
        if (this.scratch.length < whole) this.scratch = new Float32Array(whole);
        new Uint8Array(this.scratch.buffer).set(piece.subarray(i, i + whole * 4));
        v = this.scratch;
      }
      for (let j = 0; j < whole; j++) dst[f + j] += v[j];
      i += whole * 4;
    }
    if (i < piece.length) {
      this.carryU8.set(piece.subarray(i));
      this.carryLen = piece.length - i;
    }
  }
}

/** A chain broadcast from root along the ring; the rank before root does not forward. */
class RingBroadcast implements Payload {
  private got = 0;
  private fwd = 0;
  private readonly size: number;
  constructor(
    private readonly u8: Uint8Array,
    private readonly forward: boolean,
    private readonly segment: number,
    private readonly send: (bytes: Uint8Array) => void,
    receives: boolean,
  ) {
    this.size = receives ? u8.length : 0;
  }
  get done(): boolean {
    return this.got >= this.size;
  }
  feed(src: Uint8Array): number {
    const k = Math.min(src.length, this.size - this.got);
    this.u8.set(src.subarray(0, k), this.got);
    this.got += k;
    if (this.forward && (this.got - this.fwd >= this.segment || this.got === this.size) && this.got > this.fwd) {
      this.send(this.u8.subarray(this.fwd, this.got));
      this.fwd = this.got;
    }
    return k;
  }
}

interface ActiveOp {
  expect: Buffer;
  hdr: Uint8Array;
  hdrGot: number;
  payload: Payload;
  writes: number; // writes of this op not yet handed to the kernel
  resolve: () => void;
  reject: (e: Error) => void;
}

export class LocalCollective implements Collective {
  readonly transport = 'local' as const;
  private seq = 0;
  private active: ActiveOp | null = null;
  private pending: Buffer[] = []; // bytes received while no op was active (socket paused meanwhile)
  private failure: CollectiveError | null = null;
  private closing = false;
  private byeIn = false;
  private byeOut = false;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly segment: number;
  private readonly recvBuf: Buffer;

  private constructor(
    readonly rank: number,
    readonly worldSize: number,
    private readonly opts: LocalOptions,
  ) {
    this.segment = opts.segmentBytes ?? 256 * 1024;
    this.recvBuf = Buffer.allocUnsafeSlow(opts.recvBytes ?? 1 << 20);
  }

  private inSock!: net.Socket; // from rank−1 (we connected to it)
  private outSock!: net.Socket; // to rank+1 (it connected to us)
  private server?: net.Server;

  /** Joins the ring: listens for rank+1, connects to rank−1, and exchanges a hello on each edge. */
  static async connect(opts: LocalOptions): Promise<LocalCollective> {
    const { rank, worldSize } = opts;
    if (!Number.isInteger(worldSize) || worldSize < 1) throw new CollectiveError(`world size ${worldSize} must be a positive integer`);
    if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) throw new CollectiveError(`rank ${rank} out of range for world size ${worldSize}`);
    const c = new LocalCollective(rank, worldSize, opts);
    if (worldSize > 1) await c.join();
    return c;
  }

  private async join(): Promise<void> {
    const { rank, worldSize, rendezvous } = this.opts;
    const timeout = this.opts.connectTimeoutMs ?? 300_000;
    const next = (rank + 1) % worldSize;
    const prev = (rank - 1 + worldSize) % worldSize;
    const path = socketPath(rendezvous, rank);
    if (existsSync(path)) unlinkSync(path);

    const accepted = new Promise<net.Socket>((resolve, reject) => {
      const server = net.createServer((sock) => {
        // the successor announces itself with a hello header: [magic, hello, its rank, world size]
        const hello = Buffer.alloc(HEADER_BYTES);
        let got = 0;
        const onData = (d: Buffer) => {
          const k = Math.min(d.length, HEADER_BYTES - got);
          d.copy(hello, got, 0, k);
          got += k;
          if (got < HEADER_BYTES) return;
          sock.off('data', onData);
          const ok = hello.readUInt32LE(0) === MAGIC && hello.readUInt32LE(4) === OP_HELLO && hello.readUInt32LE(8) === next && hello.readUInt32LE(12) === worldSize;
          if (!ok) {
            sock.destroy();
            reject(new CollectiveError(`rank ${rank}: unexpected peer on ${path} (expected rank ${next} of ${worldSize})`));
            return;
          }
          server.close();
          resolve(sock);
        };
        sock.on('data', onData);
        sock.on('error', () => {});
      });
      server.on('error', (e) => reject(new CollectiveError(`rank ${rank}: cannot listen on ${path}: ${e.message}`)));
      server.listen(path);
      this.server = server;
    });

    const deadline = Date.now() + timeout;
    const connectOnce = () =>
      new Promise<net.Socket>((resolve, reject) => {
        const sock = net.connect({
          path: socketPath(rendezvous, prev),
          onread: { buffer: this.recvBuf, callback: (n: number) => this.onBytes(this.recvBuf.subarray(0, n)) },
        });
        sock.once('connect', () => {
          sock.off('error', reject);
          resolve(sock);
        });
        sock.once('error', reject);
      });
    let inSock: net.Socket | undefined;
    for (let delay = 10; !inSock; delay = Math.min(delay * 2, 200)) {
      try {
        inSock = await connectOnce();
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if ((code !== 'ENOENT' && code !== 'ECONNREFUSED') || Date.now() > deadline) {
          this.server?.close();
          throw new CollectiveError(
            `rank ${rank}: cannot reach rank ${prev} at ${socketPath(rendezvous, prev)} within ${timeout / 1000} s (${code ?? (e as Error).message})`,
          );
        }
        await new Promise((r) => setTimeout(r, delay));
      }
    }
    inSock.write(header(OP_HELLO, 0, rank, worldSize));
    this.inSock = inSock;
    let timer: NodeJS.Timeout | undefined;
    try {
      this.outSock = await Promise.race([
        accepted,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new CollectiveError(`rank ${rank}: rank ${next} did not connect within ${timeout / 1000} s`)), Math.max(0, deadline - Date.now()));
        }),
      ]);
    } catch (e) {
      this.server?.close();
      inSock.destroy();
      throw e;
    } finally {
      clearTimeout(timer);
    }
    if (existsSync(path)) unlinkSync(path);

    const lost = (which: 'in' | 'out', detail?: string) => () => {
      if (this.closing) return;
      // A peer that closed cleanly (bye) has finished all its ops. The successor then needs nothing
      // more from us; the predecessor's data all precedes its bye, so only an op still expecting
      // bytes from it is left hanging.
      if (which === 'out' && this.byeOut) return;
      if (which === 'in' && this.byeIn) {
        const op = this.active;
        if (!op || (op.hdrGot === HEADER_BYTES && op.payload.done)) return;
        this.fail(new CollectiveError(`rank ${rank}: rank ${prev} closed the collective while rank ${rank} still expected data in ${describeHeader(op.expect)}; every rank must call the same collective ops`));
        return;
      }
      const peer = which === 'in' ? prev : next;
      this.fail(new CollectiveError(`rank ${rank}: lost connection to rank ${peer}${detail ? ` (${detail})` : ''}; did that worker exit?`, true));
    };
    this.inSock.on('error', (e) => lost('in', e.message)());
    this.inSock.on('close', lost('in'));
    this.inSock.on('end', lost('in'));
    // the successor only ever sends us a bye header on this edge
    let back = Buffer.alloc(0);
    this.outSock.on('data', (d: Buffer) => {
      back = Buffer.concat([back, d]).subarray(0, HEADER_BYTES);
      if (back.length === HEADER_BYTES && back.readUInt32LE(0) === MAGIC && (back.readUInt32LE(4) & 0xff) === OP_BYE) this.byeOut = true;
    });
    this.outSock.on('error', (e) => lost('out', e.message)());
    this.outSock.on('close', lost('out'));
  }

  private fail(err: CollectiveError): void {
    if (this.failure) return;
    this.failure = err;
    const op = this.active;
    this.active = null;
    op?.reject(err);
    this.inSock?.destroy();
    this.outSock?.destroy();
    if (err.peerLost) this.opts.onPeerLost?.(err);
  }

  /** Receive path (called from the socket's onread): hands bytes to the active op or parks them. */
  private onBytes(src: Uint8Array): boolean {
    let off = 0;
    while (off < src.length) {
      const op = this.active;
      if (!op || (op.hdrGot === HEADER_BYTES && op.payload.done)) {
        this.pending.push(Buffer.from(src.subarray(off))); // copy: recvBuf is reused by the next read
        return this.checkBye();
      }
      off += this.feedOp(op, src.subarray(off));
      if (this.failure) return false;
      this.maybeComplete(op);
    }
    return true;
  }

  /**
   * Between ops: a clean shutdown of the predecessor (its bye header) is consumed here; any other
   * parked bytes belong to the next op, and reading pauses until it starts (returns false).
   */
  private checkBye(): boolean {
    const head = Buffer.concat(this.pending);
    if (head.length < HEADER_BYTES) return true;
    if (head.readUInt32LE(0) === MAGIC && (head.readUInt32LE(4) & 0xff) === OP_BYE) {
      this.byeIn = true;
      this.pending = head.length > HEADER_BYTES ? [head.subarray(HEADER_BYTES)] : [];
      return this.pending.length === 0;
    }
    return false;
  }

  private feedOp(op: ActiveOp, src: Uint8Array): number {
    let used = 0;
    if (op.hdrGot < HEADER_BYTES) {
      const k = Math.min(src.length, HEADER_BYTES - op.hdrGot);
      op.hdr.set(src.subarray(0, k), op.hdrGot);
      op.hdrGot += k;
      used = k;
      if (op.hdrGot < HEADER_BYTES) return used;
      if (!op.expect.equals(op.hdr)) {
        const prev = (this.rank - 1 + this.worldSize) % this.worldSize;
        this.fail(new CollectiveError(`collective mismatch: rank ${this.rank} is in ${describeHeader(op.expect)} but rank ${prev} sent ${describeHeader(op.hdr)}; every rank must call the same collective ops in the same order with the same sizes`));
        return used;
      }
    }
    return used + op.payload.feed(src.subarray(used));
  }

  private maybeComplete(op: ActiveOp): void {
    if (this.active === op && op.hdrGot === HEADER_BYTES && op.payload.done && op.writes === 0) {
      this.active = null;
      op.resolve();
    }
  }

  private write(op: ActiveOp, bytes: Uint8Array): void {
    op.writes++;
    // no copy: the bytes stay untouched until the write callback (see the ring's causality in feed)
    this.outSock.write(bytes, (err) => {
      op.writes--;
      if (err) this.fail(new CollectiveError(`rank ${this.rank}: send failed: ${err.message}`, true));
      else this.maybeComplete(op);
    });
  }

  /** Runs one op after the previous one finished (ops are strictly sequential on every rank). */
  private run(opCode: number, root: number, bytes: number, makePayload: (send: (b: Uint8Array) => void) => Payload & { start?(): void }): Promise<void> {
    const p = this.queue.then(
      () =>
        new Promise<void>((resolve, reject) => {
          if (this.failure) return reject(this.failure);
          if (this.closing) return reject(new CollectiveError(`rank ${this.rank}: collective used after close()`));
          if (this.byeIn || this.byeOut) return reject(new CollectiveError(`rank ${this.rank}: collective used after a peer called close()`));
          if (bytes > 0xffffffff) return reject(new CollectiveError(`collective payload of ${bytes} bytes exceeds 4 GiB`));
          const expect = header(opCode, root, ++this.seq, bytes);
          const op: ActiveOp = { expect, hdr: new Uint8Array(HEADER_BYTES), hdrGot: 0, payload: undefined as unknown as Payload, writes: 0, resolve, reject };
          op.payload = makePayload((b) => this.write(op, b));
          this.active = op;
          this.write(op, expect);
          (op.payload as { start?(): void }).start?.();
          const parked = this.pending;
          this.pending = [];
          for (let i = 0; i < parked.length; i++) {
            if (!this.onBytes(parked[i])) {
              this.pending.push(...parked.slice(i + 1));
              break;
            }
          }
          if (this.pending.length === 0 && !this.failure) this.inSock.resume();
          this.maybeComplete(op);
        }),
    );
    this.queue = p.catch(() => {});
    return p;
  }

  allReduceSum(buf: Float32Array): Promise<void> {
    if (this.worldSize === 1) return this.failure ? Promise.reject(this.failure) : Promise.resolve();
    return this.run(OP_ALLREDUCE, 0, buf.byteLength, (send) => new RingAllReduce(buf, this.rank, this.worldSize, this.segment, send));
  }

  broadcast(buf: Uint8Array | Float32Array, root: number): Promise<void> {
    if (!Number.isInteger(root) || root < 0 || root >= this.worldSize) {
      return Promise.reject(new CollectiveError(`broadcast root ${root} out of range for world size ${this.worldSize}`));
    }
    if (this.worldSize === 1) return Promise.resolve();
    const u8 = bytesOf(buf);
    const last = (root - 1 + this.worldSize) % this.worldSize;
    return this.run(OP_BROADCAST, root, u8.length, (send) => {
      const payload = new RingBroadcast(u8, this.rank !== last, this.segment, send, this.rank !== root);
      return Object.assign(payload, { start: () => (this.rank === root && u8.length > 0 ? send(u8) : undefined) });
    });
  }

  /** An all-reduce with one element per rank: every chunk, hence every result, needs every rank. */
  barrier(): Promise<void> {
    return this.allReduceSum(new Float32Array(this.worldSize));
  }

  async close(): Promise<void> {
    await this.queue;
    if (this.closing) return;
    this.closing = true;
    if (this.worldSize === 1) return;
    this.server?.close();
    if (this.failure) return;
    const bye = header(OP_BYE, 0, 0, 0);
    await Promise.all(
      [this.outSock, this.inSock].map(
        (s) =>
          new Promise<void>((resolve) => {
            if (s.destroyed) return resolve();
            // the peer answers our end with its own once it has read everything; don't wait forever
            const timer = setTimeout(() => s.destroy(), 5000);
            s.once('close', () => {
              clearTimeout(timer);
              resolve();
            });
            s.end(bye);
          }),
      ),
    );
  }
}

export function connectLocal(opts: LocalOptions): Promise<LocalCollective> {
  return LocalCollective.connect(opts);
}
