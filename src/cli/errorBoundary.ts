/**
 * The CLI's one error boundary. A user mistake or an environment problem (bad flag, malformed file, missing
 * permission, full disk, corrupt run store, not enough memory) prints one line per problem and exits 2. Anything
 * else is a bug in gcx: one "this is a bug" line and exit 1, with the stack only under --debug (or GCX_DEBUG=1).
 */
import { isUserError } from "../util/errors.js";
import { isSystemError, systemReason } from "../util/files.js";

export interface Outcome {
  lines: string[];
  exitCode: 1 | 2;
}

function isSqliteError(e: unknown): e is Error & { code: string } {
  return e instanceof Error && e.name === "SqliteError" && typeof (e as { code?: unknown }).code === "string";
}

function isOutOfMemory(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  return (
    (e instanceof RangeError &&
      /allocation failed|Invalid typed array length|Array buffer allocation|Invalid array length|out of memory/i.test(
        e.message,
      )) ||
    (e.name === "RangeError" && /WebAssembly\.Memory/i.test(e.message))
  );
}

/** Classifies an error thrown by a command. */
export function classify(e: unknown): Outcome {
  if (isUserError(e)) return { lines: e.message.split("\n").filter((l) => l.length > 0), exitCode: 2 };
  if (isSystemError(e)) {
    const dest = (e as { dest?: unknown }).dest;
    const where = typeof e.path === "string" ? ` ${e.path}${typeof dest === "string" ? ` -> ${dest}` : ""}` : "";
    const op = typeof e.syscall === "string" ? e.syscall : "access";
    return { lines: [`cannot ${op}${where}: ${systemReason(e)}`], exitCode: 2 };
  }
  if (isSqliteError(e)) return { lines: [`run store: ${e.message} (${e.code})`], exitCode: 2 };
  if (isOutOfMemory(e))
    return {
      lines: [`out of memory (${(e as Error).message}); use smaller --batch-size, --limit or model sizes`],
      exitCode: 2,
    };
  const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return {
    lines: [`internal error, this is a bug in gcx (${msg.split("\n")[0]}); rerun with --debug for the stack trace`],
    exitCode: 1,
  };
}

/** Prints the outcome of `e` on stderr and exits. */
export function exitWithError(e: unknown, debug: boolean): never {
  const { lines, exitCode } = classify(e);
  for (const line of lines) process.stderr.write(`gcx: error: ${sanitizeLine(line)}\n`);
  if (debug && e instanceof Error && e.stack) process.stderr.write(e.stack + "\n");
  process.exit(exitCode);
}

/** Removes terminal control characters (escape sequences, carriage returns) from text shown on a terminal. */
export function sanitizeLine(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\u001b\[[0-?]*[ -/]*[@-~]/g, "").replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, "?");
}
