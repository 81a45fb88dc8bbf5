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
