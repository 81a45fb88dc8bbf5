import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  copyFileAtomic,
  copyFileAtomicSync,
  isAtomicTempFile,
  writeFileAtomic,
  writeFileAtomicSync,
} from '../../src/io/atomic.js';
import { childNodeArgs, srcModuleUrl, tmpDir } from './helpers.js';

const OLD = 'old checkpoint content';

function listDir(dir: string): string[] {
  return fs.readdirSync(dir).sort();
}

describe('writeFileAtomic', () => {
  test('creates parent folders, writes strings, bytes and chunk lists, leaves no temp file', async () => {
    const dir = tmpDir('atomic');
    const f = path.join(dir, 'a', 'b', 'file.bin');
    await writeFileAtomic(f, 'hello');
    assert.equal(fs.readFileSync(f, 'utf8'), 'hello');
    await writeFileAtomic(f, new Uint8Array([1, 2, 3]));
    assert.deepEqual([...fs.readFileSync(f)], [1, 2, 3]);
    await writeFileAtomic(f, [new Uint8Array([9]), new Uint8Array([8, 7])]);
    assert.deepEqual([...fs.readFileSync(f)], [9, 8, 7]);
    async function* gen() {
      yield Buffer.from('as');
      yield Buffer.from('ync');
    }
    await writeFileAtomic(f, gen());
    assert.equal(fs.readFileSync(f, 'utf8'), 'async');
    assert.deepEqual(listDir(path.dirname(f)), ['file.bin']);
    writeFileAtomicSync(f, 'sync');
    assert.equal(fs.readFileSync(f, 'utf8'), 'sync');
    assert.deepEqual(listDir(path.dirname(f)), ['file.bin']);
  });

  test('a failure in the middle of writing leaves the old file intact and removes the temp file', async () => {
    const dir = tmpDir('atomic');
    const f = path.join(dir, 'ckpt');
    fs.writeFileSync(f, OLD);
    function* failing() {
      yield Buffer.alloc(1 << 20, 1);
      throw new Error('injected failure');
    }
    await assert.rejects(writeFileAtomic(f, failing()), /injected failure/);
    assert.equal(fs.readFileSync(f, 'utf8'), OLD);
    assert.deepEqual(listDir(dir), ['ckpt']);
    assert.throws(() => writeFileAtomicSync(f, failing()), /injected failure/);
    assert.equal(fs.readFileSync(f, 'utf8'), OLD);
    assert.deepEqual(listDir(dir), ['ckpt']);
  });

  test('a writer killed with SIGKILL mid-write leaves the previous file intact', async () => {
    const dir = tmpDir('atomic-kill');
    const f = path.join(dir, 'last.state');
    fs.writeFileSync(f, OLD);
    // The child streams 64 × 1 MiB slowly and reports after the first chunk reached the temp file.
    const code = `
      import { writeFileAtomic } from ${JSON.stringify(srcModuleUrl('io/atomic'))};
      async function* chunks() {
        for (let i = 0; i < 64; i++) {
          if (i === 1) process.stdout.write('writing\\n');
          yield Buffer.alloc(1 << 20, i);
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      await writeFileAtomic(${JSON.stringify(f)}, chunks());
      process.stdout.write('done\\n');
    `;
    const child = spawn(process.execPath, [...childNodeArgs(), '--input-type=module', '-e', code], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('writing')) {
          child.kill('SIGKILL');
          resolve();
        }
      });
      child.on('exit', () => (out.includes('writing') ? resolve() : reject(new Error(`child exited early: ${out}`))));
    });
    await new Promise((r) => child.once('exit', r));
    assert.ok(!out.includes('done'), 'the child finished before it was killed');
    assert.equal(fs.readFileSync(f, 'utf8'), OLD);
    const temps = listDir(dir).filter((n) => n !== 'last.state');
    assert.equal(temps.length, 1, 'the interrupted temp file is the only other file');
    assert.ok(isAtomicTempFile(temps[0]!));
    assert.ok(fs.statSync(path.join(dir, temps[0]!)).size >= 1 << 20);
  });
});

describe('copyFileAtomic', () => {
  test('copies over an existing file; a missing source leaves the destination untouched', async () => {
    const dir = tmpDir('copy');
    const src = path.join(dir, 'epoch_3.state');
    const dst = path.join(dir, 'sub', 'model_best.pth');
    fs.writeFileSync(src, 'new best');
    fs.mkdirSync(path.dirname(dst));
    fs.writeFileSync(dst, OLD);
    await copyFileAtomic(src, dst);
    assert.equal(fs.readFileSync(dst, 'utf8'), 'new best');
    await assert.rejects(copyFileAtomic(path.join(dir, 'missing'), dst), /ENOENT/);
    assert.equal(fs.readFileSync(dst, 'utf8'), 'new best');
    assert.throws(() => copyFileAtomicSync(path.join(dir, 'missing'), dst), /ENOENT/);
    assert.deepEqual(listDir(path.dirname(dst)), ['model_best.pth']);
    fs.writeFileSync(src, 'newer');
    copyFileAtomicSync(src, dst);
    assert.equal(fs.readFileSync(dst, 'utf8'), 'newer');
  });
});
