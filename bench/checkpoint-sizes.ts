/**
 * Compact checkpoint sizes (issue 13 item 2): ResNet50 with the STR budgets of
 * budgets/STR_Budgets_ResNet50.csv applied to a random-init DNW model (per-layer magnitude
 * pruning at the budget's sparsities), and MobileNetV1 / ResNet18 at uniform rates, each written
 * as our checkpoint (weights only; a training checkpoint adds the momentum buffers), the dense weights (.pth, `export --dense`) and the
 * compact form (`export --format sparse`). The sparse file's size does not depend on training, only
 * on the non-zero count and the tensor shapes, so random weights measure it exactly.
 *
 *   node --import tsx bench/checkpoint-sizes.ts [--json bench/results/checkpoint-sizes.json]
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { initBackend } from '../src/backend/select.js';
import { createModel } from '../src/models/registry.js';
import { DEFAULT_MODEL_OPTIONS } from '../src/models/builder.js';
import { saveCheckpoint } from '../src/train/checkpoint.js';
import { exportCheckpoint } from '../src/cli/export.js';
import { parseBudgetCsv, budgetColumn } from '../src/sparsity/budgets.js';
import { applyBudget } from '../src/sparsity/transfer.js';
import { reportedLayers, layerStats, totalSparsity } from '../src/sparsity/stats.js';
import { REPO } from './common.js';

interface Row {
  model: string;
  sparsity: number;
  nonZeros: number;
  fullMB: number;
  densePthMB: number;
  sparseMB: number;
}

const args = process.argv.slice(2);
const jsonAt = args.indexOf('--json');
const jsonOut = jsonAt >= 0 ? args[jsonAt + 1] : undefined;
const budgetCsv = path.join(REPO, 'budgets', 'STR_Budgets_ResNet50.csv');

await initBackend('wasm', () => {});
const dir = mkdtempSync(path.join(tmpdir(), 'ckpt-sizes-'));
const rows: Row[] = [];
const mb = (f: string) => +(statSync(f).size / 1e6).toFixed(2);

async function measure(label: string, arch: string, prune: (m: ReturnType<typeof createModel>) => void): Promise<void> {
  const model = createModel(arch, { ...DEFAULT_MODEL_OPTIONS, numClasses: 1000, convType: 'DNWConv', pruneRate: 0.9, seed: 1 });
  prune(model);
  const stats = totalSparsity(layerStats(model, model.convLayers()));
  const ck = path.join(dir, `${label.replace(/\W+/g, '_')}.safetensors`);
  await saveCheckpoint(ck, { model, meta: { epoch: 0, arch, best_acc1: 0, best_acc5: 0, best_train_acc1: 0, best_train_acc5: 0, curr_acc1: null, curr_acc5: null }, config: { arch, conv_type: 'DNWConv' } });
  model.dispose();
  const dense = await exportCheckpoint({ checkpoint: ck, dense: true, out: ck.replace(/\.safetensors$/, '_dense.pth'), log: () => {} });
  const sparse = await exportCheckpoint({ checkpoint: ck, format: 'sparse', log: () => {} });
  const row: Row = { model: label, sparsity: +stats.sparsity.toFixed(2), nonZeros: stats.numel - stats.zeros, fullMB: mb(ck), densePthMB: mb(dense.out), sparseMB: mb(sparse.out) };
  rows.push(row);
  process.stdout.write(`${JSON.stringify(row)}\n`);
  for (const f of [ck, dense.out, sparse.out]) rmSync(f);
}

const budgets = parseBudgetCsv(budgetCsv);
for (const column of ['79.55', '90.23', '95.03', '98.98']) {
  await measure(`ResNet50 budget ${column}`, 'ResNet50', (m) => applyBudget(m, budgetColumn(budgets, column, budgetCsv), budgetCsv));
}
for (const rate of [0, 0.8, 0.9, 0.95]) {
  await measure(`MobileNetV1 uniform ${rate}`, 'MobileNetV1', (m) => {
    for (const [, c] of reportedLayers(m)) (c as unknown as { setPruneRate(r: number): void }).setPruneRate(rate);
  });
}
rmSync(dir, { recursive: true, force: true });

const table = [
  '| model | sparsity % | non-zeros | our checkpoint (weights, no optimizer state) MB | dense weights .pth MB | compact .sparse.safetensors MB |',
  '| --- | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map((r) => `| ${r.model} | ${r.sparsity} | ${r.nonZeros.toLocaleString('en-US')} | ${r.fullMB} | ${r.densePthMB} | ${r.sparseMB} |`),
].join('\n');
process.stdout.write(`${table}\n`);
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ rows, table }, null, 2) + '\n');
