/**
 * `str-train export --checkpoint X --format pth|safetensors [--dense] [--out FILE]`: a file the
 * reference's model definitions load with `load_state_dict` unchanged. The .pth is what the
 * reference's own conversion writes: `{epoch (int), arch, state_dict (OrderedDict, module. keys)}`.
 */
import { parseArgs } from 'node:util';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { initBackend, backendChoices, type BackendChoice } from '../backend/select.js';
import { readCheckpoint, type CheckpointContent } from '../train/checkpoint.js';
import { saveSparseCheckpoint, type SparseCheckpointInfo } from '../train/sparse-checkpoint.js';
import { toLayersModel } from '../export/tfjs-model.js';
import { saveLayersModel, type Quantization, type TfjsFiles } from '../export/tfjs-files.js';
import { denseCompatibleStateDict } from '../sparsity/transfer.js';
import { modelFromCheckpoint, inferModelSpec, type ModelOverrides } from '../report/checkpoint-model.js';
import { MODULE_PREFIX, stripModulePrefix, stateDict } from '../nn/state-dict.js';
import type { StateDict } from '../io/host-tensor.js';
import { writeSafetensors } from '../io/safetensors.js';
import { writeTorchCheckpoint, stateDictToPy, toPyInt } from '../io/pytorch/index.js';
import { CONV_TYPES } from '../config/schema.js';
import type { ConvTypeName } from '../nn/conv/index.js';
import { UserError } from '../util/errors.js';

export type ExportFormat = 'pth' | 'safetensors' | 'sparse' | 'tfjs';
const FORMATS: readonly ExportFormat[] = ['pth', 'safetensors', 'sparse', 'tfjs'];
const QUANTIZATIONS: readonly Quantization[] = ['uint8', 'float16'];

export interface ExportOptions {
  checkpoint: string;
  format?: ExportFormat;
  /** Fold STR thresholds (and DNW/GMP masks) into the weights: the dense-compatible model (§13.2). */
  dense?: boolean;
  out?: string;
  /** --format tfjs: quantise the conv/dense kernels. */
  quantize?: Quantization;
  overrides?: ModelOverrides;
  log?: (line: string) => void;
}

export interface ExportResult {
  out: string;
  format: ExportFormat;
  dense: boolean;
  arch: string;
  epoch: number;
  stateDict: StateDict;
}

export const EXPORT_FORMAT = 'str-train-export/1';

function formatOf(out: string | undefined, given: string | undefined): ExportFormat {
  if (given !== undefined) {
    if (!(FORMATS as readonly string[]).includes(given)) throw new UserError(`export --format ${given}: expected pth, safetensors, sparse or tfjs`);
    return given as ExportFormat;
  }
  if (out?.endsWith('.sparse.safetensors')) return 'sparse';
  return out !== undefined && extname(out) === '.safetensors' ? 'safetensors' : 'pth';
}

function defaultOut(checkpoint: string, format: ExportFormat, dense: boolean): string {
  const stem = basename(checkpoint, extname(checkpoint));
  const ext = { pth: '.pth', sparse: '.sparse.safetensors', safetensors: '.safetensors', tfjs: '_tfjs' }[format];
  let out = join(dirname(checkpoint), `${stem}${dense ? '_dense' : ''}${ext}`);
  if (resolve(out) === resolve(checkpoint)) out = join(dirname(checkpoint), `${stem}_export${ext}`);
  return out;
}

/** Writes the export and returns what it wrote. */
export async function exportCheckpoint(o: ExportOptions): Promise<ExportResult> {
  const log = o.log ?? ((l: string) => process.stdout.write(l + '\n'));
  const format = formatOf(o.out, o.format);
  const dense = o.dense ?? false;
  const out = o.out ?? defaultOut(o.checkpoint, format, dense);
  if (resolve(out) === resolve(o.checkpoint)) throw new UserError(`export --out ${out}: is the input checkpoint; choose another file`);
  if (format === 'tfjs' && dense) throw new UserError('export --format tfjs --dense: a TF.js model always holds the effective (folded) weights; drop --dense');
  if (o.quantize !== undefined && !QUANTIZATIONS.includes(o.quantize)) throw new UserError(`export --quantize ${o.quantize}: expected uint8 or float16`);
  if (format === 'sparse' && dense) throw new UserError('export --format sparse --dense: the compact file keeps the thresholds/rates; export it (or the original) to pth --dense instead');
  const ck = await readCheckpoint(o.checkpoint, '--checkpoint');
  if (format === 'sparse') return exportSparse(ck, out, o.overrides, log);
  if (format === 'tfjs') return exportTfjs(ck, out, o.quantize, o.overrides, log);
  if (o.quantize) throw new UserError(`export --quantize: only for --format tfjs`);

  let sd: StateDict;
  let arch: string;
  if (dense) {
    const { model, spec } = modelFromCheckpoint(ck, o.overrides);
    try {
      sd = denseCompatibleStateDict(model);
    } finally {
      model.dispose();
    }
    arch = spec.arch;
  } else {
    sd = new Map();
    for (const [k, v] of ck.stateDict) sd.set(MODULE_PREFIX + stripModulePrefix(k), v);
    let inferred: string | undefined;
    try {
      inferred = inferModelSpec(ck, o.overrides).arch;
    } catch {
      // not one of our architectures: still exportable, the tensors go out as they are
    }
    arch = o.overrides?.arch ?? (ck.meta.arch || inferred || '');
  }
  // the reference's dense conversion starts a fresh run: epoch 0; otherwise the checkpoint's own
  const epoch = dense ? 0 : ck.meta.epoch;

  if (format === 'pth') {
    // epoch as a Python int: the reference's range(start_epoch, ...) needs one
    await writeTorchCheckpoint(out, { epoch: toPyInt(epoch), arch, state_dict: stateDictToPy(sd) });
  } else {
    await writeSafetensors(out, sd, { format: EXPORT_FORMAT, arch, epoch: String(epoch), dense: String(dense) });
  }
  const thresholds = [...sd.keys()].filter((k) => k.endsWith('.sparseThreshold')).length;
  log(
    `=> wrote ${out} (${format}, ${arch || 'unknown arch'}, ${sd.size} tensors` +
      (dense ? ', dense-compatible: thresholds/masks folded into the weights' : thresholds ? `, ${thresholds} STR thresholds` : '') +
      ')',
  );
  return { out, format, dense, arch, epoch, stateDict: sd };
}

/** --format sparse: the compact checkpoint of the model the checkpoint describes. */
async function exportSparse(ck: CheckpointContent, out: string, overrides: ModelOverrides | undefined, log: (l: string) => void): Promise<ExportResult> {
  const { model, spec } = modelFromCheckpoint(ck, overrides);
  let info: SparseCheckpointInfo;
  let sd: StateDict;
  try {
    sd = stateDict(model);
    info = await saveSparseCheckpoint(out, { model, meta: ck.meta, config: ck.config, classNames: ck.classNames });
  } finally {
    model.dispose();
  }
  const mb = (b: number) => (b / 1e6).toFixed(2);
  log(
    `=> wrote ${out} (sparse, ${spec.arch}, ${mb(info.bytes)} MB: ${info.nonZeros.toLocaleString('en-US')} non-zero conv weights, ` +
      `${info.encoded} tensors as values + mask; the weights as dense float32: ${mb(info.denseBytes)} MB)`,
  );
  return { out, format: 'sparse', dense: false, arch: spec.arch, epoch: ck.meta.epoch, stateDict: sd };
}

/** --format tfjs: a LayersModel directory (model.json + weights.bin) that plain TensorFlow.js loads. */
async function exportTfjs(ck: CheckpointContent, out: string, quantize: Quantization | undefined, overrides: ModelOverrides | undefined, log: (l: string) => void): Promise<ExportResult> {
  const { model, spec } = modelFromCheckpoint(ck, overrides);
  let files: TfjsFiles;
  try {
    model.eval();
    const layers = toLayersModel(model);
    try {
      files = await saveLayersModel(layers, out, quantize);
    } finally {
      layers.dispose();
    }
  } finally {
    model.dispose();
  }
  log(
    `=> wrote ${out}/ (tfjs layers model, ${spec.arch}, weights ${quantize ?? 'float32'}: ${(files.weightBytes / 1e6).toFixed(2)} MB; ` +
      `input NHWC float32 normalised with the ImageNet mean/std, output logits)`,
  );
  return { out, format: 'tfjs', dense: true, arch: spec.arch, epoch: ck.meta.epoch, stateDict: new Map() };
}

export const EXPORT_USAGE = `usage: str-train export --checkpoint FILE [--format pth|safetensors|sparse] [--dense] [--out FILE]
       str-train export --checkpoint FILE --format tfjs --out DIR [--quantize uint8|float16]
                        [--arch A] [--conv-type T] [--prune-rate P] [--stem imagenet|small] [--backend B]

Writes a checkpoint (ours, or a reference .pth/.state) as a file the reference's models load with
load_state_dict unchanged: .pth = {epoch, arch, state_dict} with module. keys, or .safetensors.
  --format sparse  a compact checkpoint (<stem>.sparse.safetensors): each conv's non-zeros and a
                 bit mask, the rest dense; read by --pretrained, --evaluate, report, predict and
                 export (back to .pth, --dense too), not by --resume
  --format tfjs  a TensorFlow.js layers model in DIR (model.json + weights.bin) for
                 tf.loadLayersModel in Node or a browser: effective weights, BatchNorm statistics;
                 input NHWC float32 normalised as the val transform, output logits
  --quantize uint8|float16   (tfjs) quantise the conv/dense kernels as tfjs-converter does
  --dense        fold STR thresholds (DNW/GMP masks) into the weights: the dense-compatible model
  --arch ...     for a reference .pth whose architecture cannot be read off its keys
  --conv-type, --prune-rate   a reference DNW/GMP .pth (their rates are not in the file)`;

/** Flags shared by export and report. */
export const MODEL_FLAGS: FlagSpec = {
  arch: { type: 'string' },
  'conv-type': { type: 'string' },
  'prune-rate': { type: 'string' },
  stem: { type: 'string' },
  'image-size': { type: 'string' },
  backend: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

type FlagSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

export function parseFlags(command: string, argv: string[], options: FlagSpec): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const r = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return { values: r.values as Record<string, string | boolean | undefined>, positionals: r.positionals };
  } catch (e) {
    throw new UserError(`${command}: ${(e as Error).message.split('\n')[0]}`);
  }
}

/** --arch/--conv-type/--prune-rate/--stem/--image-size → overrides (validated). */
export function modelOverrides(command: string, v: Record<string, unknown>): ModelOverrides {
  const o: ModelOverrides = {};
  if (typeof v.arch === 'string') o.arch = v.arch;
  if (typeof v['conv-type'] === 'string') {
    if (!(CONV_TYPES as readonly string[]).includes(v['conv-type'])) throw new UserError(`${command} --conv-type ${v['conv-type']}: expected one of ${CONV_TYPES.join(', ')}`);
    o.convType = v['conv-type'] as ConvTypeName;
  }
  if (typeof v['prune-rate'] === 'string') {
    const p = Number(v['prune-rate']);
    if (!(p >= 0 && p < 1)) throw new UserError(`${command} --prune-rate ${v['prune-rate']}: expected a number in [0, 1)`);
    o.pruneRate = p;
  }
  if (typeof v.stem === 'string') {
    if (v.stem !== 'imagenet' && v.stem !== 'small') throw new UserError(`${command} --stem ${v.stem}: expected imagenet or small`);
    o.stem = v.stem;
  }
  if (typeof v['image-size'] === 'string') {
    const n = Number(v['image-size']);
    if (!Number.isInteger(n) || n < 8) throw new UserError(`${command} --image-size ${v['image-size']}: expected an integer >= 8`);
    o.imageSize = n;
  }
  return o;
}

export async function useBackend(command: string, b: unknown): Promise<void> {
  const choice = (b ?? 'cpu') as BackendChoice;
  if (!backendChoices.includes(choice)) throw new UserError(`${command} --backend ${String(b)}: expected one of ${backendChoices.join(', ')}`);
  // the backend line would only be noise here: these commands do little tensor work
  await initBackend(choice, () => {});
}

export async function exportCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags('export', argv, {
    ...MODEL_FLAGS,
    checkpoint: { type: 'string' },
    format: { type: 'string' },
    dense: { type: 'boolean' },
    out: { type: 'string' },
    quantize: { type: 'string' },
  });
  if (values.help) {
    process.stdout.write(EXPORT_USAGE + '\n');
    return 0;
  }
  if (positionals.length > 1 || (positionals.length === 1 && values.checkpoint !== undefined)) {
    throw new UserError(`export: unexpected argument ${positionals.at(-1)} (one checkpoint, as --checkpoint FILE)`);
  }
  const checkpoint = (values.checkpoint as string | undefined) ?? positionals[0];
  if (!checkpoint) throw new UserError('export: needs --checkpoint FILE (ours or a reference .pth/.state)');
  const dense = values.dense === true;
  await useBackend('export', values.backend);
  await exportCheckpoint({
    checkpoint,
    format: values.format as ExportFormat | undefined,
    dense,
    out: values.out as string | undefined,
    quantize: values.quantize as Quantization | undefined,
    overrides: modelOverrides('export', values),
  });
  return 0;
}
