import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';
import { existsSync } from 'node:fs';

/** The repository root, whether tests run from test/ (tsx) or dist/test/ (compiled). */
export const REPO_ROOT = (() => {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(resolve(d, 'package.json'))) d = dirname(d);
  return d;
})();

export const repoPath = (...p: string[]) => resolve(REPO_ROOT, ...p);
