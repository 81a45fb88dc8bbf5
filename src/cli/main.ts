// first: sizes libuv's thread pool (sharp decodes there) before anything uses it
import '../data/threadpool.js';
import { runCli } from './errors.js';
import { trainCommand } from './train.js';

/**
 * `str-train [train flags]` trains (the reference's main.py); `str-train data|report|export|predict|sweep ...`
 * are sub-commands. Each sub-command parses its own flags.
 */
const SUBCOMMANDS: Record<string, () => Promise<(argv: string[]) => Promise<number | void>>> = {
  data: async () => (await import('../data/command.js')).runDataCommand,
  report: async () => (await import('./report.js')).reportCommand,
  export: async () => (await import('./export.js')).exportCommand,
  sweep: async () => (await import('./sweep.js')).sweepCommand,
  predict: async () => (await import('./predict.js')).predictCommand,
};

async function main(argv: string[]): Promise<number | void> {
  const sub = argv[0] !== undefined ? SUBCOMMANDS[argv[0]] : undefined;
  if (sub) return (await sub())(argv.slice(1));
  return trainCommand(argv);
}

await runCli(() => main(process.argv.slice(2)));
