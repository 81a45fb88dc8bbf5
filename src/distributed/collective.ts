import { randomInt } from 'node:crypto';

/**
 * The collective-communication interface shared by the data-parallel transports: 'local' (worker
 * processes on one machine joined in a ring over Unix sockets, src/distributed/local.ts), 'mpi'
 * (Open MPI through koffi, src/distributed/mpi.ts) and 'single' (one process, every op a no-op).
 */
export type TransportKind = 'local' | 'mpi' | 'single';

export interface Collective {
  readonly rank: number;
  readonly worldSize: number;
  readonly transport: TransportKind;
  /** Element-wise sum over all ranks, in place; the result is bitwise identical on every rank. */
  allReduceSum(buf: Float32Array): Promise<void>;
  /** Overwrites buf on every rank with root's buf (same length on all ranks). */
  broadcast(buf: Uint8Array | Float32Array, root: number): Promise<void>;
  /** Resolves on a rank only once every rank has entered the barrier. */
  barrier(): Promise<void>;
  /** Releases sockets / finalises MPI. Call once, after the last collective op, on every rank. */
  close(): Promise<void>;
}

/**
 * Exit code a worker should use when it stops because a peer vanished (CollectiveError with
 * peerLost). The launcher treats such exits as consequences, not causes, when it names the worker
 * that brought the run down.
 */
export const EXIT_PEER_LOST = 75;

/** A collective op failed: a peer disconnected, ranks called different ops, or MPI reported an error. */
export class CollectiveError extends Error {
  constructor(message: string, readonly peerLost = false) {
    super(message);
    this.name = 'CollectiveError';
  }
}

/** The world of one process: sums and broadcasts are identities. */
export class SingleCollective implements Collective {
  readonly rank = 0;
  readonly worldSize = 1;
  readonly transport = 'single' as const;
  async allReduceSum(_buf: Float32Array): Promise<void> {}
  async broadcast(_buf: Uint8Array | Float32Array, root: number): Promise<void> {
    if (root !== 0) throw new CollectiveError(`broadcast root ${root} out of range for world size 1`);
  }
  async barrier(): Promise<void> {}
  async close(): Promise<void> {}
}

/** Bytes of a typed array, as a view (no copy). */
export function bytesOf(buf: Uint8Array | Float32Array): Uint8Array {
  return buf instanceof Uint8Array ? buf : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * All-gather of a fixed-size byte string per rank, built on allReduceSum: each rank writes its
 * bytes, as 16-bit integers (exact in float32), into its own slot of a zeroed buffer; the sum of
 * one value and zeros is exact, so every rank receives every rank's bytes unchanged.
 */
export async function allGatherBytes(c: Collective, mine: Uint8Array): Promise<Uint8Array[]> {
  const words = Math.ceil(mine.length / 2);
  const buf = new Float32Array(words * c.worldSize);
  for (let i = 0; i < mine.length; i++) {
    buf[c.rank * words + (i >> 1)] += (i & 1) === 0 ? mine[i] : mine[i] * 256;
  }
  await c.allReduceSum(buf);
  const out: Uint8Array[] = [];
  for (let r = 0; r < c.worldSize; r++) {
    const b = new Uint8Array(mine.length);
    for (let i = 0; i < mine.length; i++) {
      const w = buf[r * words + (i >> 1)];
      b[i] = (i & 1) === 0 ? w & 0xff : (w >> 8) & 0xff;
    }
    out.push(b);
  }
  return out;
}

/**
 * A random seed drawn by rank 0 and shared by every rank: an unseeded data-parallel run must still
 * shuffle and augment the same way on all workers, or their shards of a global batch would not
 * partition it.
 */
export async function sharedRandomSeed(c: Collective): Promise<number> {
  const buf = new Uint8Array(4);
  if (c.rank === 0) new DataView(buf.buffer).setUint32(0, randomInt(2 ** 31));
  await c.broadcast(buf, 0);
  return new DataView(buf.buffer).getUint32(0);
}
