/** Shared by the io tests: fixture paths (work from test/ via tsx and from dist/test/) and torch detection. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

function findRepoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && JSON.parse(fs.readFileSync(pkg, 'utf8')).name === 'str-train') return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('repository root not found');
    dir = up;
  }
}

export const REPO_ROOT = findRepoRoot();
export const TORCH_FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'torch');

export function fixture(name: string): string {
  return path.join(TORCH_FIXTURES, name);
}

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `str-train-${prefix}-`));
}

/** Node arguments a child process needs to import this repo's modules (tsx when running from .ts). */
export function childNodeArgs(): string[] {
  return import.meta.url.endsWith('.ts') ? ['--import', 'tsx'] : [];
}

/** URL of a src module as seen from this file (…/src/io/x.js, or .ts under tsx). */
export function srcModuleUrl(rel: string): string {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`../../src/${rel}${ext}`, import.meta.url).href;
}

let torchPython: string | null | undefined;

/** A Python interpreter with torch importable (Debian's python3-torch), or null. */
export function findTorchPython(): string | null {
  if (torchPython !== undefined) return torchPython;
  const candidates = [process.env.STR_TRAIN_TORCH_PYTHON, '/usr/bin/python3', 'python3'].filter(
    (c): c is string => !!c,
  );
  torchPython = null;
  for (const c of candidates) {
    const r = spawnSync(c, ['-c', 'import torch'], { encoding: 'utf8', timeout: 60_000 });
    if (r.status === 0) {
      torchPython = c;
      break;
    }
  }
  return torchPython;
}
