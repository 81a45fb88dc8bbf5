/**
 * Decoded RGB pixels of small images, shared by a loader's decode threads. From the second epoch
 * on, small datasets (Fashion-MNIST, downsampled ImageNet) skip the file read and libvips: on
 * 28-px PNGs libvips' per-image overhead cost ~0.5 ms, more CPU than a small-stem training step
 * spends per image on 2 cores. Only the decode is cached; crops and flips are drawn every epoch.
 *
 * Keyed by dataset index; entries are written once and never evicted (with shuffled access no
 * eviction policy hits more often than first-come), so the arena is a bump allocator and the
 * table needs no locks: a writer fills pixels and size, then publishes the offset atomically.
 */

/** Images above this many pixels are not cached (ImageNet-size files would fill the budget fast). */
export const MAX_CACHED_PIXELS = 256 * 256;

export interface DecodedCacheBuffers {
  /** Int32: [bytes allocated, then per index: offset + 1 (0 = absent), width, height]. */
  table: SharedArrayBuffer | ArrayBuffer;
  arena: SharedArrayBuffer | ArrayBuffer;
}

export interface DecodedImage {
  width: number;
  height: number;
  /** Packed RGB, width·height·3 bytes (a view into the arena: do not write). */
  rgb: Uint8Array;
}

export class DecodedCache {
  private readonly table: Int32Array;
  private readonly arena: Uint8Array;

  constructor(readonly buffers: DecodedCacheBuffers) {
    this.table = new Int32Array(buffers.table);
    this.arena = new Uint8Array(buffers.arena);
  }

  /**
   * Room for `count` images in `budgetBytes` (capped at 1 GiB: offsets are int32). Shared
   * buffers when decode threads use it; untouched arena pages cost no memory.
   */
  static create(count: number, budgetBytes: number, shared: boolean): DecodedCache {
    const Buf = shared ? SharedArrayBuffer : ArrayBuffer;
    const bytes = Math.max(0, Math.min(Math.floor(budgetBytes), 2 ** 30));
    return new DecodedCache({ table: new Buf(4 * (1 + 3 * count)), arena: new Buf(bytes) });
  }

  get size(): number {
    return (this.table.length - 1) / 3;
  }

  get(index: number): DecodedImage | null {
    const at = 1 + 3 * index;
    const o = Atomics.load(this.table, at);
    if (o === 0) return null;
    const width = this.table[at + 1];
    const height = this.table[at + 2];
    return { width, height, rgb: this.arena.subarray(o - 1, o - 1 + width * height * 3) };
  }

  /** Stores a copy of `rgb` when it is small enough and the arena has room; false otherwise. */
  put(index: number, width: number, height: number, rgb: Uint8Array): boolean {
    const n = width * height * 3;
    if (index < 0 || index >= this.size || width * height > MAX_CACHED_PIXELS || rgb.length !== n) return false;
    const at = 1 + 3 * index;
    if (Atomics.load(this.table, at) !== 0) return true;
    if (Atomics.load(this.table, 0) + n > this.arena.length) return false; // full: stop allocating
    const offset = Atomics.add(this.table, 0, n);
    if (offset + n > this.arena.length) return false;
    this.arena.set(rgb, offset);
    this.table[at + 1] = width;
    this.table[at + 2] = height;
    // Published last: a thread that reads the offset sees the pixels and size (Atomics order them).
    Atomics.store(this.table, at, offset + 1);
    return true;
  }

  /** Bytes of pixels cached so far. */
  get usedBytes(): number {
    return Math.min(Atomics.load(this.table, 0), this.arena.length);
  }
}
