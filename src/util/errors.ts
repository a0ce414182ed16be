/**
 * An error caused by what the user asked for (bad flag, missing file, shape mismatch...).
 * The CLI prints its message on one line and exits with code 2, without a stack trace.
 */
export class UserError extends Error {
  override readonly name = "UserError";
  constructor(message: string) {
    super(message);
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}
