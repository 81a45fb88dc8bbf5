import { isUserError } from '../util/errors.js';

/**
 * Runs a CLI action: a UserError prints one line (`str-train: <message>`) and exits with its
 * code; anything else is a bug and keeps its stack trace.
 */
export async function runCli(action: () => Promise<number | void>): Promise<void> {
  try {
    const code = await action();
    process.exitCode = code ?? 0;
  } catch (e) {
    if (isUserError(e)) {
      process.stderr.write(`str-train: ${e.message}\n`);
      process.exitCode = e.exitCode;
      return;
    }
    throw e;
  }
}
