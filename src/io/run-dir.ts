import { mkdirSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pyFloat } from './pyformat.js';
import { isAtomicTempFile } from './atomic.js';

export interface RunDirSpec {
  /** Root folder (--log-dir, default `runs`). */
  logDir: string;
  /** The config file's stem (`resnet50-str`). */
  configStem: string;
  name: string;
  pruneRate: number;
  widthMult: number;
}

/** `<log_dir>/<config stem>/<name>/prune_rate=<p>[/width_mult=<w>]` (STR-SPEC §12.1). */
export function runBase(s: RunDirSpec): string {
  let base = join(s.logDir, s.configStem, s.name, `prune_rate=${pyFloat(s.pruneRate)}`);
  if (s.widthMult !== 1) base = join(base, `width_mult=${pyFloat(s.widthMult)}`);
  return base;
}

const taken = (d: string) => existsSync(join(d, 'logs')) || existsSync(join(d, 'checkpoints'));

/**
 * The run folder: `base` if it holds no `logs/` or `checkpoints/` yet, else `base/<n>` for the
 * smallest free n (the reference's numbering). `checkpoints/` is created at once with a
 * non-recursive mkdir, so two runs starting together cannot claim the same folder.
 */
export function allocateRunDir(base: string): string {
  for (let n = -1; ; n++) {
    const dir = n < 0 ? base : join(base, String(n));
    if (taken(dir)) continue;
    mkdirSync(dir, { recursive: true });
    try {
      mkdirSync(join(dir, 'checkpoints'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw e;
    }
    return dir;
  }
}

/** True while a process with this id exists (EPERM: it exists but belongs to another user). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the atomic-write temp files (`.<name>.tmp-<pid>-<hex>`) in a run folder and its
 * `checkpoints/` whose writer process is gone: a run killed while saving leaves one behind, and
 * nothing will ever rename it. Files of live processes are kept. Returns the removed paths.
 */
export function removeStaleTempFiles(dir: string): string[] {
  const removed: string[] = [];
  for (const d of [dir, join(dir, 'checkpoints')]) {
    if (!existsSync(d)) continue;
    for (const name of readdirSync(d)) {
      const m = /\.tmp-(\d+)-[0-9a-f]+$/.exec(name);
      if (!isAtomicTempFile(name) || !m || processAlive(Number(m[1]))) continue;
      rmSync(join(d, name), { force: true });
      removed.push(join(d, name));
    }
  }
  return removed;
}

/** Paths of everything a run writes, in one place. */
export function runPaths(dir: string) {
  return {
    dir,
    settings: join(dir, 'settings.yaml'),
    logs: join(dir, 'logs'),
    checkpoints: join(dir, 'checkpoints'),
    checkpoint: (name: string) => join(dir, 'checkpoints', `${name}.safetensors`),
    sparsityCsv: join(dir, 'layerwise_sparsity.csv'),
    thresholdCsv: join(dir, 'layerwise_threshold.csv'),
  };
}
export type RunPaths = ReturnType<typeof runPaths>;
