/**
 * MPI transport: Open MPI's libmpi loaded at run time through koffi (a maintained FFI with prebuilt
 * binaries), for runs started as `mpirun -np N npx str-train … --distributed mpi`.
 *
 * Bitwise identity across ranks: by default a sum is one MPI_Allreduce. Open MPI's algorithms for
 * a commutative op (coll/tuned: linear and non-overlapping = reduce + bcast; recursive doubling,
 * where both partners add the same two partial sums and IEEE addition is commutative; ring and
 * segmented ring, where each block is reduced along one chain and then copied; Rabenseifner =
 * reduce-scatter + all-gather) all leave the same bits on every rank, and the tests check it for
 * 2 and 3 ranks. The MPI standard does not promise it, though (vendor components such as hcoll
 * might differ), so mode 'reduce-scatter' (STR_TRAIN_MPI_SUM=reduce-scatter) offers identity by
 * construction: MPI_Reduce_scatter_block reduces every block on exactly one rank and MPI_Allgather
 * copies its bits to the others. It is 2–4× slower with Open MPI 4.1's default algorithms.
 *
 * Only Open MPI is supported: its handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM) are addresses of
 * exported globals (ompi_mpi_comm_world …); MPICH encodes them as integers instead.
 */
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { type Collective, CollectiveError, bytesOf } from './collective.js';
import { UserError } from '../util/errors.js';

// koffi is CommonJS; only its call surface is typed here (loaded lazily so plain runs never touch it)
interface KoffiFn {
  (...args: unknown[]): number;
  async(...args: unknown[]): void;
}
interface KoffiLib {
  func(sig: string): KoffiFn;
  symbol(name: string, type: string): unknown;
}
interface Koffi {
  load(path: string, opts?: { global?: boolean; lazy?: boolean }): KoffiLib;
}

const MPI_THREAD_SERIALIZED = 2;
const MPI_IN_PLACE = 1; // ((void *) 1) in Open MPI's mpi.h
const MAX_COUNT = 0x7fffffff; // MPI counts are C ints

export type MpiSumMode = 'reduce-scatter' | 'allreduce';

export interface MpiOptions {
  /** libmpi to load (default: $STR_TRAIN_LIBMPI, then libmpi.so.40, libmpi.so). */
  library?: string;
  /** How sums are computed (default 'allreduce', or $STR_TRAIN_MPI_SUM). */
  sum?: MpiSumMode;
}

interface MpiApi {
  initThread: KoffiFn;
  initialized: KoffiFn;
  finalized: KoffiFn;
  finalize: KoffiFn;
  commRank: KoffiFn;
  commSize: KoffiFn;
  allreduce: KoffiFn;
  reduceScatterBlock: KoffiFn;
  allgather: KoffiFn;
  bcast: KoffiFn;
  barrier: KoffiFn;
  world: unknown;
  float: unknown;
  byte: unknown;
  sum: unknown;
}

function loadApi(library?: string): MpiApi {
  const require = createRequire(import.meta.url);
  let koffi: Koffi;
  try {
    koffi = require('koffi') as Koffi;
  } catch (e) {
    throw new UserError(`--distributed mpi needs the npm package koffi, which failed to load: ${(e as Error).message}`);
  }
  const candidates = library ? [library] : [process.env.STR_TRAIN_LIBMPI, 'libmpi.so.40', 'libmpi.so'].filter((x): x is string => !!x);
  let lib: KoffiLib | undefined;
  const errors: string[] = [];
  for (const name of candidates) {
    try {
      // global: Open MPI's plugins (mca_*.so) resolve libmpi's symbols from the global namespace
      lib = koffi.load(name, { global: true });
      break;
    } catch (e) {
      errors.push(`${name}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  if (!lib) {
    throw new UserError(
      `--distributed mpi: cannot load Open MPI's libmpi (${errors.join('; ')}); install it (Debian: apt-get install openmpi-bin libopenmpi-dev) or set STR_TRAIN_LIBMPI to its path`,
    );
  }
  const sym = (name: string) => {
    try {
      return lib.symbol(name, 'char');
    } catch {
      throw new UserError(`--distributed mpi: ${candidates[0]} has no symbol ${name}; only Open MPI is supported (not MPICH)`);
    }
  };
  return {
    initThread: lib.func('int MPI_Init_thread(void *argc, void *argv, int required, _Out_ int *provided)'),
    initialized: lib.func('int MPI_Initialized(_Out_ int *flag)'),
    finalized: lib.func('int MPI_Finalized(_Out_ int *flag)'),
    finalize: lib.func('int MPI_Finalize()'),
    commRank: lib.func('int MPI_Comm_rank(void *comm, _Out_ int *rank)'),
    commSize: lib.func('int MPI_Comm_size(void *comm, _Out_ int *size)'),
    allreduce: lib.func('int MPI_Allreduce(void *sendbuf, void *recvbuf, int count, void *type, void *op, void *comm)'),
    reduceScatterBlock: lib.func('int MPI_Reduce_scatter_block(void *sendbuf, void *recvbuf, int count, void *type, void *op, void *comm)'),
    allgather: lib.func('int MPI_Allgather(void *sendbuf, int scount, void *stype, void *recvbuf, int rcount, void *rtype, void *comm)'),
    bcast: lib.func('int MPI_Bcast(void *buf, int count, void *type, int root, void *comm)'),
    barrier: lib.func('int MPI_Barrier(void *comm)'),
    world: sym('ompi_mpi_comm_world'),
    float: sym('ompi_mpi_float'),
    byte: sym('ompi_mpi_byte'),
    sum: sym('ompi_mpi_op_sum'),
  };
}

export class MpiCollective implements Collective {
  readonly transport = 'mpi' as const;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly api: MpiApi,
    readonly rank: number,
    readonly worldSize: number,
    /** Calls run on koffi's worker threads (MPI_THREAD_SERIALIZED) so the event loop stays free. */
    private readonly threaded: boolean,
    readonly sumMode: MpiSumMode,
  ) {}

  /** MPI_Init (once per process) and the world communicator's rank and size. */
  static init(opts: MpiOptions = {}): MpiCollective {
    const envMode = process.env.STR_TRAIN_MPI_SUM;
    const mode = opts.sum ?? (envMode as MpiSumMode | undefined) ?? 'allreduce';
    if (mode !== 'reduce-scatter' && mode !== 'allreduce') {
      throw new UserError(`STR_TRAIN_MPI_SUM=${envMode}: expected reduce-scatter or allreduce`);
    }
    const api = loadApi(opts.library);
    const flag = [0];
    api.initialized(flag);
    let threaded = true;
    if (!flag[0]) {
      const provided = [0];
      check(api.initThread(null, null, MPI_THREAD_SERIALIZED, provided), 'MPI_Init_thread');
      threaded = provided[0] >= MPI_THREAD_SERIALIZED;
    }
    const r = [0];
    const s = [0];
    check(api.commRank(api.world, r), 'MPI_Comm_rank');
    check(api.commSize(api.world, s), 'MPI_Comm_size');
    return new MpiCollective(api, r[0], s[0], threaded, mode);
  }

  private call(fn: KoffiFn, name: string, ...args: unknown[]): Promise<void> {
    if (!this.threaded) {
      check(fn(...args), name);
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      fn.async(...args, (err: unknown, rc: number) => {
        if (err) reject(new CollectiveError(`${name}: ${(err as Error).message ?? err}`));
        else if (rc !== 0) reject(new CollectiveError(`${name} failed with MPI error code ${rc}`));
        else resolve();
      });
    });
  }

  /** Ops are strictly sequential (MPI_THREAD_SERIALIZED: one thread in MPI at a time). */
  private run(f: () => Promise<void>): Promise<void> {
    const p = this.queue.then(() => {
      if (this.closed) throw new CollectiveError('MPI collective used after close()');
      return f();
    });
    this.queue = p.catch(() => {});
    return p;
  }

  allReduceSum(buf: Float32Array): Promise<void> {
    if (this.worldSize === 1 || buf.length === 0) return this.run(async () => {});
    const { api } = this;
    return this.run(async () => {
      if (this.sumMode === 'allreduce') {
        for (let off = 0; off < buf.length; off += MAX_COUNT) {
          const part = buf.subarray(off, Math.min(buf.length, off + MAX_COUNT));
          await this.call(api.allreduce, 'MPI_Allreduce', MPI_IN_PLACE, part, part.length, api.float, api.sum, api.world);
        }
        return;
      }
      // blocks of equal size per rank; the < worldSize leftover elements go through a padded buffer
      const n = this.worldSize;
      const maxBlock = Math.floor(MAX_COUNT / n);
      const bulk = buf.length - (buf.length % n);
      for (let off = 0; off < bulk; ) {
        const block = Math.min(maxBlock, (bulk - off) / n);
        await this.reduceScatterGather(buf.subarray(off, off + block * n), block);
        off += block * n;
      }
      if (bulk < buf.length) {
        const tail = new Float32Array(n);
        tail.set(buf.subarray(bulk));
        await this.reduceScatterGather(tail, 1);
        buf.set(tail.subarray(0, buf.length - bulk), bulk);
      }
    });
  }

  /** part = worldSize blocks; rank r reduces block r in place, then all-gather copies the bits out. */
  private async reduceScatterGather(part: Float32Array, block: number): Promise<void> {
    const { api } = this;
    await this.call(api.reduceScatterBlock, 'MPI_Reduce_scatter_block', MPI_IN_PLACE, part, block, api.float, api.sum, api.world);
    // in place, the result lands at the start of recvbuf; in-place all-gather wants it at rank·block
    if (this.rank !== 0) part.copyWithin(this.rank * block, 0, block);
    await this.call(api.allgather, 'MPI_Allgather', MPI_IN_PLACE, 0, api.float, part, block, api.float, api.world);
  }

  broadcast(buf: Uint8Array | Float32Array, root: number): Promise<void> {
    if (!Number.isInteger(root) || root < 0 || root >= this.worldSize) {
      return Promise.reject(new CollectiveError(`broadcast root ${root} out of range for world size ${this.worldSize}`));
    }
    const u8 = bytesOf(buf);
    const { api } = this;
    return this.run(async () => {
      for (let off = 0; off < u8.length; off += MAX_COUNT) {
        const part = u8.subarray(off, Math.min(u8.length, off + MAX_COUNT));
        await this.call(api.bcast, 'MPI_Bcast', part, part.length, api.byte, root, api.world);
      }
    });
  }

  barrier(): Promise<void> {
    return this.run(() => this.call(this.api.barrier, 'MPI_Barrier', this.api.world));
  }

  async close(): Promise<void> {
    await this.queue;
    if (this.closed) return;
    this.closed = true;
    const f = [0];
    this.api.finalized(f);
    if (!f[0]) check(this.api.finalize(), 'MPI_Finalize');
  }
}

function check(rc: number, name: string): void {
  if (rc !== 0) throw new CollectiveError(`${name} failed with MPI error code ${rc}`);
}

/**
 * Why MPI runs are impossible here (no mpirun on PATH, koffi or libmpi not loadable), or undefined
 * when they are possible. Loads libmpi without initialising it; for tests and benchmarks.
 */
export function mpiUnavailableReason(library?: string): string | undefined {
  const r = spawnSync('mpirun', ['--version'], { encoding: 'utf8', timeout: 15_000 });
  if (r.error || r.status !== 0) return 'mpirun is not on PATH (Debian: apt-get install openmpi-bin libopenmpi-dev)';
  try {
    loadApi(library);
  } catch (e) {
    return (e as Error).message;
  }
  return undefined;
}

/**
 * Arguments mpirun needs to start N local ranks here: root needs an explicit opt-in, and binding
 * is off because Open MPI's default (each rank pinned to one core for N ≤ 2) would squeeze Node's
 * threads (GC, libuv, koffi's call thread, decode workers, tfjs-node's op pool) onto one core.
 */
export function mpirunArgs(np: number): string[] {
  const asRoot = process.getuid?.() === 0 ? ['--allow-run-as-root'] : [];
  return [...asRoot, '--oversubscribe', '--bind-to', 'none', '-np', String(np)];
}

/** MPI_Init and the world communicator; a UserError when libmpi (or koffi) cannot be loaded. */
export function initMpi(opts?: MpiOptions): MpiCollective {
  return MpiCollective.init(opts);
}
