/**
 * `str-train sweep --config C --methods … --targets … [--parallel N] [--out DIR] [-- train flags]`:
 * the paper's comparison (accuracy against sparsity and MACs for STR, GMP, DNW and DNW with
 * STR's budget) in one command. Everything is checked before the first run starts.
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { configStem, loadConfig } from '../config/load.js';
import { initBackend } from '../backend/select.js';
import { UserError } from '../util/errors.js';
import { parseFlags } from './export.js';
import { METHODS, needsTargets, parseGmpWindow, parseMethods, parseTargets, planSweep } from '../sweep/plan.js';
import { prepareSweepFolder, runSweep, type CliEntry } from '../sweep/runner.js';
import { formatSweepTable, writeSweepCsv, type SweepRow } from '../sweep/csv.js';
import { writeSweepChart } from '../sweep/chart.js';

export const SWEEP_USAGE = `usage: str-train sweep --config C [--methods M,…] [--targets P,…] [--parallel N] [--out DIR]
                       [--gmp-window INIT,FINAL] [--no-png] [-- TRAIN FLAGS…]

Trains every method at every target total sparsity from one base config and compares them:
  --methods     some of ${METHODS.join(', ')} (default: all)
                dense runs once; str uses --target-sparsity; gmp and dnw get the prune rate that
                ends at the target total sparsity; dnw-str-budget is DNW with the STR run's budget
  --targets     total sparsities in percent, each strictly between 0 and 100 (e.g. 50,80,90,95)
  --parallel    runs at once (default 1); the cores are split between them
  --out         the sweep folder (default runs/sweep/<config stem>); one sub-folder per run
  --gmp-window  GMP's pruning epochs (default: the base config's window, else 0,epochs-2)
  -- FLAGS      training flags for every run (e.g. -- --epochs 2 --data DIR)
Writes DIR/sweep.csv, DIR/sweep.svg and DIR/sweep.png and prints the table. Started again on
the same folder it skips finished runs and resumes the unfinished ones.`;

/** Options the sweep sets per run: given after `--` they would be overwritten, so they are refused. */
const SWEEP_OWNED = new Set<string>([
  'conv_type', 'name', 'prune_rate', 'log_dir', 'resume', 'start_epoch', 'target_sparsity', 'pretrained', 'use_budget',
  'ignore_pretrained_weights', 'budget', 'budget_column', 'evaluate', 'summary', 'dense_conv_model', 'multigpu',
  'init_prune_epoch', 'final_prune_epoch', 'workers', 'save_last',
]);

/** This CLI's entry point for the child runs (the compiled main.js; main.ts through tsx in tests). */
export function cliEntry(): CliEntry {
  const url = new URL(`./main${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);
  const file = fileURLToPath(url);
  return { command: process.execPath, args: file.endsWith('.ts') ? ['--import', 'tsx', file] : [file] };
}

export async function sweepCommand(argv: string[]): Promise<number> {
  const dash = argv.indexOf('--');
  const own = dash < 0 ? argv : argv.slice(0, dash);
  const trainFlags = dash < 0 ? [] : argv.slice(dash + 1);
  const { values, positionals } = parseFlags('sweep', own, {
    config: { type: 'string' },
    methods: { type: 'string' },
    targets: { type: 'string' },
    parallel: { type: 'string' },
    out: { type: 'string' },
    'gmp-window': { type: 'string' },
    'no-png': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(SWEEP_USAGE + '\n');
    return 0;
  }
  if (positionals.length) throw new UserError(`sweep: unexpected argument ${positionals[0]} (training flags go after --)`);
  if (typeof values.config !== 'string') throw new UserError('sweep: needs --config C (the base configuration)');
  const methods = parseMethods(typeof values.methods === 'string' ? values.methods : METHODS.join(','));
  const targets = typeof values.targets === 'string' ? parseTargets(values.targets) : [];
  const needing = methods.filter(needsTargets);
  if (needing.length && targets.length === 0) throw new UserError(`sweep: --methods ${needing.join(',')} need --targets (e.g. --targets 50,80,90,95)`);
  const parallel = values.parallel === undefined ? 1 : Number(values.parallel);
  if (!Number.isInteger(parallel) || parallel < 1) throw new UserError(`sweep --parallel ${String(values.parallel)}: expected a positive integer`);
  const gmpWindow = typeof values['gmp-window'] === 'string' ? parseGmpWindow(values['gmp-window']) : undefined;

  const loaded = loadConfig(['--config', values.config, ...trainFlags]);
  for (const k of loaded.explicit) {
    if (SWEEP_OWNED.has(k)) throw new UserError(`sweep: ${k} is set by the sweep for each run; remove it from the flags after --`);
  }
  for (const w of loaded.warnings) process.stderr.write(`str-train: warning: ${w}\n`);
  const base = loaded.config;
  const stem = configStem(loaded.configPath);
  const out = typeof values.out === 'string' ? values.out : join('runs', 'sweep', stem);
  const cores = availableParallelism();
  const threadsPerRun = Math.max(1, Math.floor(cores / parallel));

  // the parent only counts weights and reads checkpoints: the cpu backend suffices
  await initBackend('cpu', () => {});
  const runs = planSweep({ base, methods, targets, out, gmpWindow, workers: threadsPerRun, baseKeys: new Set<string>([...loaded.yamlKeys, ...loaded.explicit]) });
  const release = prepareSweepFolder(runs, out);
  const log = (l: string) => process.stdout.write(l + '\n');
  log(`[sweep] ${runs.length} runs of ${loaded.configPath} into ${out}: ${runs.map((r) => r.id).join(', ')}; ${parallel} at a time, ${threadsPerRun} thread(s) each`);
  const title = `${stem}: ${base.arch} width ${base.width_mult} at ${base.image_size} px, ${base.epochs} epochs (dashed: dense)`;
  const png = values['no-png'] !== true;
  const csv = join(out, 'sweep.csv');
  const writeOutputs = async (rows: SweepRow[]) => {
    writeSweepCsv(csv, rows);
    await writeSweepChart(join(out, 'sweep'), rows, title, png);
  };
  try {
    const { rows, failed } = await runSweep({ runs, out, parallel, threadsPerRun, cli: cliEntry(), log, onRows: writeOutputs });
    await writeOutputs(rows);
    log('');
    log(formatSweepTable(rows));
    log(`[sweep] wrote ${csv}, ${join(out, 'sweep.svg')}${png ? ` and ${join(out, 'sweep.png')}` : ''}`);
    if (failed.length) throw new UserError(`sweep: ${failed.length} of ${runs.length} runs failed: ${failed.map((f) => `${f.id} (${f.reason})`).join('; ')}`, 1);
  } finally {
    release();
  }
  return 0;
}
