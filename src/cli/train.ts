import { loadConfig, renderHelp, wantsHelp } from '../config/load.js';
import { initBackend } from '../backend/select.js';
import { runTraining } from '../train/run.js';

/**
 * The reference's `python main.py --config X [flags]`: train, or --evaluate, --summary,
 * --dense-conv-model, according to the flags.
 */
export async function trainCommand(argv: string[]): Promise<number> {
  if (wantsHelp(argv)) {
    process.stdout.write((await renderHelp()) + '\n');
    return 0;
  }
  const { config, configPath, warnings } = loadConfig(argv);
  for (const w of warnings) process.stderr.write(`str-train: warning: ${w}\n`);
  await initBackend(config.backend, (line) => process.stderr.write(line + '\n'));
  await runTraining({ config, configPath });
  return 0;
}
