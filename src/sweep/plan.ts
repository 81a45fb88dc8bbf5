/**
 * A sweep's runs: which methods at which targets, each with its own configuration derived from
 * the base config, its own folder (deterministic, so a restarted sweep finds it) and, for
 * dnw-str-budget, the STR run it waits for.
 *
 * What each run takes from where (also in the README):
 * - everything (data, model, schedule, optimizer, seed, …) from the base config and the flags
 *   after `--`; an unseeded base gets seed 0 (a sweep must be repeatable to be resumable);
 * - `conv_type`, `name`, `log_dir` from the method and the run's folder;
 * - dense: DenseConv, prune_rate 0;
 * - str: STRConv with `target_sparsity` (the thresholds' init `sInit_value` and decays stay the
 *   base config's: the target controller steers from there);
 * - gmp: GMPConv, `prune_rate` computed so the LAST epoch's rate gives the target total, window
 *   `init_prune_epoch`/`final_prune_epoch` from the base config when it prunes within the run,
 *   else 0 … epochs − 2 (the shipped fmnist-resnet18-gmp.yaml's: one epoch at the final rate);
 *   `--gmp-window` overrides;
 * - dnw: DNWConv, `prune_rate` computed for the target total;
 * - dnw-str-budget: DNWConv with `use_budget` + `pretrained` = the finished STR run's last
 *   checkpoint + `ignore_pretrained_weights` (README "Budgets"): STR's per-layer densities.
 * Settings that would make a run something else (pretrained weights, budgets, evaluation,
 * resume, several devices) are cleared.
 */
import { join } from 'node:path';
import { existsSync, readdirSync } from 'node:fs';
import type { RunConfig } from '../config/schema.js';
import { OPTION_KEYS, optionSpec, type OptionKey } from '../config/schema.js';
import { createModel } from '../models/registry.js';
import { modelOptionsOfConfig } from '../config/model-options.js';
import { datasetRoot } from '../data/datasets.js';
import { runBase } from '../io/run-dir.js';
import type { ConvTypeName } from '../nn/conv/index.js';
import yaml from 'js-yaml';
import { UserError } from '../util/errors.js';
import { checkGmpWindow, gmpFinalRate, rateForTotal, type LayerSize } from './rates.js';

export const METHODS = ['dense', 'str', 'gmp', 'dnw', 'dnw-str-budget'] as const;
export type Method = (typeof METHODS)[number];

const CONV_TYPE: Record<Method, ConvTypeName> = {
  dense: 'DenseConv',
  str: 'STRConv',
  gmp: 'GMPConv',
  dnw: 'DNWConv',
  'dnw-str-budget': 'DNWConv',
};

/** The config key of STR's target (issue 12, item 1). */
export const TARGET_KEY = 'target_sparsity';

export interface SweepRun {
  /** `dense`, `str-90`, `dnw-str-budget-95`: the run's folder and name in the CSV. */
  id: string;
  method: Method;
  /** Target total sparsity (percent); none for dense. */
  target?: number;
  /** What the method was given, for the progress lines: `prune_rate 0.9143`, `target_sparsity 90`. */
  setting: string;
  config: RunConfig;
  /** `<out>/<id>`: the run's log_dir, config file, log and result. */
  slot: string;
  configFile: string;
  /** Where the training run writes (its checkpoints/ hold last.safetensors). */
  runDir: string;
  /** The run that must finish first (dnw-str-budget's STR run). */
  after?: string;
  /** The text of configFile. */
  yaml: string;
}

export function parseMethods(text: string): Method[] {
  const out: Method[] = [];
  for (const m of text.split(',').map((s) => s.trim())) {
    if (!(METHODS as readonly string[]).includes(m)) throw new UserError(`sweep --methods: unknown method '${m}'; expected a comma-separated list of ${METHODS.join(', ')}`);
    if (!out.includes(m as Method)) out.push(m as Method);
  }
  return out;
}

export function parseTargets(text: string): number[] {
  const out: number[] = [];
  for (const t of text.split(',').map((s) => s.trim())) {
    const v = t === '' ? NaN : Number(t);
    if (!(v > 0 && v < 100)) throw new UserError(`sweep --targets: '${t}' is not a sparsity in percent strictly between 0 and 100`);
    if (!out.includes(v)) out.push(v);
  }
  return out;
}

export function parseGmpWindow(text: string): [number, number] {
  const m = /^\s*(\d+)\s*,\s*(\d+)\s*$/.exec(text);
  if (!m || Number(m[1]) > Number(m[2])) throw new UserError(`sweep --gmp-window '${text}': expected INIT,FINAL epochs (integers, INIT ≤ FINAL)`);
  return [Number(m[1]), Number(m[2])];
}

export const needsTargets = (m: Method) => m !== 'dense';
export const runId = (m: Method, target?: number) => (target === undefined ? m : `${m}-${target}`);

/** The classifier size: num_classes, else the class folders of the train split (1000 without data, as the run). */
export function classCount(c: RunConfig): number {
  if (c.num_classes !== undefined) return c.num_classes;
  try {
    const train = join(datasetRoot(c.data, c.set), 'train');
    if (existsSync(train)) {
      const n = readdirSync(train, { withFileTypes: true }).filter((d) => d.isDirectory()).length;
      if (n > 0) return n;
    }
  } catch {
    /* TinyImageNet & co: fall through */
  }
  return 1000;
}

/** Every conv/fc layer's weight count, and whether a run of this conv type prunes it. */
export function layerSizes(c: RunConfig): LayerSize[] {
  const model = createModel(c.arch, modelOptionsOfConfig(c, classCount(c)));
  try {
    return model.convLayers().map(([, conv]) => ({ numel: conv.numel, sparse: conv.typeName === c.conv_type }));
  } finally {
    model.dispose();
  }
}

export interface PlanOptions {
  base: RunConfig;
  methods: Method[];
  targets: number[];
  out: string;
  gmpWindow?: [number, number];
  /** Loader threads per run (the cores split between parallel runs). */
  workers: number;
  /** Whether this build has STR's target (the target-sparsity option); checked, not assumed. */
  hasTarget?: boolean;
  /**
   * The options the base config file and the flags set (loadConfig's yamlKeys ∪ explicit): a run's
   * file holds these and the sweep's own, so options left unset keep their derived defaults in
   * the run (e.g. --target-sparsity's own sInit when the base gives none). Default: every option.
   */
  baseKeys?: ReadonlySet<string>;
}

/** Options every run's file sets (besides the base's), and those of single methods. */
const SWEEP_KEYS = ['name', 'log_dir', 'conv_type', 'prune_rate', 'seed', 'workers', 'save_last'];
const METHOD_KEYS = [TARGET_KEY, 'init_prune_epoch', 'final_prune_epoch', 'use_budget', 'pretrained', 'ignore_pretrained_weights'];

/** A run's configuration file: the base's options and the sweep's, as YAML that loads with --config. */
export function runConfigYaml(c: RunConfig, keys: ReadonlySet<string> | undefined, header: string): string {
  const obj: Record<string, unknown> = {};
  const all = c as Record<string, unknown>;
  for (const k of [...OPTION_KEYS].sort()) {
    if (k === 'config') continue;
    const wanted = keys === undefined || keys.has(k) || SWEEP_KEYS.includes(k) || (METHOD_KEYS.includes(k) && JSON.stringify(all[k]) !== JSON.stringify(optionSpec(k as OptionKey).default));
    if (wanted && all[k] !== undefined) obj[k] = all[k];
  }
  return `# ${header}\n` + yaml.dump(obj, { sortKeys: true, lineWidth: -1, noRefs: true, schema: yaml.CORE_SCHEMA });
}

/** The GMP window a sweep uses (see the module comment). */
export function gmpWindowOf(base: RunConfig, given?: [number, number]): [number, number] {
  if (given) return given;
  const init = base.init_prune_epoch;
  const final = base.final_prune_epoch;
  if (final >= init && init <= base.epochs - 1) return [init, final];
  return [0, Math.max(0, base.epochs - 2)];
}

/** The base with what every run sets itself cleared. */
function commonConfig(base: RunConfig, method: Method, slot: string, workers: number): RunConfig {
  const c: RunConfig = {
    ...base,
    name: method,
    log_dir: slot,
    conv_type: CONV_TYPE[method],
    prune_rate: 0,
    seed: base.seed ?? 0,
    workers,
    save_last: true,
    resume: undefined,
    start_epoch: undefined,
    evaluate: false,
    summary: false,
    dense_conv_model: false,
    pretrained: undefined,
    ignore_pretrained_weights: false,
    use_budget: false,
    budget: undefined,
    budget_column: undefined,
    multigpu: undefined,
  };
  // a stem type equal to the base's conv type follows the method's; a different one (DenseConv) stays
  if (base.first_layer_type === base.conv_type) c.first_layer_type = undefined;
  (c as Record<string, unknown>)[TARGET_KEY] = undefined;
  return c;
}

export function runDirOf(c: RunConfig, id: string): string {
  return runBase({ logDir: c.log_dir, configStem: id, name: c.name!, pruneRate: c.prune_rate, widthMult: c.width_mult });
}

/**
 * The sweep's runs in order: dense first, then per target the methods in the given order (so a
 * budget run comes right after its STR run). Rates come from the model's layer sizes.
 */
export function planSweep(o: PlanOptions): SweepRun[] {
  const runs: SweepRun[] = [];
  const hasTarget = o.hasTarget ?? (OPTION_KEYS as readonly string[]).includes(TARGET_KEY);
  const add = (method: Method, target: number | undefined, make: (c: RunConfig) => { setting: string; after?: string }) => {
    const id = runId(method, target);
    const slot = join(o.out, id);
    const config = commonConfig(o.base, method, slot, o.workers);
    const { setting, after } = make(config);
    const text = runConfigYaml(config, o.baseKeys, `str-train sweep, run ${id}: ${setting}. Reload with --config.`);
    runs.push({ id, method, target, setting, config, slot, configFile: join(slot, `${id}.yaml`), runDir: runDirOf(config, id), after, yaml: text });
  };
  if (o.methods.includes('dense')) add('dense', undefined, () => ({ setting: 'dense' }));
  const window = gmpWindowOf(o.base, o.gmpWindow);
  const gmpW = { epochs: o.base.epochs, initPruneEpoch: window[0], finalPruneEpoch: window[1] };
  for (const t of o.targets) {
    for (const m of o.methods) {
      if (m === 'dense') continue;
      add(m, t, (c) => {
        if (m === 'str') {
          if (!hasTarget) throw new UserError(`sweep --methods str: this build of str-train has no --target-sparsity option, which STR runs need`);
          // the run's target counts its STRConv layers; a dense stem/classifier would leave the
          // whole model below t, so the STR layers get the share that gives t overall
          const sizes = layerSizes(c);
          const all = sizes.reduce((a, l) => a + l.numel, 0);
          const str = sizes.reduce((a, l) => a + (l.sparse ? l.numel : 0), 0);
          const ts = (t * all) / str;
          if (!(ts < 100)) throw new UserError(`sweep --targets ${t}: the STR layers hold ${str} of ${all} weights and cannot reach ${t} % overall`);
          (c as Record<string, unknown>)[TARGET_KEY] = ts;
          return { setting: `target_sparsity ${+ts.toFixed(4)}` };
        }
        if (m === 'gmp') {
          checkGmpWindow(gmpW);
          c.init_prune_epoch = window[0];
          c.final_prune_epoch = window[1];
          c.prune_rate = rateForTotal(layerSizes(c), t, { rateOf: (x) => gmpFinalRate(x, gmpW), what: `sweep gmp at ${t} %`, hint: `GMP's window ${window[0]}-${window[1]} ends at ${+gmpFinalRate(1, gmpW).toFixed(4)} × prune_rate: widen it (--gmp-window) or train more epochs` });
          return { setting: `prune_rate ${+c.prune_rate.toFixed(6)}, window ${window[0]}-${window[1]} (ends at ${+gmpFinalRate(c.prune_rate, gmpW).toFixed(6)})` };
        }
        if (m === 'dnw') {
          c.prune_rate = rateForTotal(layerSizes(c), t, { what: `sweep dnw at ${t} %` });
          return { setting: `prune_rate ${+c.prune_rate.toFixed(6)}` };
        }
        // dnw-str-budget: the STR run at the same target must be in this sweep
        if (!o.methods.includes('str')) throw new UserError(`sweep --methods dnw-str-budget: needs str in --methods too (it takes the STR run's budget)`);
        const strId = runId('str', t);
        const strSlot = join(o.out, strId);
        const strDir = runDirOf({ ...c, log_dir: strSlot, name: 'str', prune_rate: 0 }, strId);
        c.use_budget = true;
        c.pretrained = join(strDir, 'checkpoints', 'last.safetensors');
        c.ignore_pretrained_weights = true;
        return { setting: `budget of ${strId}`, after: strId };
      });
    }
  }
  return runs;
}
