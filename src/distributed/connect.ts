import { type Collective, CollectiveError, EXIT_PEER_LOST, SingleCollective } from './collective.js';
import { connectLocal } from './local.js';
import { exitWhenLauncherGone, workerInfo, type WorkerInfo } from './launcher.js';
import { UserError } from '../util/errors.js';

export type DistributedMode = 'none' | 'local' | 'mpi';

export interface ConnectOptions {
  /** Rendezvous timeout for the local transport (default 300 s). */
  connectTimeoutMs?: number;
  /** See LocalOptions.onPeerLost (default: log the reason to stderr and exit with EXIT_PEER_LOST). */
  onPeerLost?: (err: CollectiveError) => void;
  env?: NodeJS.ProcessEnv;
}

/**
 * The collective of this process:
 * - mode 'mpi' (`--distributed mpi`): MPI_Init through libmpi; rank and size from MPI.
 * - otherwise, started by launchWorkers (STR_TRAIN_* env): the local ring over Unix sockets; also
 *   makes the worker exit if its launcher disappears.
 * - otherwise: a single process.
 */
export async function connectCollective(mode: DistributedMode = 'none', o: ConnectOptions = {}): Promise<Collective> {
  const env = o.env ?? process.env;
  if (mode === 'mpi') {
    const { initMpi } = await import('./mpi.js');
    return initMpi();
  }
  const info: WorkerInfo = workerInfo(env);
  if (info.launcher === 'local') {
    exitWhenLauncherGone(env);
    return connectLocal({
      rank: info.rank,
      worldSize: info.worldSize,
      rendezvous: info.rendezvous as string,
      connectTimeoutMs: o.connectTimeoutMs,
      onPeerLost:
        o.onPeerLost ??
        ((e) => {
          process.stderr.write(`${e.message}\n`);
          process.exit(EXIT_PEER_LOST);
        }),
    });
  }
  if (mode === 'local') {
    throw new UserError('--distributed local is started through --multigpu (e.g. --multigpu 0,1), not by hand');
  }
  if (info.launcher === 'mpi' && info.worldSize > 1) {
    throw new UserError(`this process was started by mpirun (rank ${info.rank} of ${info.worldSize}) but --distributed mpi was not given`);
  }
  return new SingleCollective();
}

/** The exit code a worker should use for an error: EXIT_PEER_LOST when a peer vanished, else 1. */
export function workerExitCode(e: unknown): number {
  if (e instanceof CollectiveError && e.peerLost) return EXIT_PEER_LOST;
  if (e instanceof UserError) return e.exitCode;
  return 1;
}
