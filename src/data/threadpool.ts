/**
 * sharp runs every decode on libuv's thread pool, which all worker threads share and which has
 * 4 threads unless UV_THREADPOOL_SIZE is set before its first use. Import this module first (the
 * loader does) so that more decode workers than 4 can run at once. A value set by the user wins.
 */
import os from 'node:os';

export const DEFAULT_UV_THREADPOOL_SIZE = Math.min(128, Math.max(4, 2 * os.availableParallelism()));

process.env.UV_THREADPOOL_SIZE ??= String(DEFAULT_UV_THREADPOOL_SIZE);
