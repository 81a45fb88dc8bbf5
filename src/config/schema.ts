/**
 * Every option of a training run in one table: the reference's flags (STR-SPEC §1.2, keyed by
 * their argparse `dest`, spelled exactly as the reference spells it) plus this project's own.
 * The loader (load.ts), the `--help` text and the settings file are all derived from it.
 *
 * Defaults are the reference's, except where a quirk of STR-SPEC §16 is deliberately fixed:
 * each such change says so in the option's help and is listed in QUIRK_FIXES.
 */
import { z } from 'zod';

export const ARCHS = ['ResNet18', 'ResNet34', 'ResNet50', 'ResNet101', 'MobileNetV1'] as const;
export const CONV_TYPES = ['DenseConv', 'STRConv', 'DNWConv', 'GMPConv'] as const;
export const BN_TYPES = ['LearnedBatchNorm', 'NonAffineBatchNorm'] as const;
export const INITS = ['kaiming_normal', 'kaiming_uniform', 'signed_constant', 'unsigned_constant', 'standard'] as const;
export const FAN_MODES = ['fan_in', 'fan_out'] as const;
export const NONLINEARITIES = ['relu'] as const;
export const LR_POLICIES = ['constant_lr', 'cosine_lr', 'multistep_lr', 'efficientnet_lr'] as const;
export const LR_GRANULARITIES = ['epoch', 'step'] as const;
export const OPTIMIZERS = ['sgd', 'adam'] as const;
export const SPARSE_FUNCTIONS = ['sigmoid'] as const;
export const SINIT_TYPES = ['constant'] as const;
/** ImageNet: `<data>/imagenet/{train,val}`; ImageFolder: `<data>/{train,val}`; TinyImageNet: the reference's HDF5 layout. */
export const DATASETS = ['ImageNet', 'ImageFolder', 'TinyImageNet'] as const;
export const BACKENDS = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export const STEMS = ['imagenet', 'small'] as const;
export const DISTRIBUTED = ['local', 'mpi'] as const;
export const PROGRESS = ['auto', 'bar', 'plain', 'none'] as const;

export type Arch = (typeof ARCHS)[number];
export type ConvType = (typeof CONV_TYPES)[number];
export type BnType = (typeof BN_TYPES)[number];
export type InitMode = (typeof INITS)[number];
export type LrPolicy = (typeof LR_POLICIES)[number];
export type BackendName = (typeof BACKENDS)[number];

/**
 * sInit with --target-sparsity when none is given: threshold sigmoid(-5) = 0.0067, a small
 * fraction of a kaiming weight at any width, so the controller's decay acts from the first step.
 */
export const TARGET_SPARSITY_SINIT = -5;

/** Headings of `--help`, in display order. */
export const OPTION_GROUPS = [
  'Data',
  'Model',
  'Sparsity',
  'Optimizer/Schedule',
  'Run/Output',
  'Interop',
  'Distributed',
  'Backend',
] as const;
export type OptionGroup = (typeof OPTION_GROUPS)[number];

/**
 * How a raw value is read before validation: CLI values arrive as strings, YAML values with
 * their YAML types; `load.ts` turns both into the JS type below, then `schema` checks ranges.
 */
export type OptionKind = 'string' | 'int' | 'float' | 'bool' | 'enum' | 'int-list';

export interface OptionSpec<Z extends z.ZodTypeAny = z.ZodTypeAny> {
  /** Primary long flag, kebab-case, without the leading dashes. */
  flag: string;
  /**
   * Other spellings, without dashes: the reference's flag spellings, single-letter short flags,
   * and YAML-only names of the reference. Every long spelling works on the CLI and in YAML, with
   * `-` and `_` interchangeable (so `--batch_size` and `batch-size:` work too).
   */
  aliases?: readonly string[];
  kind: OptionKind;
  choices?: readonly string[];
  /** Validation of the final value (type and range); messages complete "'key' ..." / "--flag ...". */
  schema: Z;
  /** `undefined` = unset (optional option) or derived from other options by the loader. */
  default: z.infer<Z> | undefined;
  /** Shown in `--help` instead of the default when the default is derived. */
  defaultText?: string;
  group: OptionGroup;
  help: string;
  /** Not shown in `--help` (still accepted). */
  hidden?: boolean;
}

// --- zod builders with one-line messages that read after the option's name ----------------------
const int = (min?: number, max?: number) => {
  let s = z.number({ invalid_type_error: 'must be an integer' }).int('must be an integer');
  if (min !== undefined) s = s.gte(min, `must be ≥ ${min}`);
  if (max !== undefined) s = s.lte(max, `must be ≤ ${max}`);
  return s;
};
const num = () => z.number({ invalid_type_error: 'must be a number' }).finite('must be a finite number');
const gt0 = () => num().gt(0, 'must be > 0');
const ge0 = () => num().gte(0, 'must be ≥ 0');
const unit = () => num().gte(0, 'must be in [0, 1)').lt(1, 'must be in [0, 1)');
const str = () => z.string({ invalid_type_error: 'must be a string' }).min(1, 'must not be empty');
const bool = () => z.boolean({ invalid_type_error: 'must be true or false' });
const oneOf = <T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values as unknown as [T[number], ...T[number][]], {
    errorMap: () => ({ message: `must be one of ${values.join(', ')}` }),
  });

/** Keeps each entry's zod type so RunConfig can be inferred from the table. */
const opt = <Z extends z.ZodTypeAny>(spec: OptionSpec<Z>): OptionSpec<Z> => spec;

export const OPTIONS = {
  // ---------------------------------------------------------------- Data
  data: opt({
    flag: 'data', kind: 'string', schema: str(), default: '/mnt/disk1/datasets', group: 'Data',
    help: 'dataset base directory (ImageNet reads <data>/imagenet/{train,val}; ImageFolder reads <data>/{train,val})',
  }),
  set: opt({
    flag: 'set', kind: 'enum', choices: DATASETS, schema: oneOf(DATASETS), default: 'ImageNet', group: 'Data',
    help: 'dataset layout: ImageNet (<data>/imagenet/{train,val}), ImageFolder (<data>/{train,val}) or TinyImageNet (<data>/tiny_imagenet/{train,val}.h5)',
  }),
  workers: opt({
    flag: 'workers', aliases: ['j'], kind: 'int', schema: int(0), default: 20, group: 'Data',
    help: 'parallel image decoders of the data loader',
  }),
  batch_size: opt({
    flag: 'batch-size', aliases: ['b'], kind: 'int', schema: int(1), default: 256, group: 'Data',
    help: 'global batch size (split across devices with --multigpu); also the validation batch',
  }),
  image_size: opt({
    flag: 'image-size', kind: 'int', schema: int(8), default: 224, group: 'Data',
    help: 'side of the square training/validation crop in pixels',
  }),
  val_resize: opt({
    flag: 'val-resize', kind: 'int', schema: int(8), default: undefined,
    defaultText: 'round(image_size * 256 / 224): 256 at 224', group: 'Data',
    help: 'validation: the shorter image side is resized to this before the center crop (must be ≥ --image-size)',
  }),
  crop_scale: opt({
    flag: 'crop-scale', kind: 'float', schema: num().gt(0, 'must be in (0, 1]').lte(1, 'must be in (0, 1]'), default: 0.08, group: 'Data',
    help: "training RandomResizedCrop: smallest crop area as a fraction of the image (torchvision's scale=(crop_scale, 1)); the reference's 0.08 is meant for ImageNet-size images",
  }),
  decode_cache_mb: opt({
    flag: 'decode-cache-mb', kind: 'int', schema: int(0), default: 512, group: 'Data',
    help: 'memory (MiB, per split) for decoded images up to 256x256, kept so later epochs skip the file read and decode; 0 disables',
  }),
  strict_data: opt({
    flag: 'strict-data', kind: 'bool', schema: bool(), default: false, group: 'Data',
    help: 'a corrupt or unreadable image is an error instead of a skipped file with a warning',
  }),
  one_batch: opt({
    flag: 'one-batch', kind: 'bool', schema: bool(), default: false, group: 'Data',
    help: 'unused, as in the reference (quirk 11); accepted for compatibility',
  }),

  // ---------------------------------------------------------------- Model
  arch: opt({
    flag: 'arch', aliases: ['a'], kind: 'enum', choices: ARCHS, schema: oneOf(ARCHS), default: 'ResNet18', group: 'Model',
    help: 'model architecture',
  }),
  num_classes: opt({
    flag: 'num-classes', kind: 'int', schema: int(1).optional(), default: undefined,
    defaultText: 'inferred: class folders of the dataset, or 1000 without data', group: 'Model',
    help: 'number of classes of the classifier, for every architecture (quirk 8 fixed: the reference used it only for --last-layer-dense and defaulted to 10)',
  }),
  width_mult: opt({
    flag: 'width-mult', kind: 'float', schema: gt0(), default: 1.0, group: 'Model',
    help: 'channel width multiplier of the network (quirk 7 fixed: the reference only put it in the run-folder name)',
  }),
  stem: opt({
    flag: 'stem', kind: 'enum', choices: STEMS, schema: oneOf(STEMS), default: 'imagenet', group: 'Model',
    help: "'imagenet' = the reference's stem; 'small' = 3x3 stride-1 stem conv without max-pool, for 28-64 px inputs",
  }),
  conv_type: opt({
    flag: 'conv-type', kind: 'enum', choices: CONV_TYPES, schema: oneOf(CONV_TYPES), default: 'DenseConv', group: 'Model',
    help: 'convolution type of every conv (and the 1x1-conv classifier) (quirk 3 fixed: defaults to DenseConv instead of failing)',
  }),
  bn_type: opt({
    flag: 'bn-type', kind: 'enum', choices: BN_TYPES, schema: oneOf(BN_TYPES), default: 'LearnedBatchNorm', group: 'Model',
    help: 'BatchNorm type (quirk 3 fixed: defaults to LearnedBatchNorm instead of failing)',
  }),
  first_layer_type: opt({
    flag: 'first-layer-type', kind: 'enum', choices: CONV_TYPES, schema: oneOf(CONV_TYPES).optional(), default: undefined,
    defaultText: 'same as --conv-type', group: 'Model',
    help: 'conv type of the first (stem) conv; --first-layer-dense sets it to DenseConv',
  }),
  first_layer_dense: opt({
    flag: 'first-layer-dense', kind: 'bool', schema: bool(), default: false, group: 'Model',
    help: 'make the stem conv a plain dense conv (sets first_layer_type = DenseConv, as the reference does)',
  }),
  last_layer_dense: opt({
    flag: 'last-layer-dense', kind: 'bool', schema: bool(), default: false, group: 'Model',
    help: 'make the classifier a plain dense 1x1 conv with bias',
  }),
  init: opt({
    flag: 'init', kind: 'enum', choices: INITS, schema: oneOf(INITS), default: 'kaiming_normal', group: 'Model',
    help: 'weight initialisation of the convs',
  }),
  mode: opt({
    flag: 'mode', kind: 'enum', choices: FAN_MODES, schema: oneOf(FAN_MODES), default: 'fan_in', group: 'Model',
    help: 'fan mode of the initialiser',
  }),
  nonlinearity: opt({
    flag: 'nonlinearity', kind: 'enum', choices: NONLINEARITIES, schema: oneOf(NONLINEARITIES), default: 'relu', group: 'Model',
    help: 'activation, also the gain of the initialiser (only relu, as in the reference)',
  }),
  scale_fan: opt({
    flag: 'scale-fan', kind: 'bool', schema: bool(), default: false, group: 'Model',
    help: 'scale the initialiser fan by (1 - prune_rate)',
  }),

  // ---------------------------------------------------------------- Sparsity
  prune_rate: opt({
    flag: 'prune-rate', kind: 'float', schema: unit(), default: 0.0, group: 'Sparsity',
    help: 'DNW/GMP: fraction of weights zeroed in every layer; also part of the run-folder name',
  }),
  sInit_type: opt({
    flag: 'sinit-type', aliases: ['sInit-type'], kind: 'enum', choices: SINIT_TYPES, schema: oneOf(SINIT_TYPES),
    default: 'constant', group: 'Sparsity',
    help: 'STR: initialisation of the thresholds (only constant; quirk 12: other values are rejected instead of breaking)',
  }),
  sInit_value: opt({
    flag: 'sinit-value', aliases: ['sInit-value'], kind: 'float', schema: num(), default: -3200, group: 'Sparsity',
    help: 'STR: initial value s of every threshold sigmoid(s); very negative = training starts dense (quirk 13 fixed: the reference default 100 pruned every weight at init; now -3200, the ResNet50 recipe)',
  }),
  sparse_function: opt({
    flag: 'sparse-function', kind: 'enum', choices: SPARSE_FUNCTIONS, schema: oneOf(SPARSE_FUNCTIONS), default: 'sigmoid', group: 'Sparsity',
    help: 'STR: threshold function (only sigmoid; quirk 12: other values are rejected instead of crashing)',
  }),
  init_prune_epoch: opt({
    flag: 'init-prune-epoch', aliases: ['init_prune_epoch'], kind: 'int', schema: int(), default: 0, group: 'Sparsity',
    help: 'GMP: first pruning epoch (0-based, inclusive)',
  }),
  final_prune_epoch: opt({
    flag: 'final-prune-epoch', aliases: ['final_prune_epoch'], kind: 'int', schema: int(), default: -100, group: 'Sparsity',
    help: 'GMP: last pruning epoch (inclusive); the default window is empty, so GMP does not prune unless set (quirk 16)',
  }),
  random_mask: opt({
    flag: 'random-mask', kind: 'bool', schema: bool(), default: false, group: 'Sparsity',
    help: 'unused, as in the reference (quirk 11); accepted for compatibility',
  }),
  freeze_weights: opt({
    flag: 'freeze-weights', kind: 'bool', schema: bool(), default: false, group: 'Sparsity',
    help: 'a no-op in the reference (quirk 10); accepted for compatibility',
  }),
  stats_every: opt({
    flag: 'stats-every', kind: 'int', schema: int(1).optional(), default: undefined, defaultText: 'once per epoch',
    group: 'Sparsity',
    help: 'compute sparsity statistics for the progress display every N training iterations',
  }),

  target_sparsity: opt({
    flag: 'target-sparsity', kind: 'float',
    schema: num().gt(0, 'must be a percentage in (0, 100)').lt(100, 'must be a percentage in (0, 100)').optional(),
    default: undefined, defaultText: "none (STR's sparsity follows from sInit and the decay)", group: 'Sparsity',
    help: 'STR: end the run at this total sparsity (%); a controller sets the thresholds\' decay (st_decay) every few steps so that sparsity follows a cubic ramp to it, and the last step rescales every threshold by one common factor to land on it (STRConv and SGD only; sInit defaults to -5 then; --st-decay is ignored)',
  }),
  target_sparsity_ramp: opt({
    flag: 'target-sparsity-ramp', kind: 'float', schema: num().gt(0, 'must be in (0, 1]').lte(1, 'must be in (0, 1]'), default: 0.5,
    group: 'Sparsity',
    help: 'with --target-sparsity: fraction of the training steps over which the scheduled sparsity ramps up to the target (then holds)',
  }),

  // ---------------------------------------------------------------- Optimizer/Schedule
  optimizer: opt({
    flag: 'optimizer', kind: 'enum', choices: OPTIMIZERS, schema: oneOf(OPTIMIZERS), default: 'sgd', group: 'Optimizer/Schedule',
    help: 'sgd or adam',
  }),
  epochs: opt({
    flag: 'epochs', kind: 'int', schema: int(0), default: 90, group: 'Optimizer/Schedule',
    help: 'total number of epochs; also the cosine horizon',
  }),
  start_epoch: opt({
    flag: 'start-epoch', kind: 'int', schema: int(0).optional(), default: undefined,
    defaultText: '0, or the checkpoint epoch with --resume', group: 'Optimizer/Schedule',
    help: 'index of the first epoch',
  }),
  lr: opt({
    flag: 'lr', aliases: ['learning-rate'], kind: 'float', schema: gt0(), default: 0.1, group: 'Optimizer/Schedule',
    help: 'base learning rate',
  }),
  lr_policy: opt({
    flag: 'lr-policy', kind: 'enum', choices: LR_POLICIES, schema: oneOf(LR_POLICIES), default: 'constant_lr', group: 'Optimizer/Schedule',
    help: 'learning-rate schedule (evaluated once per epoch unless --lr-schedule-granularity step)',
  }),
  warmup_length: opt({
    flag: 'warmup-length', aliases: ['warmup_length'], kind: 'float', schema: ge0(), default: 0, group: 'Optimizer/Schedule',
    help: 'linear warm-up length in epochs (quirk 5: the reference help text said iterations); a fraction of an epoch with --lr-schedule-granularity step',
  }),
  lr_schedule_granularity: opt({
    flag: 'lr-schedule-granularity', kind: 'enum', choices: LR_GRANULARITIES, schema: oneOf(LR_GRANULARITIES), default: 'epoch',
    group: 'Optimizer/Schedule',
    help: 'epoch: the schedule is evaluated once per epoch, as the reference; step: at every iteration, at the fractional epoch (warm-up linear in steps, cosine annealed within each epoch)',
  }),
  multistep_lr_adjust: opt({
    flag: 'multistep-lr-adjust', aliases: ['lr_adjust'], kind: 'int', schema: int(1), default: 30, group: 'Optimizer/Schedule',
    help: 'multistep_lr: epochs between decays (quirk 4 fixed: the flag works; the YAML key lr_adjust is an alias)',
  }),
  multistep_lr_gamma: opt({
    flag: 'multistep-lr-gamma', aliases: ['lr_gamma'], kind: 'float', schema: gt0(), default: 0.1, group: 'Optimizer/Schedule',
    help: 'multistep_lr: decay factor (quirk 4 fixed: the flag works and takes a float; the YAML key lr_gamma is an alias)',
  }),
  momentum: opt({
    flag: 'momentum', kind: 'float', schema: unit(), default: 0.9, group: 'Optimizer/Schedule',
    help: 'SGD momentum',
  }),
  nesterov: opt({
    flag: 'nesterov', kind: 'bool', schema: bool(), default: false, group: 'Optimizer/Schedule',
    help: 'Nesterov momentum for SGD',
  }),
  weight_decay: opt({
    flag: 'weight-decay', aliases: ['wd'], kind: 'float', schema: ge0(), default: 1e-4, group: 'Optimizer/Schedule',
    help: 'L2 weight decay (coupled, added to the gradient), for SGD and Adam (quirk 15 fixed: the reference Adam had none, so STR thresholds never moved)',
  }),
  st_decay: opt({
    flag: 'st-decay', kind: 'float', schema: ge0().optional(), default: undefined, defaultText: '--weight-decay',
    group: 'Optimizer/Schedule',
    help: 'weight decay of the STR thresholds',
  }),
  no_bn_decay: opt({
    flag: 'no-bn-decay', kind: 'bool', schema: bool(), default: false, group: 'Optimizer/Schedule',
    help: 'no weight decay on BatchNorm parameters (all of them, chosen by module type: quirk 14 fixed)',
  }),
  label_smoothing: opt({
    flag: 'label-smoothing', kind: 'float', schema: unit().optional(), default: undefined, defaultText: 'none (plain cross-entropy)',
    group: 'Optimizer/Schedule',
    help: 'label smoothing epsilon',
  }),

  // ---------------------------------------------------------------- Run/Output
  config: opt({
    flag: 'config', kind: 'string', schema: str().optional(), default: undefined, defaultText: 'none (defaults and flags only)',
    group: 'Run/Output',
    help: "YAML config file; its file-name stem names the run folder ('default' without one) (quirk 3 fixed: optional)",
  }),
  name: opt({
    flag: 'name', kind: 'string', schema: str(), default: undefined, defaultText: '<arch>_<conv_type>', group: 'Run/Output',
    help: 'experiment name: run folder, results.csv, layer-wise JSON names (quirk 3 fixed: optional)',
  }),
  log_dir: opt({
    flag: 'log-dir', kind: 'string', schema: str(), default: 'runs', group: 'Run/Output',
    help: 'root folder of the run folders',
  }),
  print_freq: opt({
    flag: 'print-freq', aliases: ['p'], kind: 'int', schema: int(1), default: 10, group: 'Run/Output',
    help: 'print and log training metrics every N iterations',
  }),
  save_every: opt({
    flag: 'save-every', aliases: ['save_every'], kind: 'int', schema: int(), default: -1, group: 'Run/Output',
    help: 'also keep checkpoints/epoch_N when N % save_every == 0 (only if > 0)',
  }),
  save_last: opt({
    flag: 'save-last', kind: 'bool', schema: bool(), default: true, group: 'Run/Output',
    help: 'write checkpoints/last every epoch, for --resume (turn off with --no-save-last or --save-last=false)',
  }),
  save_sparse: opt({
    flag: 'save-sparse', kind: 'bool', schema: bool(), default: false, group: 'Run/Output',
    help: 'also write every checkpoint as a compact <name>.sparse.safetensors (non-zeros + bit mask; for --pretrained, --evaluate, report, export, predict; not --resume)',
  }),
  seed: opt({
    flag: 'seed', kind: 'int', schema: int(0, Number.MAX_SAFE_INTEGER).optional(), default: undefined, defaultText: 'unseeded',
    group: 'Run/Output',
    help: 'random seed (initialisation, shuffling, augmentation)',
  }),
  resume: opt({
    flag: 'resume', kind: 'string', schema: str().optional(), default: undefined, defaultText: 'none', group: 'Run/Output',
    help: 'checkpoint to resume: weights, optimizer state, epoch, best accuracies, GMP state',
  }),
  evaluate: opt({
    flag: 'evaluate', aliases: ['e'], kind: 'bool', schema: bool(), default: false, group: 'Run/Output',
    help: 'validate once and exit',
  }),
  summary: opt({
    flag: 'summary', kind: 'bool', schema: bool(), default: false, group: 'Run/Output',
    help: 'print the model summary table (parameters, non-zeros, MACs per layer) and exit; needs no data',
  }),
  progress: opt({
    flag: 'progress', kind: 'enum', choices: PROGRESS, schema: oneOf(PROGRESS), default: 'auto', group: 'Run/Output',
    help: 'progress display: auto (bar on a terminal, plain lines otherwise), bar, plain or none',
  }),

  // ---------------------------------------------------------------- Interop
  pretrained: opt({
    flag: 'pretrained', kind: 'string', schema: str().optional(), default: undefined, defaultText: 'none', group: 'Interop',
    help: 'checkpoint (.pth, .state or .safetensors) whose weights are loaded',
  }),
  ignore_pretrained_weights: opt({
    flag: 'ignore-pretrained-weights', kind: 'bool', schema: bool(), default: false, group: 'Interop',
    help: 'with --pretrained: do not load its weights (use it for --use-budget only)',
  }),
  dense_conv_model: opt({
    flag: 'dense-conv-model', kind: 'bool', schema: bool(), default: false, group: 'Interop',
    help: 'with --pretrained: write the dense-compatible model (thresholds folded into the weights) and exit',
  }),
  use_budget: opt({
    flag: 'use-budget', kind: 'bool', schema: bool(), default: false, group: 'Interop',
    help: "with --pretrained STR checkpoint: set each DNW/GMP layer's prune rate to 1 - its density",
  }),
  budget: opt({
    flag: 'budget', kind: 'string', schema: str().optional(), default: undefined, defaultText: 'none', group: 'Interop',
    help: 'budget CSV (e.g. budgets/STR_Budgets_ResNet50.csv) giving per-layer DNW/GMP prune rates; needs --budget-column',
  }),
  budget_column: opt({
    flag: 'budget-column', kind: 'string', schema: str().optional(), default: undefined, defaultText: 'none', group: 'Interop',
    help: 'overall sparsity (%) naming the budget column to use, e.g. 90.23',
  }),

  // ---------------------------------------------------------------- Distributed
  multigpu: opt({
    flag: 'multigpu', kind: 'int-list',
    schema: z
      .array(int(0), { invalid_type_error: 'must be a comma-separated list of device ids' })
      .min(1, 'must name at least one device')
      .refine((ids) => new Set(ids).size === ids.length, 'must not repeat a device id')
      .optional(),
    default: undefined, defaultText: 'one device', group: 'Distributed',
    help: 'comma-separated device ids, one worker process per device; --batch-size is the global batch (quirk 3 fixed: optional)',
  }),
  distributed: opt({
    flag: 'distributed', kind: 'enum', choices: DISTRIBUTED, schema: oneOf(DISTRIBUTED), default: 'local', group: 'Distributed',
    help: "transport between workers: 'local' (processes on this machine) or 'mpi' (launched with mpirun)",
  }),

  // ---------------------------------------------------------------- Backend
  backend: opt({
    flag: 'backend', kind: 'enum', choices: BACKENDS, schema: oneOf(BACKENDS), default: 'auto', group: 'Backend',
    help: 'TensorFlow.js backend: auto = tfjs-node-gpu (CUDA), then webgpu on a hardware GPU adapter (Dawn: Vulkan, Metal, D3D12), then tfjs-node, then wasm; webgpu uses a software adapter (tests only) when there is no GPU',
  }),
} as const;

export type OptionKey = keyof typeof OPTIONS;
export const OPTION_KEYS = Object.keys(OPTIONS) as OptionKey[];

type Shape = { [K in OptionKey]: (typeof OPTIONS)[K]['schema'] };
const shape = Object.fromEntries(OPTION_KEYS.map((k) => [k, OPTIONS[k].schema])) as Shape;

/** The whole configuration; `.strict()`: an object with any other key is invalid. */
export const RunConfigSchema = z.object(shape).strict();
/** The effective configuration of a run (every option resolved; optional ones may be undefined). */
export type RunConfig = z.infer<typeof RunConfigSchema>;

export function optionSpec(key: OptionKey): OptionSpec {
  return OPTIONS[key] as OptionSpec;
}

/** Long spellings (no dashes) accepted for an option: the flag, the dest, the aliases, each with `-`/`_` swapped. */
export function longSpellings(key: OptionKey): string[] {
  const spec = optionSpec(key);
  const base = [spec.flag, key, ...(spec.aliases ?? [])].filter((s) => s.length > 1);
  const out = new Set<string>();
  for (const s of base) {
    out.add(s);
    out.add(s.replace(/_/g, '-'));
    out.add(s.replace(/-/g, '_'));
  }
  return [...out];
}

/** Single-letter short flags of an option (`-a`, `-j`, `-b`, `-p`, `-e`). */
export function shortFlags(key: OptionKey): string[] {
  return (optionSpec(key).aliases ?? []).filter((s) => s.length === 1);
}

export interface QuirkFix {
  /** Quirk number in STR-SPEC §16. */
  quirk: number;
  /** The options concerned. */
  keys: OptionKey[];
  /** What this project does, and why. */
  decision: string;
}

/**
 * Decisions on the quirks of STR-SPEC §16 that concern configuration. Quirks about the model,
 * the optimizer internals or the outputs are decided (and documented) where those live.
 */
export const QUIRK_FIXES: readonly QuirkFix[] = [
  {
    quirk: 1,
    keys: ['arch', 'workers', 'batch_size', 'print_freq', 'evaluate', 'lr', 'weight_decay'],
    decision:
      'Fixed: the CLI override is keyed by the option, not the spelling, so -a -j -b -p -e, --learning-rate and --wd work like their long forms.',
  },
  {
    quirk: 2,
    keys: ['sInit_value'],
    decision: 'Fixed: a negative number as its own token (--sInit-value -100, --lr -1e-4) is a value, as is --flag=value.',
  },
  {
    quirk: 3,
    keys: ['config', 'name', 'multigpu', 'conv_type', 'bn_type'],
    decision:
      "Fixed: all optional. No --config: defaults and flags only, run-folder stem 'default'. name defaults to <arch>_<conv_type>. multigpu defaults to one device. conv_type defaults to DenseConv, bn_type to LearnedBatchNorm.",
  },
  {
    quirk: 4,
    keys: ['multistep_lr_gamma', 'multistep_lr_adjust'],
    decision:
      'Fixed: --multistep-lr-gamma (a float) and --multistep-lr-adjust drive multistep_lr; the reference YAML keys lr_gamma / lr_adjust are accepted as aliases.',
  },
  { quirk: 5, keys: ['warmup_length'], decision: 'Help text fixed: warm-up is measured in epochs (behaviour unchanged).' },
  {
    quirk: 7,
    keys: ['width_mult'],
    decision: 'Fixed: width_mult scales the channel widths of ResNet and MobileNetV1 (and still appears in the run-folder name when ≠ 1).',
  },
  {
    quirk: 8,
    keys: ['num_classes'],
    decision:
      'Fixed: num_classes sizes every classifier; unset (the default) it is the number of class folders of the dataset, or 1000 without data.',
  },
  {
    quirk: 10,
    keys: ['freeze_weights'],
    decision: 'Kept as a no-op flag for compatibility; setting it prints a warning.',
  },
  {
    quirk: 11,
    keys: ['random_mask', 'one_batch'],
    decision: 'Kept as unused flags for compatibility; setting them prints a warning.',
  },
  {
    quirk: 12,
    keys: ['sparse_function', 'sInit_type'],
    decision: 'Values other than sigmoid / constant are rejected with a clear error instead of crashing later.',
  },
  {
    quirk: 13,
    keys: ['sInit_value'],
    decision:
      'Default changed from 100 (threshold 1.0: every weight pruned at init) to -3200 (the ResNet50 recipe: training starts exactly dense). Shipped configs set it explicitly.',
  },
  {
    quirk: 14,
    keys: ['no_bn_decay'],
    decision: '--no-bn-decay applies to every BatchNorm parameter, selected by module type rather than by name substring.',
  },
  {
    quirk: 15,
    keys: ['weight_decay', 'optimizer'],
    decision: 'weight_decay (and st_decay) apply to Adam too, so STR thresholds can move under Adam.',
  },
  {
    quirk: 30,
    keys: ['set'],
    decision: "Fixed: --set TinyImageNet reads the reference's HDF5 files through h5wasm (an npm dependency), where the reference needed h5py, missing from its requirements.",
  },
  {
    quirk: 32,
    keys: [],
    decision:
      "YAML is read as YAML 1.2 (js-yaml core schema): 1e-4 is a number, not a string as under PyYAML. Numeric keys also accept numeric strings ('1e-4'), boolean keys accept yes/no/on/off, and string keys accept numbers (budget_column: 90.23), so configs written for the reference keep their meaning.",
  },
];
