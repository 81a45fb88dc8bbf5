/** Small ImageFolder trees for the data tests. */
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `str-data-${prefix}-`));
}

/** A w×h PNG filled with one colour. */
export async function solidPng(w: number, h: number, rgb: [number, number, number]): Promise<Buffer> {
  return sharp({ create: { width: w, height: h, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } })
    .png()
    .toBuffer();
}

/** Colour of image i of class k: distinct for every (k, i) up to 256 images. */
export function colourOf(k: number, i: number): [number, number, number] {
  return [(40 * k + 7) % 256, i % 256, (3 * i + 11 * k) % 256];
}

/**
 * Writes root/<split>/<class>/<i>.png for each class with `counts[k]` images of varying size.
 * Returns the class names (sorted order = label order).
 */
export async function writeTree(root: string, split: string, counts: number[]): Promise<string[]> {
  const names = counts.map((_, k) => `class${k}`);
  for (let k = 0; k < counts.length; k++) {
    const dir = path.join(root, split, names[k]);
    mkdirSync(dir, { recursive: true });
    for (let i = 0; i < counts[k]; i++) {
      const w = 12 + ((i * 5) % 9);
      const h = 10 + ((i * 3) % 7);
      writeFileSync(path.join(dir, `${String(i).padStart(3, '0')}.png`), await solidPng(w, h, colourOf(k, i)));
    }
  }
  return names;
}

/** A path in the repository (works from test/ under tsx and from dist/test/ when compiled). */
export function repoPath(...parts: string[]): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('repository root not found');
    dir = up;
  }
  return path.join(dir, ...parts);
}
