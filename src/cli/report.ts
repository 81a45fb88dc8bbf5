/**
 * `str-train report RUN_DIR_OR_CHECKPOINT [--out DIR]`: per-layer table (printed, CSV), a bar
 * chart of layer-wise sparsity and, for a run folder, the total-sparsity and val top-1 curves.
 */
import { writeReport } from '../report/report.js';
import { MODEL_FLAGS, modelOverrides, parseFlags, useBackend } from './export.js';
import { UserError } from '../util/errors.js';

export const REPORT_USAGE = `usage: str-train report RUN_DIR_OR_CHECKPOINT [--out DIR] [--no-png]
                        [--image-size N] [--arch A] [--conv-type T] [--prune-rate P] [--stem S] [--backend B]

Prints every conv layer's shape, weights, non-zeros, sparsity %, threshold and dense/effective
multiply-accumulates, and writes into DIR (default RUN_DIR/report, or <checkpoint>_report):
  layers.csv, layer_sparsity.svg/.png          the table and a bar chart of layer-wise sparsity
  curves.csv, curves.svg/.png                  (run folders) total sparsity and val top-1 per epoch
A run folder's model is its last checkpoint (last, highest epoch_<n>, model_best, initial).`;

export async function reportCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags('report', argv, { ...MODEL_FLAGS, out: { type: 'string' }, 'no-png': { type: 'boolean' } });
  if (values.help) {
    process.stdout.write(REPORT_USAGE + '\n');
    return 0;
  }
  if (positionals.length !== 1) throw new UserError(`report: expects one run folder or checkpoint, got ${positionals.length}${positionals.length ? ` (${positionals.join(' ')})` : ''}`);
  await useBackend('report', values.backend);
  await writeReport(positionals[0], { out: values.out as string | undefined, overrides: modelOverrides('report', values), png: values['no-png'] !== true });
  return 0;
}
