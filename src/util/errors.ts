import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/**
 * An error caused by the user's input (a flag, a config key, a file). The CLI prints its message
 * as one line and exits non-zero, without a stack trace. Messages name the flag/key/file and
 * what was expected.
 */
export class UserError extends Error {
  constructor(message: string, readonly exitCode = 2) {
    super(message);
    this.name = 'UserError';
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}

/** Why a file operation failed, for a one-line message: the errno code (ENOENT, EISDIR…), else the message. */
export function ioReason(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
}

/** The bytes of a file the user named; unreadable → UserError `<path>: cannot read <what> (<reason>)`. */
export function readUserFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new UserError(`${path}: cannot read ${what} (${ioReason(e)})`);
  }
}

/** readUserFile without blocking the event loop. */
export async function readUserFileAsync(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    throw new UserError(`${path}: cannot read ${what} (${ioReason(e)})`);
  }
}
