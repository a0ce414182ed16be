/**
 * An exclusive lock on a run directory: `RUN_DIR/.lock`, created with O_EXCL and holding the owner's host, pid and
 * process start time. Released when the run ends (and on process exit). A lock whose owner is gone (same host, and
 * the pid no longer exists or now belongs to a process started at another time) is stale and is taken over.
 * Trials run by a sweep also take it; the sweep's store claim keeps two workers off one trial in the first place.
 */
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { UserError } from "../util/errors.js";
import { fileError, isSystemError } from "../util/files.js";
import { pidAlive } from "../util/process.js";

export const LOCK_FILE = ".lock";

interface LockInfo {
  host: string;
  pid: number;
  /** Process start time (Linux /proc/PID/stat field 22), to tell a reused pid from the owner; null elsewhere. */
  start: string | null;
  since: string;
}

function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: split after its closing parenthesis.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

function ownerAlive(info: LockInfo): boolean {
  if (info.host !== hostname()) return true; // cannot check another machine: assume it is alive
  if (!pidAlive(info.pid)) return false;
  if (info.start === null) return true;
  const now = processStart(info.pid);
  return now === null || now === info.start;
}

function readLock(path: string): LockInfo | null {
  try {
    const v = JSON.parse(readFileSync(path, "utf8")) as Partial<LockInfo>;
    if (typeof v.host !== "string" || typeof v.pid !== "number" || !Number.isInteger(v.pid) || v.pid <= 0) return null;
    return {
      host: v.host,
      pid: v.pid,
      start: typeof v.start === "string" ? v.start : null,
      since: String(v.since ?? "?"),
    };
  } catch {
    return null;
  }
}

export interface RunLock {
  release(): void;
}

const held = new Set<string>();
let exitHook = false;

/** Takes the lock on `runDir` (which must exist), or throws a one-line UserError naming the owner. */
export function lockRun(runDir: string): RunLock {
  const path = join(runDir, LOCK_FILE);
  const mine: LockInfo = {
    host: hostname(),
    pid: process.pid,
    start: processStart(process.pid),
    since: new Date().toISOString(),
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, "wx");
    } catch (e) {
      if (!isSystemError(e) || e.code !== "EEXIST") throw fileError("lock", runDir, e);
      const other = readLock(path);
      // An unreadable lock file may be one being written right now: treat it as held unless it stays unreadable.
      if (other === null) {
        if (attempt < 2) {
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
          continue;
        }
        throw new UserError(
          `${runDir} is locked (${path} exists but is unreadable); if no gcx process is using the run, delete ${path}`,
        );
      }
      if (ownerAlive(other)) {
        const who =
          other.pid === process.pid && other.host === mine.host
            ? "this process"
            : `gcx process ${other.pid} on ${other.host}`;
        throw new UserError(
          `${runDir} is in use by ${who} (since ${other.since}); wait for it to finish, or if that process is gone, delete ${path}`,
        );
      }
      rmSync(path, { force: true }); // stale: its owner is gone
      continue;
    }
    try {
      writeSync(fd, JSON.stringify(mine) + "\n");
    } catch (e) {
      closeSync(fd);
      rmSync(path, { force: true });
      throw fileError("write", path, e);
    }
    closeSync(fd);
    held.add(path);
    if (!exitHook) {
      exitHook = true;
      process.on("exit", () => {
        for (const p of held) releasePath(p);
      });
    }
    return { release: () => releasePath(path) };
  }
  throw new UserError(`${runDir} is locked by another gcx process; try again`);
}

function releasePath(path: string): void {
  if (!held.delete(path)) return;
  try {
    const info = readLock(path);
    if (info && info.pid === process.pid && info.host === hostname() && existsSync(path)) rmSync(path, { force: true });
  } catch {
    // leaving a stale lock is harmless: the next owner detects it
  }
}
