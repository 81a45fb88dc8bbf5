/**
 * Reads a run's configuration from the command line and an optional YAML file.
 *
 * Precedence (as the reference, STR-SPEC §1.1): an option present on the command line > its value
 * in the YAML > its default. Presence decides: a flag given with its default value still
 * overrides the YAML. Unlike the reference, the override is keyed by the option, whatever its
 * spelling (short flags, aliases: quirk 1), and negative numbers may be separate tokens (quirk 2).
 *
 * Every user mistake is a one-line UserError naming the flag or the file and key.
 */
import { readFileSync } from 'node:fs';
import { parse as parsePath, resolve } from 'node:path';
import type { Options as YargsOptions } from 'yargs';
import { yargs } from '../util/yargs.js';
import yaml from 'js-yaml';
import { distance } from 'fastest-levenshtein';
import { UserError } from '../util/errors.js';
import { defaultValResize } from '../data/transforms.js';
import {
  OPTION_GROUPS,
  OPTION_KEYS,
  RunConfigSchema,
  TARGET_SPARSITY_SINIT,
  longSpellings,
  optionSpec,
  shortFlags,
  type OptionKey,
  type OptionSpec,
  type RunConfig,
} from './schema.js';

export interface LoadedConfig {
  config: RunConfig;
  /** The `--config` path as given (relative paths stay relative), if any. */
  configPath?: string;
  /** Options given on the command line (canonical keys). */
  explicit: Set<OptionKey>;
  /** Options set by the YAML file (canonical keys; `config` never). */
  yamlKeys: Set<OptionKey>;
  /** Non-fatal remarks for the user (flags that do nothing, settings that disable a feature). */
  warnings: string[];
}

export interface LoadOptions {
  /** Directory the `--config` path is resolved against (default: process.cwd()). */
  cwd?: string;
}

/** The run-folder stem: the config file name without directory and extension; 'default' without a config. */
export function configStem(configPath?: string): string {
  if (configPath === undefined || configPath === '') return 'default';
  return parsePath(configPath).name;
}

/** True when argv asks for help (`--help` / `-h` before any `--`); the CLI handles that before loadConfig. */
export function wantsHelp(argv: readonly string[]): boolean {
  for (const t of argv) {
    if (t === '--') return false;
    if (t === '--help' || t === '-h') return true;
  }
  return false;
}


// ------------------------------------------------------------------------------------------------
// Spelling tables

/** Lower-cased long spelling with `-` → `_` → canonical key. */
const LONG: Map<string, OptionKey> = new Map();
/** Every long spelling exactly as yargs must accept it. */
const YARGS_ALIASES: Map<OptionKey, string[]> = new Map();
for (const key of OPTION_KEYS) {
  const spellings = longSpellings(key);
  for (const s of spellings) LONG.set(normalise(s), key);
  const spec = optionSpec(key);
  YARGS_ALIASES.set(key, [...spellings.filter((s) => s !== spec.flag), ...shortFlags(key)]);
}
const SHORT: Map<string, OptionKey> = new Map();
for (const key of OPTION_KEYS) for (const s of shortFlags(key)) SHORT.set(s, key);

/** `--no-save-last` is the one negated boolean we accept (yargs' generic negation is off: `no_bn_decay` is a real option). */
const NO_SAVE_LAST = 'no-save-last';

function normalise(spelling: string): string {
  return spelling.replace(/-/g, '_').toLowerCase();
}

function suggest(unknown: string): OptionKey | undefined {
  const u = normalise(unknown);
  let best: OptionKey | undefined;
  let bestD = Infinity;
  for (const [s, key] of LONG) {
    const d = distance(u, s);
    if (d < bestD) {
      bestD = d;
      best = key;
    }
  }
  return bestD <= Math.max(1, Math.floor(u.length / 3)) ? best : undefined;
}

// ------------------------------------------------------------------------------------------------
// Raw values → typed values

const INT_RE = /^[+-]?\d+$/;
const FLOAT_RE = /^[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i;
const TRUE_WORDS = new Set(['true', 'yes', 'on', '1']);
const FALSE_WORDS = new Set(['false', 'no', 'off', '0']);

type Coerced = { ok: true; value: unknown } | { ok: false; problem: string };

function expectation(spec: OptionSpec): string {
  switch (spec.kind) {
    case 'int':
      return 'must be an integer';
    case 'float':
      return 'must be a number';
    case 'bool':
      return 'must be true or false';
    case 'string':
      return 'must be a string';
    case 'enum':
      return `must be one of ${spec.choices!.join(', ')}`;
    case 'int-list':
      return 'must be a comma-separated list of device ids (non-negative integers)';
  }
}

function intList(items: unknown[]): number[] | undefined {
  const out: number[] = [];
  for (const item of items) {
    if (typeof item === 'number' && Number.isInteger(item)) out.push(item);
    else if (typeof item === 'string' && INT_RE.test(item.trim())) out.push(Number(item.trim()));
    else return undefined;
  }
  return out;
}

/** Turns a CLI string or a YAML value into the option's JS type (ranges are checked later by zod). */
function coerce(spec: OptionSpec, raw: unknown): Coerced {
  const bad: Coerced = { ok: false, problem: expectation(spec) };
  switch (spec.kind) {
    case 'int':
      if (typeof raw === 'number') return Number.isInteger(raw) ? { ok: true, value: raw } : bad;
      if (typeof raw === 'string' && INT_RE.test(raw.trim())) return { ok: true, value: Number(raw.trim()) };
      return bad;
    case 'float':
      if (typeof raw === 'number') return { ok: true, value: raw };
      if (typeof raw === 'string' && FLOAT_RE.test(raw.trim())) return { ok: true, value: Number(raw.trim()) };
      return bad;
    case 'bool':
      if (typeof raw === 'boolean') return { ok: true, value: raw };
      if (typeof raw === 'string') {
        const w = raw.trim().toLowerCase();
        if (TRUE_WORDS.has(w)) return { ok: true, value: true };
        if (FALSE_WORDS.has(w)) return { ok: true, value: false };
      }
      return bad;
    case 'string':
      if (typeof raw === 'string') return { ok: true, value: raw };
      // YAML reads `budget_column: 90.23` or `name: 90` as numbers; the user meant the text.
      if (typeof raw === 'number' && Number.isFinite(raw)) return { ok: true, value: String(raw) };
      return bad;
    case 'enum': {
      if (typeof raw !== 'string') return bad;
      const match = spec.choices!.find((c) => c.toLowerCase() === raw.trim().toLowerCase());
      return match === undefined ? bad : { ok: true, value: match };
    }
    case 'int-list': {
      let list: number[] | undefined;
      if (Array.isArray(raw)) list = intList(raw);
      else if (typeof raw === 'number') list = intList([raw]);
      else if (typeof raw === 'string') list = intList(raw.split(','));
      return list === undefined ? bad : { ok: true, value: list };
    }
  }
}

function show(raw: unknown): string {
  if (typeof raw === 'string') return JSON.stringify(raw);
  if (typeof raw === 'number') return String(raw);
  if (raw === undefined) return 'nothing';
  try {
    return JSON.stringify(raw) ?? String(raw);
  } catch {
    return String(raw);
  }
}

// ------------------------------------------------------------------------------------------------
// Command line

interface CliResult {
  values: Map<OptionKey, unknown>;
  /** How the user spelled each option (`--sInit-value`, `-b`), for messages. */
  spelled: Map<OptionKey, string>;
}

const NEGATIVE_NUMBER = /^-(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i;

/**
 * Rewrites tokens yargs would misread: `--flag -1e-4` → `--flag=-1e-4` (yargs only knows plain
 * negative decimals), and checks `--bool=value`, which yargs would silently turn into false.
 */
function preprocess(argv: readonly string[], spelled: Map<OptionKey, string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const t = argv[i]!;
    if (t === '--') {
      out.push(...argv.slice(i));
      break;
    }
    let key: OptionKey | undefined;
    let name: string | undefined;
    let dashes = '--';
    const eq = t.indexOf('=');
    const hasValue = eq >= 0;
    if (t.startsWith('--')) {
      name = hasValue ? t.slice(2, eq) : t.slice(2);
      key = LONG.get(normalise(name));
    } else if (/^-[^-\d.](=|$)/.test(t)) {
      name = t[1]!;
      dashes = '-';
      key = SHORT.get(name);
    }
    if (key !== undefined && hasValue && optionSpec(key).kind === 'bool') {
      const v = t.slice(eq + 1).trim().toLowerCase();
      const b = TRUE_WORDS.has(v) ? true : FALSE_WORDS.has(v) ? false : undefined;
      if (b === undefined) throw new UserError(`${dashes}${name} takes no value or true/false, got ${show(t.slice(eq + 1))}`);
      out.push(`${dashes}${name}=${b}`);
      spelled.set(key, `${dashes}${name}`);
      continue;
    }
    if (key !== undefined) {
      spelled.set(key, `${dashes}${name}`);
      const next = argv[i + 1];
      if (!hasValue && optionSpec(key).kind !== 'bool' && next !== undefined && NEGATIVE_NUMBER.test(next)) {
        out.push(`${t}=${next}`);
        i++;
        continue;
      }
    } else if (t.startsWith('-') && !t.startsWith('--') && t.length > 2 && !NEGATIVE_NUMBER.test(t)) {
      // A short-flag group such as -eb64: remember the spellings for messages.
      for (const ch of t.slice(1)) {
        const k = SHORT.get(ch);
        if (k === undefined) break;
        spelled.set(k, `-${ch}`);
        if (optionSpec(k).kind !== 'bool') break;
      }
    }
    out.push(t);
  }
  return out;
}

function parseCli(argv: readonly string[]): CliResult {
  const spelled = new Map<OptionKey, string>();
  const tokens = preprocess(argv, spelled);
  const options: Record<string, YargsOptions> = {};
  for (const key of OPTION_KEYS) {
    const spec = optionSpec(key);
    options[spec.flag] = { type: spec.kind === 'bool' ? 'boolean' : 'string', alias: YARGS_ALIASES.get(key) };
  }
  options[NO_SAVE_LAST] = { type: 'boolean', alias: ['no_save_last'] };
  const parsed = yargs(tokens)
    .parserConfiguration({
      'boolean-negation': false,
      'camel-case-expansion': false,
      'dot-notation': false,
      'duplicate-arguments-array': false,
      'greedy-arrays': false,
      'parse-numbers': false,
      'parse-positional-numbers': false,
      'strip-aliased': true,
    })
    .options(options)
    .help(false)
    .version(false)
    .exitProcess(false)
    .strict(false)
    .fail((msg, err) => {
      throw new UserError(err?.message ?? msg);
    })
    .parseSync() as Record<string, unknown>;

  const positional = (parsed['_'] as unknown[]) ?? [];
  const flagKeys = Object.keys(parsed).filter((k) => k !== '_' && k !== '$0');
  const byFlag = new Map<string, OptionKey>(OPTION_KEYS.map((k) => [optionSpec(k).flag, k]));
  for (const k of flagKeys) {
    if (byFlag.has(k) || k === NO_SAVE_LAST) continue;
    const dashes = k.length === 1 ? '-' : '--';
    if (/^no[-_]/.test(k)) {
      const target = LONG.get(normalise(k.slice(3)));
      if (target !== undefined && optionSpec(target).kind === 'bool') {
        throw new UserError(`unknown flag --${k} (use --${optionSpec(target).flag}=false)`);
      }
    }
    const s = suggest(k);
    throw new UserError(
      s !== undefined
        ? `unknown flag ${dashes}${k} (did you mean --${optionSpec(s).flag}?)`
        : `unknown flag ${dashes}${k} (str-train --help lists the options)`,
    );
  }
  if (positional.length > 0) {
    throw new UserError(`unexpected argument ${show(String(positional[0]))} (options start with --)`);
  }

  const values = new Map<OptionKey, unknown>();
  for (const k of flagKeys) {
    if (k === NO_SAVE_LAST) continue;
    const key = byFlag.get(k)!;
    values.set(key, parsed[k]);
    if (!spelled.has(key)) spelled.set(key, `--${k}`);
  }
  if (parsed[NO_SAVE_LAST] !== undefined) {
    if (values.has('save_last')) throw new UserError('--save-last and --no-save-last are both given; keep one');
    values.set('save_last', !parsed[NO_SAVE_LAST]);
    spelled.set('save_last', '--no-save-last');
  }
  return { values, spelled };
}

// ------------------------------------------------------------------------------------------------
// YAML

interface YamlResult {
  values: Map<OptionKey, unknown>;
  spelled: Map<OptionKey, string>;
}

function readYaml(file: string, cwd: string): YamlResult {
  let text: string;
  try {
    text = readFileSync(resolve(cwd, file), 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'file not found'
        : code === 'EISDIR'
          ? 'is a directory, expected a YAML file'
          : code === 'EACCES'
            ? 'cannot be read (permission denied)'
            : `cannot be read (${code ?? (e as Error).message})`;
    throw new UserError(`--config ${file}: ${why}`);
  }
  let doc: unknown;
  try {
    // YAML 1.2 core schema (quirk 32): `1e-4` is a number; no timestamps or other extra types.
    doc = yaml.load(text, { schema: yaml.CORE_SCHEMA, filename: file });
  } catch (e) {
    if (e instanceof yaml.YAMLException) {
      const where = e.mark ? ` at line ${e.mark.line + 1}, column ${e.mark.column + 1}` : '';
      throw new UserError(`${file}: YAML syntax error${where}: ${e.reason}`);
    }
    throw e;
  }
  const values = new Map<OptionKey, unknown>();
  const spelled = new Map<OptionKey, string>();
  if (doc === undefined || doc === null) return { values, spelled };
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new UserError(`${file}: expected 'key: value' lines at the top level, got ${Array.isArray(doc) ? 'a list' : show(doc)}`);
  }
  for (const [name, value] of Object.entries(doc as Record<string, unknown>)) {
    const key = LONG.get(normalise(name));
    if (key === undefined) {
      const s = suggest(name);
      throw new UserError(
        s !== undefined
          ? `${file}: unknown key '${name}' (did you mean '${s}'?)`
          : `${file}: unknown key '${name}' (str-train --help lists the options)`,
      );
    }
    // `config` in a YAML is informational (settings.yaml records it): the file loaded is the config.
    if (key === 'config') continue;
    const earlier = spelled.get(key);
    if (earlier !== undefined) {
      throw new UserError(`${file}: '${earlier}' and '${name}' set the same option '${key}'; keep one`);
    }
    values.set(key, value);
    spelled.set(key, name);
  }
  return { values, spelled };
}

// ------------------------------------------------------------------------------------------------
// Loading

/**
 * Parses argv (without the node binary, the script and any subcommand) and the `--config` YAML,
 * and returns the validated configuration. Throws UserError on any mistake.
 */
export function loadConfig(argv: readonly string[], opts: LoadOptions = {}): LoadedConfig {
  const cwd = opts.cwd ?? process.cwd();
  const cli = parseCli(argv);

  const cliWhere = (key: OptionKey) => cli.spelled.get(key) ?? `--${optionSpec(key).flag}`;

  let configPath: string | undefined;
  if (cli.values.has('config')) {
    const c = cli.values.get('config');
    if (typeof c !== 'string' || c === '') throw new UserError(`${cliWhere('config')} needs a file name`);
    configPath = c;
  }
  const yml: YamlResult = configPath !== undefined ? readYaml(configPath, cwd) : { values: new Map(), spelled: new Map() };
  const yamlWhere = (key: OptionKey) => `${configPath}: '${yml.spelled.get(key) ?? key}'`;
  /** Where an option's value came from, as the subject of an error message. */
  const where = (key: OptionKey): string =>
    cli.values.has(key)
      ? cliWhere(key)
      : yml.values.has(key)
        ? yamlWhere(key)
        : `'${key}' (default ${show(optionSpec(key).default)})`;

  const merged: Record<string, unknown> = {};
  for (const key of OPTION_KEYS) merged[key] = optionSpec(key).default;

  for (const [key, raw] of yml.values) {
    const spec = optionSpec(key);
    if (raw === null) {
      // `key:` or `key: null` = unset (the reference's None), allowed for optional options only.
      if (spec.schema.isOptional()) {
        merged[key] = undefined;
        continue;
      }
      throw new UserError(`${yamlWhere(key)} ${expectation(spec)}, got null`);
    }
    const c = coerce(spec, raw);
    if (!c.ok) throw new UserError(`${yamlWhere(key)} ${c.problem}, got ${show(raw)}`);
    merged[key] = c.value;
  }
  for (const [key, raw] of cli.values) {
    const spec = optionSpec(key);
    if (raw === '' && spec.kind !== 'bool') throw new UserError(`${cliWhere(key)} needs a value`);
    const c = coerce(spec, raw);
    if (!c.ok) throw new UserError(`${cliWhere(key)} ${c.problem}, got ${show(raw)}`);
    merged[key] = c.value;
  }
  merged['config'] = configPath;

  // Derived values.
  if (merged['name'] === undefined) merged['name'] = `${merged['arch']}_${merged['conv_type']}`;
  // The reference's 256-for-224 ratio, so that --image-size alone gives a matching validation resize.
  if (merged['val_resize'] === undefined && typeof merged['image_size'] === 'number') {
    merged['val_resize'] = defaultValResize(merged['image_size']);
  }
  // --target-sparsity steers the thresholds through their decay: they must start where it acts
  // (sigmoid'(s) and the weights under the threshold are 0 at the default -3200)
  if (merged['target_sparsity'] !== undefined && !cli.values.has('sInit_value') && !yml.values.has('sInit_value')) {
    merged['sInit_value'] = TARGET_SPARSITY_SINIT;
  }
  if (merged['first_layer_dense'] === true) {
    if (merged['first_layer_type'] !== undefined && merged['first_layer_type'] !== 'DenseConv') {
      throw new UserError(
        `${where('first_layer_type')} is ${merged['first_layer_type']}, but ${where('first_layer_dense')} makes the first layer DenseConv; keep one`,
      );
    }
    merged['first_layer_type'] = 'DenseConv';
  }

  const parsed = RunConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = issue.path[0] as OptionKey;
    const rawValue = cli.values.has(key) ? cli.values.get(key) : yml.values.has(key) ? yml.values.get(key) : merged[key];
    throw new UserError(`${where(key)} ${issue.message}, got ${show(rawValue)}`);
  }
  const config = parsed.data;
  checkCombinations(config, where, (key) => cli.values.has(key) || yml.values.has(key));

  return {
    config,
    configPath,
    explicit: new Set(cli.values.keys()),
    yamlKeys: new Set(yml.values.keys()),
    warnings: warningsFor(config, where),
  };
}

/** Errors that involve several options (each names where the first option came from). */
function checkCombinations(c: RunConfig, where: (key: OptionKey) => string, isSet: (key: OptionKey) => boolean): void {
  if (c.val_resize < c.image_size) {
    throw new UserError(`${where('val_resize')} must be ≥ the image size ${c.image_size}, got ${c.val_resize}`);
  }
  if (!Number.isInteger(c.warmup_length) && c.lr_schedule_granularity === 'epoch') {
    throw new UserError(`${where('warmup_length')} must be a whole number of epochs with the per-epoch schedule, got ${c.warmup_length} (a fractional warm-up needs --lr-schedule-granularity step)`);
  }
  if (c.budget_column !== undefined && c.budget === undefined) {
    throw new UserError(`${where('budget_column')} needs --budget (a budget CSV) as well`);
  }
  if (c.budget !== undefined && c.budget_column === undefined) {
    throw new UserError(`${where('budget')} needs --budget-column (the overall sparsity naming the column, e.g. 90.23)`);
  }
  if (c.budget !== undefined && c.use_budget) {
    throw new UserError(`${where('use_budget')} and --budget both give a budget; keep one`);
  }
  if (c.use_budget && c.pretrained === undefined) {
    throw new UserError(`${where('use_budget')} needs --pretrained (the STR checkpoint whose densities become the budget)`);
  }
  if ((c.use_budget || c.budget !== undefined) && c.conv_type !== 'DNWConv' && c.conv_type !== 'GMPConv') {
    const k: OptionKey = c.use_budget ? 'use_budget' : 'budget';
    throw new UserError(`${where(k)} sets DNW/GMP prune rates, but --conv-type is ${c.conv_type}`);
  }
  if (c.target_sparsity !== undefined && c.conv_type !== 'STRConv') {
    throw new UserError(`${where('target_sparsity')} steers STR thresholds, but --conv-type is ${c.conv_type} (use STRConv; DNW/GMP take --prune-rate)`);
  }
  if (c.target_sparsity !== undefined && c.optimizer !== 'sgd') {
    throw new UserError(`${where('target_sparsity')} needs --optimizer sgd (its controller models SGD's momentum), got ${c.optimizer}`);
  }
  if (c.dense_conv_model && c.pretrained === undefined) {
    throw new UserError(`${where('dense_conv_model')} needs --pretrained (the STR model to convert)`);
  }
  if (c.multigpu !== undefined && c.batch_size % c.multigpu.length !== 0) {
    const n = c.multigpu.length;
    throw new UserError(
      isSet('batch_size')
        ? `${where('batch_size')} (${c.batch_size}) must be divisible by the ${n} devices of --multigpu ${c.multigpu.join(',')}`
        : `${where('multigpu')} lists ${n} devices, but the default batch size ${c.batch_size} is not divisible by ${n}; set --batch-size`,
    );
  }
}

function warningsFor(c: RunConfig, where: (key: OptionKey) => string): string[] {
  const w: string[] = [];
  if (c.random_mask) w.push(`${where('random_mask')} has no effect (unused in the reference too)`);
  if (c.one_batch) w.push(`${where('one_batch')} has no effect (unused in the reference too)`);
  if (c.freeze_weights) w.push(`${where('freeze_weights')} has no effect (a no-op in the reference too)`);
  if (c.ignore_pretrained_weights && c.pretrained === undefined) {
    w.push(`${where('ignore_pretrained_weights')} has no effect without --pretrained`);
  }
  if (c.target_sparsity !== undefined && c.st_decay !== undefined) {
    w.push(`${where('st_decay')} is ignored: --target-sparsity sets the thresholds' decay`);
  }
  const budgeted = c.use_budget || c.budget !== undefined;
  if ((c.conv_type === 'DNWConv' || c.conv_type === 'GMPConv') && c.prune_rate === 0 && !budgeted) {
    w.push(`${where('prune_rate')} is 0: ${c.conv_type} will keep every weight`);
  }
  if (c.conv_type === 'GMPConv' && c.final_prune_epoch < c.init_prune_epoch) {
    w.push(
      `GMP pruning window is empty (final_prune_epoch ${c.final_prune_epoch} < init_prune_epoch ${c.init_prune_epoch}): the model is never pruned; set --init-prune-epoch and --final-prune-epoch`,
    );
  }
  return w;
}

// ------------------------------------------------------------------------------------------------
// Output and help

/** The effective configuration as YAML (keys sorted, unset options as null), reloadable with --config. */
export function settingsYaml(config: RunConfig): string {
  const obj: Record<string, unknown> = {};
  for (const key of [...OPTION_KEYS].sort()) obj[key] = config[key] ?? null;
  return (
    '# Effective configuration of this run (str-train). Reload it with --config.\n' +
    yaml.dump(obj, { sortKeys: true, lineWidth: -1, noRefs: true, schema: yaml.CORE_SCHEMA })
  );
}

function defaultText(spec: OptionSpec): string | undefined {
  if (spec.defaultText !== undefined) return spec.defaultText;
  if (spec.default === undefined) return undefined;
  return Array.isArray(spec.default) ? spec.default.join(',') : String(spec.default);
}

/**
 * yargs option definitions for rendering `--help`, grouped by OPTION_GROUPS. For help text only:
 * they carry no defaults, and parsing must go through loadConfig (presence decides precedence).
 */
export function buildYargsOptions(): Record<string, YargsOptions> {
  const out: Record<string, YargsOptions> = {};
  for (const group of OPTION_GROUPS) {
    for (const key of OPTION_KEYS) {
      const spec = optionSpec(key);
      if (spec.group !== group || spec.hidden) continue;
      const o: YargsOptions = {
        describe: spec.help,
        group: `${group}:`,
        type: spec.kind === 'bool' ? 'boolean' : spec.kind === 'int' || spec.kind === 'float' ? 'number' : 'string',
      };
      const aliases = spec.aliases ?? [];
      if (aliases.length > 0) o.alias = [...aliases];
      if (spec.choices) o.choices = [...spec.choices];
      const d = defaultText(spec);
      if (d !== undefined) o.defaultDescription = d;
      out[spec.flag] = o;
    }
  }
  return out;
}

/** The `--help` text of the training command. */
export async function renderHelp(scriptName = 'str-train', width = 100): Promise<string> {
  return yargs([])
    .scriptName(scriptName)
    .usage(
      '$0 [--config FILE.yaml] [options]\n\n' +
        'Train a sparse CNN (STR, DNW, GMP or dense). A flag on the command line overrides the YAML,\n' +
        'which overrides the defaults. Snake_case spellings (--batch_size) work as well.',
    )
    .options(buildYargsOptions())
    .help(false)
    .version(false)
    .wrap(width)
    .getHelp();
}
