/** Tells the checkpoint formats apart by their first bytes (file extensions are not reliable). */
import * as fs from 'node:fs';
import { UserError, ioReason } from '../util/errors.js';

export type CheckpointFormat = 'safetensors' | 'torch-zip' | 'torch-legacy';

export function sniffCheckpointFormat(head: Uint8Array): CheckpointFormat | undefined {
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) return 'torch-zip';
  // Legacy torch.save starts with the pickled magic number: PROTO 2, LONG1 of 10 bytes.
  if (head.length >= 4 && head[0] === 0x80 && head[1] === 0x02 && head[2] === 0x8a && head[3] === 0x0a) return 'torch-legacy';
  // safetensors: u64 header length, then a JSON object.
  if (head.length >= 9 && head[8] === 0x7b && head[5] === 0 && head[6] === 0 && head[7] === 0) return 'safetensors';
  return undefined;
}

/** Reads the first bytes of `path` and names its format; UserError if unreadable or unknown. */
export function sniffCheckpointFile(path: string): CheckpointFormat {
  const head = Buffer.alloc(16);
  let n: number;
  try {
    const fd = fs.openSync(path, 'r');
    try {
      n = fs.readSync(fd, head, 0, head.length, 0);
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    throw new UserError(`${path}: cannot read checkpoint (${ioReason(e)})`);
  }
  const f = sniffCheckpointFormat(head.subarray(0, n));
  if (!f) throw new UserError(`${path}: not a checkpoint (expected a .safetensors file or a PyTorch .pth/.state)`);
  return f;
}
