/**
 * Shared by the end-to-end training tests (test/train/run-*, resume*, memory*): a tiny synthetic
 * ImageFolder dataset, tiny YAML configs, the CLI in a child process, an in-process run with its
 * printed lines captured, and readers for everything a run writes.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';
import { writeSyntheticImageFolder } from '../../src/data/synthetic.js';
import { loadConfig } from '../../src/config/load.js';
import type { RunConfig } from '../../src/config/schema.js';
import { runTraining, type RunResult } from '../../src/train/run.js';
import type { Model } from '../../src/models/model.js';
import { readEventFile, scalarsByTag, FILE_VERSION, type ScalarPoint } from '../../src/io/tensorboard.js';
import { readSafetensorsSync } from '../../src/io/safetensors.js';
import { RESULTS_HEADER } from '../../src/io/results.js';
import { REPO_ROOT } from './paths.js';

export { REPO_ROOT };

/** ResNet18's 21 sparsifiable layers in module order (STR-SPEC Appendix A.4), as the outputs name them. */
export const RESNET18_LAYERS = [
  'conv1',
  'layer1.0.conv1', 'layer1.0.conv2', 'layer1.1.conv1', 'layer1.1.conv2',
  'layer2.0.conv1', 'layer2.0.conv2', 'layer2.0.downsample.0', 'layer2.1.conv1', 'layer2.1.conv2',
  'layer3.0.conv1', 'layer3.0.conv2', 'layer3.0.downsample.0', 'layer3.1.conv1', 'layer3.1.conv2',
  'layer4.0.conv1', 'layer4.0.conv2', 'layer4.0.downsample.0', 'layer4.1.conv1', 'layer4.1.conv2',
  'fc',
].map((n) => `module.${n}`);

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `str-train-${prefix}-`));
}

export interface TinyDataOptions {
  classes?: number;
  perClass?: number;
  valPerClass?: number;
  size?: [number, number];
}

/** A synthetic JPEG ImageFolder tree `<root>/data/{train,val}` (4 classes × 8 train + 4 val images by default). */
export async function tinyDataset(root: string, o: TinyDataOptions = {}): Promise<string> {
  const out = path.join(root, 'data');
  await writeSyntheticImageFolder({
    out,
    classes: o.classes ?? 4,
    perClass: o.perClass ?? 8,
    valPerClass: o.valPerClass ?? 4,
    size: o.size ?? [20, 20],
    seed: 1,
    log: () => {},
  });
  return out;
}

/**
 * A tiny training configuration: quarter-of-a-quarter-width ResNet18 with the small stem at
 * 16 px, batch 8, 2 epochs, cosine LR without warm-up (epoch 0: 0.1, epoch 1: 0.05).
 */
export function tinyConfig(data: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    data,
    set: 'ImageFolder',
    arch: 'ResNet18',
    stem: 'small',
    width_mult: 0.125,
    image_size: 16,
    batch_size: 8,
    epochs: 2,
    lr: 0.1,
    lr_policy: 'cosine_lr',
    momentum: 0.9,
    weight_decay: 0.0005,
    label_smoothing: 0.1,
    workers: 1,
    print_freq: 2,
    seed: 0,
    backend: 'wasm',
    progress: 'none',
    ...extra,
  };
}

export function writeYaml(file: string, obj: Record<string, unknown>): string {
  fs.writeFileSync(file, yaml.dump(obj));
  return file;
}

// ------------------------------------------------------------------------------------------------
// Running

const IS_TS = import.meta.url.endsWith('.ts');

/** The CLI entry: src/cli/main.ts under tsx, the compiled main.js beside dist/test. */
export const CLI_ENTRY = fileURLToPath(new URL(`../../src/cli/main${IS_TS ? '.ts' : '.js'}`, import.meta.url));

/** `node [--import tsx] <cli> ARGS`; tsx by URL, so the child may run in any folder. */
export function cliArgv(args: readonly string[]): string[] {
  return [...(IS_TS ? ['--import', import.meta.resolve('tsx')] : []), CLI_ENTRY, ...args];
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs the CLI to completion (synchronously). */
export function runCli(args: readonly string[], cwd: string, timeoutMs = 55_000): CliResult {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, cliArgv(args), {
    cwd,
    encoding: 'utf8',
    timeout: timeoutMs,
  });
  if (r.error) throw r.error;
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, ms: performance.now() - t0 };
}

export interface CliProcess {
  child: ChildProcess;
  /** stdout so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves when a stdout line matches. */
  waitForLine(re: RegExp, timeoutMs?: number): Promise<string>;
  done: Promise<CliResult>;
}

/** Starts the CLI with piped output (for runs that are killed midway). */
export function startCli(args: readonly string[], cwd: string, timeoutMs = 55_000): CliProcess {
  const t0 = performance.now();
  const child = spawn(process.execPath, cliArgv(args), {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  const check = () => {
    const lines = out.split('\n');
    for (const w of [...waiters]) {
      const l = lines.find((x) => w.re.test(x));
      if (l !== undefined) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(l);
      }
    }
  };
  child.stdout!.on('data', (d) => {
    out += d;
    check();
  });
  child.stderr!.on('data', (d) => (err += d));
  const done = new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`str-train ${args.join(' ')}: no exit within ${timeoutMs} ms\n${err}`));
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: out, stderr: err, ms: performance.now() - t0 });
    });
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    done,
    waitForLine(re, ms = 50_000) {
      return new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no stdout line ${re} within ${ms} ms; stdout:\n${out}\nstderr:\n${err}`)), ms);
        waiters.push({
          re,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
        });
        void done.then(() => {
          check();
          if (waiters.some((w) => w.re === re)) {
            clearTimeout(timer);
            reject(new Error(`process ended without a stdout line ${re}; stdout:\n${out}\nstderr:\n${err}`));
          }
        });
        check();
      });
    },
  };
}

export interface InProcessRun {
  result: RunResult;
  config: RunConfig;
  configPath?: string;
  lines: string[];
  ms: number;
}

/**
 * loadConfig + runTraining in this process (the caller picks the backend first); argv as on the
 * command line, resolved against `cwd` for --config only (data and log_dir should be absolute).
 */
export async function runInProcess(argv: readonly string[], cwd: string, onModel?: (m: Model) => Promise<void>): Promise<InProcessRun> {
  const { config, configPath } = loadConfig(argv, { cwd });
  const lines: string[] = [];
  const t0 = performance.now();
  const result = await runTraining({ config, configPath, log: (l) => lines.push(l), onModel });
  return { result, config, configPath, lines, ms: performance.now() - t0 };
}

// ------------------------------------------------------------------------------------------------
// Reading outputs

/** Every file under dir (relative paths, sorted). */
export function listFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => fs.statSync(path.join(dir, f)).isFile())
    .sort();
}

/** Every file and folder under dir (folders end with '/'), to see that nothing new appeared. */
export function listTree(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .map((f) => (fs.statSync(path.join(dir, f)).isDirectory() ? `${f}/` : f))
    .sort();
}

export interface ResultsCsv {
  headerLine: string;
  rows: string[][];
}

/** `<log_dir>/results.csv`: the exact reference header, rows split on ", ". */
export function readResults(file: string): ResultsCsv {
  const text = fs.readFileSync(file, 'utf8');
  assert.ok(text.endsWith('\n'), 'results.csv ends with a newline');
  const [headerLine, ...rest] = text.replace(/\n$/, '').split('\n');
  assert.equal(headerLine, RESULTS_HEADER.join(', '));
  assert.equal(
    headerLine,
    'Date Finished, Base Config, Name, Prune Rate, Current Val Top 1, Current Val Top 5, Best Val Top 1, Best Val Top 5, Best Train Top 1, Best Train Top 5',
  );
  const rows = rest.map((l) => l.split(', '));
  for (const r of rows) {
    assert.equal(r.length, 10, `results.csv row ${r.join(', ')}`);
    assert.match(r[0], /^\d{2}-\d{2}-\d{2}_\d{2}:\d{2}:\d{2}$/, 'date as %m-%d-%y_%H:%M:%S');
    for (const v of r.slice(4)) assert.match(v, /^\d+\.\d{2}$/, 'two decimals');
  }
  return { headerLine, rows };
}

/** A CSV written by EpochTable: header and numeric rows. */
export function readEpochCsv(file: string): { header: string[]; rows: number[][] } {
  const [h, ...rest] = fs.readFileSync(file, 'utf8').trim().split('\n');
  return { header: h.split(','), rows: rest.map((l) => l.split(',').map(Number)) };
}

/** Python float repr as json.dump writes it: `0.0`, `12.5`, `8.56e-06`, never `1` or `1e-6`. */
export const PY_FLOAT = /^-?(\d+\.\d+(e[+-]\d{2,})?|\d+e[+-]\d{2,}|\d+\.\d+)$/;

/**
 * A layer-wise JSON file in Python json.dump format (", " / ": " separators, no newline): returns
 * its keys (in file order) and values, checking every value is a Python float repr.
 */
export function readPyJson(file: string): { keys: string[]; values: Record<string, number> } {
  const text = fs.readFileSync(file, 'utf8');
  assert.ok(text.startsWith('{"') && text.endsWith('}'), `${file}: a JSON object with no trailing newline`);
  assert.ok(!text.includes('\n'), `${file}: one line`);
  const body = text.slice(1, -1);
  const entries = body.split(', ');
  const keys: string[] = [];
  for (const e of entries) {
    const m = /^"([^"]+)": (\S+)$/.exec(e);
    assert.ok(m, `${file}: entry ${e} is '"key": value'`);
    assert.match(m[2], PY_FLOAT, `${file}: ${m[1]} value ${m[2]} is a Python float repr`);
    keys.push(m[1]);
  }
  const values = JSON.parse(text) as Record<string, number>;
  assert.deepEqual(Object.keys(values), keys);
  return { keys, values };
}

export interface Tensorboard {
  files: string[];
  scalars: Map<string, ScalarPoint[]>;
}

/**
 * Every event file in `<run>/logs`, read record by record with both CRCs checked (readEventFile
 * throws on a mismatch); each file starts with the file_version event. Scalars of all files,
 * in file-name (= creation) order.
 */
export function readTensorboard(runDir: string, opts: { allowTruncated?: boolean } = {}): Tensorboard {
  const logs = path.join(runDir, 'logs');
  const files = fs
    .readdirSync(logs)
    .filter((f) => f.startsWith('events.out.tfevents.'))
    .sort((a, b) => Number(a.split('.').at(-1)) - Number(b.split('.').at(-1)) || a.localeCompare(b))
    .map((f) => path.join(logs, f));
  assert.ok(files.length > 0, `${logs}: no event file`);
  const events = [];
  for (const f of files) {
    const c = readEventFile(f);
    if (!opts.allowTruncated) assert.equal(c.truncated, false, `${f} ends inside a record`);
    assert.equal(c.events[0]?.fileVersion, FILE_VERSION, `${f}: first record is the file version`);
    events.push(...c.events);
  }
  return { files, scalars: scalarsByTag(events) };
}

/** Steps and values of one tag (asserting it exists). */
export function series(tb: Tensorboard, tag: string): ScalarPoint[] {
  const s = tb.scalars.get(tag);
  assert.ok(s, `TensorBoard tag ${tag} missing; tags: ${[...tb.scalars.keys()].join(' ')}`);
  return s;
}

/** Every `*.safetensors` in dir parses completely (header, every tensor's bytes); returns their names. */
export function parseAllCheckpoints(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const names = fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors'));
  for (const f of names) {
    try {
      readSafetensorsSync(path.join(dir, f));
    } catch (e) {
      // renamed away between readdir and open: not a torn file
      if (/\(ENOENT\)/.test(String((e as Error).message))) continue;
      throw new Error(`${path.join(dir, f)} does not parse: ${(e as Error).message}`);
    }
  }
  return names;
}

/** The printed per-epoch summary lines `=> epoch N: ... train top-1 X ... val top-1 Y top-5 Z ...`. */
export function epochLines(text: string): Map<number, { train1: number; val1: number; val5: number; loss: number; sparsity?: number }> {
  const out = new Map<number, { train1: number; val1: number; val5: number; loss: number; sparsity?: number }>();
  const re = /^=> epoch (\d+): lr \S+ +train top-1 (\S+) loss (\S+) .* val top-1 (\S+) top-5 (\S+)(?: +sparsity (\S+) %)?/;
  for (const l of text.split('\n')) {
    const m = re.exec(l);
    if (m) {
      out.set(Number(m[1]), {
        train1: Number(m[2]),
        loss: Number(m[3]),
        val1: Number(m[4]),
        val5: Number(m[5]),
        sparsity: m[6] === undefined ? undefined : Number(m[6]),
      });
    }
  }
  return out;
}

/** The run folder announced by `=> run folder DIR`. */
export function runFolderOf(text: string): string {
  const m = /^=> run folder (.+)$/m.exec(text);
  assert.ok(m, `no '=> run folder' line in:\n${text}`);
  return m[1];
}

export const f32 = Math.fround;
