/**
 * ImageFolder scanning as torchvision does it: classes = sorted sub-folder names, each class
 * folder walked recursively (following links) in sorted order, files kept by extension.
 * Linear in the number of files (plus the sorts); only relative paths and labels are held.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../util/errors.js';

export const IMG_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp'] as const;

export function hasImageExtension(name: string): boolean {
  const lower = name.toLowerCase();
  return IMG_EXTENSIONS.some((e) => lower.endsWith(e));
}

/** Python's str ordering (by code point), which differs from JS's UTF-16 order only for astral characters. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // A surrogate (0xD800–0xDFFF) stands for a code point above every BMP character.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

export interface ScannedSplit {
  /** Absolute or as-given split folder. */
  root: string;
  classes: string[];
  /** Paths relative to root, in dataset order. */
  files: string[];
  /** Class index per file. */
  labels: Int32Array;
  /** Classes without any image. */
  emptyClasses: string[];
}

async function isDirectory(p: string, direntIsDir: boolean, direntIsLink: boolean): Promise<boolean> {
  if (direntIsDir) return true;
  if (!direntIsLink) return false;
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false; // dangling link
  }
}

/** Files under one class folder: os.walk(followlinks=True) sorted by folder path, files sorted. */
async function walkClass(root: string, cls: string): Promise<string[]> {
  const groups: { dir: string; files: string[] }[] = [];
  const seen = new Set<string>();
  const visit = async (rel: string): Promise<void> => {
    const abs = path.join(root, rel);
    const st = await stat(abs);
    const key = `${st.dev}:${st.ino}`;
    if (seen.has(key)) return; // a link cycle; os.walk would loop forever
    seen.add(key);
    const entries = await readdir(abs, { withFileTypes: true });
    const files: string[] = [];
    const dirs: string[] = [];
    for (const e of entries) {
      const child = path.join(rel, e.name);
      if (await isDirectory(path.join(root, child), e.isDirectory(), e.isSymbolicLink())) dirs.push(child);
      else if (hasImageExtension(e.name)) files.push(child);
    }
    files.sort(compareCodePoints);
    groups.push({ dir: rel, files });
    for (const d of dirs) await visit(d);
  };
  await visit(cls);
  groups.sort((a, b) => compareCodePoints(a.dir, b.dir));
  return groups.flatMap((g) => g.files);
}

/**
 * Scans `root` (one split). `what` names the split for messages, e.g. "train split (--data …)".
 * Missing folder, no class folders or no images → UserError. Empty classes are reported.
 */
export async function scanImageFolder(root: string, what: string): Promise<ScannedSplit> {
  let st;
  try {
    st = await stat(root);
  } catch {
    throw new UserError(`${what}: folder ${root} does not exist (expected one sub-folder of images per class)`);
  }
  if (!st.isDirectory()) throw new UserError(`${what}: ${root} is not a folder`);
  const top = await readdir(root, { withFileTypes: true });
  const classes: string[] = [];
  for (const e of top) {
    if (await isDirectory(path.join(root, e.name), e.isDirectory(), e.isSymbolicLink())) classes.push(e.name);
  }
  classes.sort(compareCodePoints);
  if (classes.length === 0) throw new UserError(`${what}: ${root} has no class sub-folders`);
  // Classes are independent: walk several at once (helps on network file systems), keep order.
  const perClass: string[][] = new Array(classes.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(16, classes.length) }, async () => {
      while (next < classes.length) {
        const k = next++;
        perClass[k] = await walkClass(root, classes[k]);
      }
    }),
  );
  let total = 0;
  for (const f of perClass) total += f.length;
  if (total === 0) {
    throw new UserError(`${what}: no images in ${root} (looked for ${IMG_EXTENSIONS.join(' ')} in ${classes.length} class folders)`);
  }
  const files: string[] = new Array(total);
  const labels = new Int32Array(total);
  const emptyClasses: string[] = [];
  let i = 0;
  for (let k = 0; k < classes.length; k++) {
    if (perClass[k].length === 0) emptyClasses.push(classes[k]);
    for (const f of perClass[k]) {
      files[i] = f;
      labels[i++] = k;
    }
  }
  return { root, classes, files, labels, emptyClasses };
}

/** The image files under `dir` (recursive, links followed once, sorted as the loader sorts), as paths under `dir`. */
export async function listImages(dir: string): Promise<string[]> {
  const abs = path.resolve(dir);
  const top = path.basename(abs);
  const files = await walkClass(path.dirname(abs), top);
  return files.map((f) => path.join(dir, path.relative(top, f)));
}
