/**
 * File-system helpers that turn the operating system's errors into one-line UserErrors naming the file, so that a
 * full disk, a file-size limit, a missing permission or a path of the wrong kind ends a command with a clear line
 * instead of a stack trace. Writes go to a temporary file that is renamed into place (and removed on failure).
 */
import {
  appendFileSync,
  closeSync,
  fstatSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { UserError } from "./errors.js";

const REASONS: Record<string, string> = {
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EISDIR: "is a directory",
  ENOTDIR: "a component of the path is not a directory",
  ENOSPC: "no space left on device",
  EFBIG: "file too large (a file-size limit such as ulimit -f was reached)",
  EDQUOT: "disk quota exceeded",
  EROFS: "read-only file system",
  EEXIST: "already exists",
  ENOTEMPTY: "directory not empty",
  EMFILE: "too many open files",
  ENFILE: "too many open files in the system",
  ENAMETOOLONG: "name too long",
  ELOOP: "too many symbolic links",
  EIO: "input/output error",
  EBUSY: "resource busy",
  ETXTBSY: "file busy",
  EINVAL: "invalid argument",
};

/** Whether `e` is an error from the operating system (it carries an errno code such as ENOENT). */
export function isSystemError(e: unknown): e is NodeJS.ErrnoException & { code: string } {
  return (
    e instanceof Error &&
    typeof (e as NodeJS.ErrnoException).code === "string" &&
    /^E[A-Z0-9]+$/.test((e as NodeJS.ErrnoException).code!)
  );
}

/** "permission denied (EACCES)" for a system error; the message otherwise. */
export function systemReason(e: unknown): string {
  if (!isSystemError(e)) return e instanceof Error ? e.message : String(e);
  return `${REASONS[e.code] ?? e.message.replace(/^[A-Z0-9]+: /, "").replace(/,.*$/, "")} (${e.code})`;
}

/** A UserError "cannot <verb> <path>: <reason>" for a system error; other errors pass through unchanged. */
export function fileError(verb: string, path: string, e: unknown): Error {
  if (e instanceof UserError || !isSystemError(e)) return e as Error;
  return new UserError(`cannot ${verb} ${path}: ${systemReason(e)}`);
}

/** Runs `fn`, turning a system error into a one-line UserError about `path`. */
export function onFile<T>(verb: string, path: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw fileError(verb, path, e);
  }
}

/** Default largest text file read whole (configs, model descriptions, small state files). */
export const MAX_TEXT_BYTES = 16 * 1024 * 1024;

/**
 * Reads a regular file of at most `maxBytes` (refusing directories, devices such as /dev/zero and FIFOs, which could
 * block or never end), as bytes.
 */
export function readFileBounded(path: string, maxBytes = MAX_TEXT_BYTES, what = "file"): Buffer {
  return onFile("read", path, () => {
    const fd = openSync(path, "r");
    try {
      const st = fstatSync(fd);
      if (st.isDirectory()) throw new UserError(`cannot read ${path}: it is a directory, not a ${what}`);
      if (!st.isFile())
        throw new UserError(`cannot read ${path}: not a regular file (a ${what} must be a regular file)`);
      if (st.size > maxBytes)
        throw new UserError(
          `cannot read ${path}: ${st.size} bytes is larger than the ${maxBytes}-byte limit for a ${what}`,
        );
      const buf = Buffer.alloc(st.size);
      let at = 0;
      while (at < st.size) {
        const n = readSync(fd, buf, at, st.size - at, at);
        if (n === 0) break;
        at += n;
      }
      return at === st.size ? buf : buf.subarray(0, at);
    } finally {
      closeSync(fd);
    }
  });
}

export function readTextBounded(path: string, maxBytes = MAX_TEXT_BYTES, what = "file"): string {
  return readFileBounded(path, maxBytes, what).toString("utf8");
}

/** Parses a JSON file; a malformed one is a one-line UserError naming the file. */
export function readJsonFile(path: string, what = "JSON file", maxBytes = MAX_TEXT_BYTES): unknown {
  const text = readTextBounded(path, maxBytes, what);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(`${path}: malformed JSON (${oneLine((e as Error).message)})`);
  }
}

/** Shows control characters (newlines included) as escapes, so a message quoting file contents stays one line. */
export function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1));
}

/** Writes `data` to `path` atomically (temporary file in the same directory, then rename); failures name the file. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    try {
      rmSync(tmp, { force: true });
    } catch {
      // the original error matters more
    }
    throw fileError("write", path, e);
  }
}

/** Appends text to a file; a failure (full disk, file-size limit) names the file. */
export function appendText(path: string, text: string): void {
  onFile("write", path, () => appendFileSync(path, text));
}

/** Whether `path` exists (without following a dangling symlink into an error). */
export function pathKind(path: string): "missing" | "file" | "directory" | "other" {
  try {
    const st = statSync(path);
    return st.isDirectory() ? "directory" : st.isFile() ? "file" : "other";
  } catch (e) {
    if (isSystemError(e) && (e.code === "ENOENT" || e.code === "ENOTDIR")) return "missing";
    throw fileError("inspect", path, e);
  }
}
