/**
 * The run store of the paper-reproduction sweeps: one embedded SQLite file holding every trial (its config, status,
 * final summary) and the metric records it logged.
 *
 * Several processes may write the same file at once: the database runs in WAL mode, every write is one
 * `BEGIN IMMEDIATE` transaction (so writers queue on the write lock instead of failing on a lock upgrade), and a
 * busy timeout of 10 s lets them wait for each other. A trial's metrics and its `done` status are written in one
 * transaction, so a process killed at any moment leaves each trial either finished with all its metrics or not
 * finished with none. A trial left `running` by a killed process is claimable again: each claim records the
 * claimer's host and pid, and a claim whose process no longer exists is stale.
 */
import Database from "better-sqlite3";
import { createHash, randomUUID } from "node:crypto";
import {
  accessSync,
  closeSync,
  constants as fsConstants,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  statSync,
} from "node:fs";
import { hostname } from "node:os";
import { basename, dirname, resolve } from "node:path";
import { UserError } from "../util/errors.js";
import { pidAlive } from "../util/process.js";
import { fileError, isSystemError, pathKind, systemReason } from "../util/files.js";

export type TrialStatus = "pending" | "running" | "done" | "failed";
export const TRIAL_STATUSES: readonly TrialStatus[] = ["pending", "running", "done", "failed"];

export interface TrialSpec {
  id: string;
  family: string;
  version: number;
  knob: string;
  knobValue: number;
  seed: number;
  config: Record<string, unknown>;
}

export interface TrialRow extends TrialSpec {
  status: TrialStatus;
  error: string | null;
  summary: Record<string, unknown> | null;
  startedAt: string | null;
  finishedAt: string | null;
  seconds: number | null;
}

/** The schema this code writes; a file with a newer one is refused. */
export const SCHEMA_VERSION = 1;
const BUSY_TIMEOUT_MS = 10_000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
  id TEXT PRIMARY KEY,
  family TEXT NOT NULL,
  version INTEGER NOT NULL,
  knob TEXT NOT NULL,
  knob_value REAL,
  seed INTEGER NOT NULL,
  config TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
  error TEXT,
  summary TEXT,
  started_at TEXT,
  finished_at TEXT,
  seconds REAL,
  claim_host TEXT,
  claim_pid INTEGER,
  claim_token TEXT
);
CREATE TABLE IF NOT EXISTS metrics (
  trial_id TEXT NOT NULL REFERENCES trials (id) ON DELETE CASCADE,
  step INTEGER NOT NULL,
  data TEXT NOT NULL,
  PRIMARY KEY (trial_id, step)
);
`;

const TRIAL_COLUMNS = [
  "id",
  "family",
  "version",
  "knob",
  "knob_value",
  "seed",
  "config",
  "status",
  "error",
  "summary",
  "started_at",
  "finished_at",
  "seconds",
  "claim_host",
  "claim_pid",
  "claim_token",
];

/** A trial's columns as both stores keep them (SQLite and Postgres). */
export interface TrialColumns {
  id: string;
  family: string;
  version: number;
  knob: string;
  knob_value: number | null;
  seed: number;
  config: string;
  status: TrialStatus;
  error: string | null;
  summary: string | null;
  started_at: string | null;
  finished_at: string | null;
  seconds: number | null;
}

interface DbTrial extends TrialColumns {
  claim_host: string | null;
  claim_pid: number | null;
  claim_token: string | null;
}

const ORDER = "ORDER BY family, knob_value, seed, id";

export class RunStore {
  /** Identifies this store's claims (a process may open several stores). */
  private readonly token = randomUUID();
  private readonly host = hostname();
  private closed = false;

  private constructor(
    private readonly db: Database.Database,
    readonly path: string,
    /** The path as the user gave it, for messages. */
    private readonly shown: string,
    readonly readonly: boolean,
  ) {}

  /**
   * Opens (creating if missing, with its parent directories) the run store at `path` for reading and writing.
   * A store that exists but cannot be written is refused up front with "run store X is read-only: ...".
   */
  static open(path: string): RunStore {
    const full = resolve(path);
    const kind = pathKind(full);
    if (kind === "directory")
      throw new UserError(`run store ${path} is a directory, not a SQLite file (pass --db <file>)`);
    if (kind === "other") throw new UserError(`run store ${path} is not a regular file (pass --db <file>)`);
    if (kind === "missing") {
      try {
        mkdirSync(dirname(full), { recursive: true });
      } catch (e) {
        throw new UserError(`cannot create the directory of run store ${path}: ${systemReason(e)}`);
      }
    } else {
      checkWritable(full, path);
    }
    let db: Database.Database;
    try {
      db = new Database(full, { timeout: BUSY_TIMEOUT_MS });
    } catch (e) {
      throw storeError(path, e, "open");
    }
    try {
      initialize(db, path);
    } catch (e) {
      db.close();
      throw storeError(path, e, "open");
    }
    return new RunStore(db, full, path, false);
  }

  /**
   * Opens an existing run store read-only: never creates, migrates or switches its journal mode, so `gcx runs` and
   * `gcx report` work on a store they cannot write (a read-only file, directory or file system).
   *
   * SQLite reads a WAL-mode database through its `-shm` file, which it creates next to the database when missing.
   * Where that is impossible (a read-only directory) and the `-wal` file holds no changes, the database file alone
   * is the whole store: it is read into memory instead. A `-wal` file with changes but no `-shm` in a read-only
   * directory cannot be read at all; that is one line saying what to do.
   */
  static openReadOnly(path: string): RunStore {
    const full = resolve(path);
    const kind = pathKind(full);
    if (kind === "missing")
      throw new UserError(`run store ${path} does not exist (run a sweep first, or pass --db <file>)`);
    if (kind === "directory")
      throw new UserError(`run store ${path} is a directory, not a SQLite file (pass --db <file>)`);
    if (kind === "other") throw new UserError(`run store ${path} is not a regular file (pass --db <file>)`);
    let db: Database.Database | undefined;
    try {
      db = new Database(full, { readonly: true, fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
      checkSchemaReadOnly(db, path);
      return new RunStore(db, full, path, true);
    } catch (e) {
      db?.close();
      if (!needsShm(e, full)) throw storeError(path, e, "open");
    }
    return RunStore.openInMemory(full, path);
  }

  /** The read-only fallback for a WAL-mode store whose -shm file cannot be created: the file read into memory. */
  private static openInMemory(full: string, path: string): RunStore {
    const dir = dirname(full);
    const walSize = fileSize(`${full}-wal`);
    if (walSize !== null && walSize > 0) {
      throw new UserError(
        `cannot read run store ${path}: it is in WAL mode and ${basename(full)}-wal holds changes that SQLite can only read ` +
          `through ${basename(full)}-shm, which is missing and cannot be created because directory ${dir} is not writable; ` +
          `open the store once with write access to ${dir}, or copy the store and its -wal file to a writable directory`,
      );
    }
    const size = fileSize(full) ?? 0;
    if (size > MAX_IN_MEMORY_BYTES) {
      throw new UserError(
        `cannot read run store ${path}: it is in WAL mode and SQLite cannot create ${basename(full)}-shm in directory ${dir} ` +
          `(not writable), and at ${size} bytes it is too large to read into memory; make ${dir} writable or copy the store to a writable directory`,
      );
    }
    let bytes: Buffer;
    try {
      bytes = readFileSync(full);
    } catch (e) {
      throw fileError("read run store", path, e);
    }
    // SQLite cannot deserialize a WAL-mode image; bytes 18-19 of the header say "WAL" (2) or "rollback journal" (1).
    if (bytes.length >= 20 && bytes[18] === 2 && bytes[19] === 2) bytes[18] = bytes[19] = 1;
    let db: Database.Database | undefined;
    try {
      db = new Database(bytes, { readonly: true });
      checkSchemaReadOnly(db, path);
      return new RunStore(db, full, path, true);
    } catch (e) {
      db?.close();
      throw storeError(path, e, "open");
    }
  }

  /** Inserts the trials not yet in the store as `pending`, in one transaction; existing rows are left untouched. */
  ensureTrials(specs: TrialSpec[]): void {
    this.guard(() => {
      const insert = this.db.prepare(
        `INSERT INTO trials (id, family, version, knob, knob_value, seed, config, status)
         VALUES (@id, @family, @version, @knob, @knobValue, @seed, @config, 'pending')
         ON CONFLICT (id) DO NOTHING`,
      );
      this.write(() => {
        for (const s of specs) insert.run({ ...s, config: JSON.stringify(s.config) });
      });
    });
  }

  /**
   * Atomically marks the trial `running` for this store, if it is pending, failed, or running under a claim whose
   * process no longer exists. Returns false if it is done, or running under a live claim (this store's included).
   */
  claim(id: string): boolean {
    return this.guard(() =>
      this.write(() => {
        const row = this.db.prepare("SELECT status, claim_host, claim_pid FROM trials WHERE id = ?").get(id) as
          Pick<DbTrial, "status" | "claim_host" | "claim_pid"> | undefined;
        if (!row) throw new Error(`claim: unknown trial ${id}`);
        if (row.status === "done") return false;
        if (row.status === "running" && this.claimIsLive(row.claim_host, row.claim_pid)) return false;
        this.db
          .prepare(
            `UPDATE trials SET status = 'running', error = NULL, started_at = ?, finished_at = NULL, seconds = NULL,
               claim_host = ?, claim_pid = ?, claim_token = ? WHERE id = ?`,
          )
          .run(now(), this.host, process.pid, this.token, id);
        return true;
      }),
    );
  }

  /** Records the trial as done with its final summary and metric records (each with a numeric `step`), atomically. */
  finish(id: string, summary: Record<string, unknown>, metrics: Record<string, unknown>[], seconds: number): void {
    const steps = metricSteps(id, metrics);
    this.guard(() => {
      const insert = this.db.prepare("INSERT INTO metrics (trial_id, step, data) VALUES (?, ?, ?)");
      this.write(() => {
        const changed = this.db
          .prepare(
            `UPDATE trials SET status = 'done', error = NULL, summary = ?, finished_at = ?, seconds = ?,
               claim_host = NULL, claim_pid = NULL, claim_token = NULL WHERE id = ?`,
          )
          .run(JSON.stringify(summary), now(), Number.isFinite(seconds) ? seconds : null, id).changes;
        if (changed === 0) throw new Error(`finish: unknown trial ${id}`);
        this.db.prepare("DELETE FROM metrics WHERE trial_id = ?").run(id);
        metrics.forEach((m, i) => insert.run(id, steps[i], JSON.stringify(m)));
      });
    });
  }

  /** Records the trial as failed with an error message (kept to one line); a later claim may retry it. */
  fail(id: string, error: string): void {
    const message = oneLine(error);
    this.guard(() =>
      this.write(() => {
        const changed = this.db
          .prepare(
            `UPDATE trials SET status = 'failed', error = ?, finished_at = ?,
               claim_host = NULL, claim_pid = NULL, claim_token = NULL WHERE id = ?`,
          )
          .run(message, now(), id).changes;
        if (changed === 0) throw new Error(`fail: unknown trial ${id}`);
      }),
    );
  }

  get(id: string): TrialRow | undefined {
    return this.guard(() => {
      const row = this.db.prepare("SELECT * FROM trials WHERE id = ?").get(id) as DbTrial | undefined;
      return row && this.toRow(row);
    });
  }

  /** Trials ordered by family, knob value and seed. */
  list(filter: { family?: string; status?: TrialStatus } = {}): TrialRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.family !== undefined) {
      where.push("family = ?");
      args.push(filter.family);
    }
    if (filter.status !== undefined) {
      where.push("status = ?");
      args.push(filter.status);
    }
    const sql = `SELECT * FROM trials ${where.length ? "WHERE " + where.join(" AND ") : ""} ${ORDER}`;
    return this.guard(() => (this.db.prepare(sql).all(...args) as DbTrial[]).map((r) => this.toRow(r)));
  }

  /** The trial's metric records, parsed, in step order. */
  metrics(id: string): Record<string, unknown>[] {
    return this.guard(() => {
      const rows = this.db.prepare("SELECT step, data FROM metrics WHERE trial_id = ? ORDER BY step").all(id) as {
        step: unknown;
        data: unknown;
      }[];
      return rows.map((r) => this.parseObject(r.data, id, `metric record (step ${String(r.step)})`));
    });
  }

  /** Number of trials in each status (all four keys present). */
  counts(family?: string): Record<TrialStatus, number> {
    return this.guard(() => {
      const rows = (
        family === undefined
          ? this.db.prepare("SELECT status, COUNT(*) AS n FROM trials GROUP BY status").all()
          : this.db.prepare("SELECT status, COUNT(*) AS n FROM trials WHERE family = ? GROUP BY status").all(family)
      ) as { status: TrialStatus; n: number }[];
      const out: Record<TrialStatus, number> = { pending: 0, running: 0, done: 0, failed: 0 };
      for (const r of rows) if (Object.hasOwn(out, r.status)) out[r.status] = r.n;
      return out;
    });
  }

  /** The trials in status `running` with their claims: host:pid of the claiming process and when it started. */
  running(): { id: string; worker: string | null; startedAt: string | null }[] {
    return this.guard(() => {
      const rows = this.db
        .prepare(`SELECT id, claim_host, claim_pid, started_at FROM trials WHERE status = 'running' ${ORDER}`)
        .all() as Pick<DbTrial, "id" | "claim_host" | "claim_pid" | "started_at">[];
      return rows.map((r) => ({
        id: r.id,
        worker: r.claim_pid === null ? null : `${r.claim_host ?? "?"}:${r.claim_pid}`,
        startedAt: r.started_at,
      }));
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.db.close();
    } catch (e) {
      throw storeError(this.shown, e);
    }
  }

  /** Runs `fn`, turning a SQLite error into a one-line UserError naming this store. */
  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw storeError(this.shown, e);
    }
  }

  /** Runs `fn` in one BEGIN IMMEDIATE transaction (takes the write lock up front, waiting up to the busy timeout). */
  private write<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  private toRow(r: DbTrial): TrialRow {
    return trialFromColumns(r, this.shown);
  }

  private parseObject(text: unknown, id: string, what: string): Record<string, unknown> {
    return parseStoredObject(text, this.shown, id, what);
  }

  /** A claim on another host cannot be checked and counts as live; on this host it is live while its pid exists. */
  private claimIsLive(host: string | null, pid: number | null): boolean {
    if (pid === null) return false;
    if (host !== null && host !== this.host) return true;
    return pidAlive(pid);
  }
}

/** A trial row as either store keeps it, checked: a hand-edited or damaged row is a one-line UserError naming the store and the trial. */
export function trialFromColumns(r: TrialColumns, shown: string): TrialRow {
  const id = typeof r.id === "string" ? r.id : String(r.id);
  const bad = (column: string, what: string): never => {
    throw new UserError(
      `run store ${shown}: trial ${id} has a malformed ${column} (${what}); fix or delete that row, or restore the store from a backup`,
    );
  };
  if (typeof r.id !== "string") bad("id", `not text: ${String(r.id)}`);
  for (const c of ["family", "knob"] as const) if (typeof r[c] !== "string") bad(c, "not text");
  for (const c of ["version", "seed"] as const) if (typeof r[c] !== "number") bad(c, "not a number");
  for (const c of ["knob_value", "seconds"] as const)
    if (r[c] !== null && typeof r[c] !== "number") bad(c, "not a number");
  if (!TRIAL_STATUSES.includes(r.status)) bad("status", "not one of " + TRIAL_STATUSES.join(", "));
  for (const c of ["error", "started_at", "finished_at"] as const)
    if (r[c] !== null && typeof r[c] !== "string") bad(c, "not text");
  return {
    id,
    family: r.family,
    version: r.version,
    knob: r.knob,
    knobValue: r.knob_value ?? NaN,
    seed: r.seed,
    config: parseStoredObject(r.config, shown, id, "config"),
    status: r.status,
    error: r.error,
    summary: r.summary === null ? null : parseStoredObject(r.summary, shown, id, "summary"),
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    seconds: r.seconds,
  };
}

/** A JSON object from a text column of the store shown as `shown`; anything else is a one-line UserError naming the store and the trial. */
export function parseStoredObject(text: unknown, shown: string, id: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    if (typeof text !== "string") throw new Error("not text");
    value = JSON.parse(text);
  } catch (e) {
    throw new UserError(
      `run store ${shown}: trial ${id} has a malformed ${what} (not JSON: ${(e as Error).message}); fix or delete that row, or restore the store from a backup`,
    );
  }
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw new UserError(
      `run store ${shown}: trial ${id} has a malformed ${what} (not a JSON object); fix or delete that row, or restore the store from a backup`,
    );
  return value as Record<string, unknown>;
}

/** The integer `step` of each metric record of trial `id`; a missing or repeated step is a bug (throws). */
export function metricSteps(id: string, metrics: Record<string, unknown>[]): number[] {
  const steps = metrics.map((m, i) => {
    const step = m.step;
    if (typeof step !== "number" || !Number.isInteger(step))
      throw new Error(`finish ${id}: metric record ${i} has no integer step`);
    return step;
  });
  if (new Set(steps).size !== steps.length) throw new Error(`finish ${id}: duplicate steps in the metric records`);
  return steps;
}

/**
 * A stable 16-hex-digit id of a trial: the first 16 hex digits of the SHA-256 of the canonical JSON (keys sorted at
 * every level) of its family, version, config and seed.
 */
export function trialId(family: string, version: number, config: Record<string, unknown>, seed: number): string {
  const text = canonicalJson({ family, version, config, seed });
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}

/** JSON with object keys sorted at every level (undefined members dropped, as JSON.stringify does). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object" && !(value instanceof Date)) {
    const obj = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(obj).sort()) out[k] = sortKeys(obj[k]);
    return out;
  }
  return value;
}

function now(): string {
  return new Date().toISOString();
}

function initialize(db: Database.Database, path: string): void {
  // Switching a fresh file to WAL needs an exclusive lock; retry while another process is doing the same.
  retryBusy(() => {
    if (String(db.pragma("journal_mode", { simple: true })).toLowerCase() === "wal") return;
    const mode = db.pragma("journal_mode = WAL", { simple: true });
    if (String(mode).toLowerCase() !== "wal")
      throw new UserError(`run store ${path}: cannot use WAL journal mode (got ${String(mode)})`);
  });
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  db.pragma("foreign_keys = ON");
  db.pragma("synchronous = FULL");
  // An existing, current store needs no write lock: readers (gcx runs) never queue behind a busy sweep.
  if (schemaReady(db, path)) return;
  retryBusy(() =>
    db
      .transaction(() => {
        db.exec(SCHEMA);
        if (schemaReady(db, path)) return;
        db.exec("CREATE INDEX IF NOT EXISTS trials_family_order ON trials (family, knob_value, seed)");
        db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)").run(String(SCHEMA_VERSION));
      })
      .immediate(),
  );
}

/** Whether the schema is complete; throws a UserError for a foreign database or one from a newer gcx. */
function schemaReady(db: Database.Database, path: string): boolean {
  const names = new Set((db.prepare("SELECT name FROM sqlite_master").all() as { name: string }[]).map((r) => r.name));
  if (names.has("trials")) {
    const columns = new Set((db.prepare("PRAGMA table_info(trials)").all() as { name: string }[]).map((c) => c.name));
    const missing = TRIAL_COLUMNS.filter((c) => !columns.has(c));
    if (missing.length)
      throw new UserError(
        `${path} is a SQLite database but not a gcx run store (its trials table lacks ${missing.join(", ")})`,
      );
  }
  if (!names.has("meta")) return false;
  const row = db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as { value: string } | undefined;
  if (row && Number(row.value) > SCHEMA_VERSION)
    throw new UserError(
      `run store ${path} has schema version ${row.value}; this gcx reads up to version ${SCHEMA_VERSION} (upgrade gcx)`,
    );
  return row !== undefined && ["trials", "metrics", "trials_family_order"].every((n) => names.has(n));
}

function retryBusy(fn: () => void): void {
  const deadline = Date.now() + BUSY_TIMEOUT_MS;
  for (;;) {
    try {
      return fn();
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (typeof code !== "string" || !code.startsWith("SQLITE_BUSY") || Date.now() > deadline) throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
}

/** Largest WAL-mode store read into memory when SQLite cannot create its -shm file (see `openReadOnly`). */
const MAX_IN_MEMORY_BYTES = 1024 * 1024 * 1024;

/** A message on one line: blank lines and stack frames dropped, the rest joined with "; ", at most `max` characters. */
export function oneLine(text: string, max = 2000): string {
  const lines = String(text)
    .split(/\r\n|\r|\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !/^at\s/.test(l));
  const s = lines.join("; ");
  if (s.length === 0) return "unknown error";
  return s.length > max ? s.slice(0, max - 1) + "…" : s;
}

/** The size of a file, or null if it does not exist (or cannot be inspected). */
function fileSize(path: string): number | null {
  try {
    return statSync(path).size;
  } catch {
    return null;
  }
}

/** Why SQLite could not write the store at `full` (the file, its -wal/-shm files, or its directory), or null. */
function writeProblem(full: string): string | null {
  const files = [full, `${full}-wal`, `${full}-shm`];
  for (const f of files) {
    if (fileSize(f) === null) continue;
    try {
      accessSync(f, fsConstants.W_OK);
    } catch (e) {
      return `${f === full ? "the file" : basename(f)} is not writable: ${systemReason(e)}`;
    }
  }
  if (files.slice(1).some((f) => fileSize(f) === null)) {
    try {
      accessSync(dirname(full), fsConstants.W_OK);
    } catch (e) {
      return `its directory ${dirname(full)} is not writable (${systemReason(e)}) and SQLite must create ${basename(full)}-wal and -shm there`;
    }
  }
  return null;
}

/** Refuses, in one line, a store that cannot be written (checked before SQLite would fail half-way). */
function checkWritable(full: string, path: string): void {
  const problem = writeProblem(full);
  if (problem)
    throw new UserError(
      `run store ${path} is read-only: ${problem}; sweeps must write to it (fix its permissions, or pass --db <another file>)`,
    );
}

/** Whether the file's header says WAL mode (bytes 18 and 19 are 2). */
function isWalFile(full: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(full, "r");
    const head = Buffer.alloc(20);
    return readSync(fd, head, 0, 20, 0) === 20 && head[18] === 2 && head[19] === 2;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Whether a read-only open failed because SQLite could not create the -shm (or -wal) file of a WAL-mode store. */
function needsShm(e: unknown, full: string): boolean {
  if (!(e instanceof Database.SqliteError)) return false;
  if (e.code !== "SQLITE_READONLY_DIRECTORY" && e.code !== "SQLITE_CANTOPEN" && e.code !== "SQLITE_READONLY_CANTINIT")
    return false;
  try {
    accessSync(full, fsConstants.R_OK);
  } catch {
    return false;
  }
  return isWalFile(full);
}

/** The read-only schema check: the tables gcx reads must be there (nothing is created). */
function checkSchemaReadOnly(db: Database.Database, path: string): void {
  const names = new Set((db.prepare("SELECT name FROM sqlite_master").all() as { name: string }[]).map((r) => r.name));
  if (names.size === 0) throw new UserError(`run store ${path} is empty (it has no tables yet; a sweep creates them)`);
  const missing = ["trials", "metrics"].filter((n) => !names.has(n));
  if (missing.length)
    throw new UserError(
      `${path} is a SQLite database but not a gcx run store (it has no ${missing.join(" or ")} table)`,
    );
  schemaReady(db, path);
}

/** Why a file cannot be opened, from the file system's point of view, or null. */
function cantOpenReason(path: string): string | null {
  const full = resolve(path);
  try {
    accessSync(full, fsConstants.R_OK);
  } catch (e) {
    return systemReason(e);
  }
  try {
    accessSync(dirname(full), fsConstants.R_OK | fsConstants.X_OK);
  } catch (e) {
    return `its directory ${dirname(full)}: ${systemReason(e)}`;
  }
  return null;
}

/**
 * The one-line UserError for an error met using the run store at `path` (as the user gave it): SQLite's corrupt,
 * read-only, cannot-open, disk-full, I/O and busy errors, and the operating system's errors, name the store. Other
 * errors (bugs such as a constraint violation) pass through unchanged.
 */
export function storeError(path: string, e: unknown, doing: "open" | "use" = "use"): Error {
  if (e instanceof UserError) return e;
  if (isSystemError(e)) return fileError(`${doing} run store`, path, e);
  if (!(e instanceof Database.SqliteError)) return e as Error;
  const code = e.code;
  const why = `${oneLine(e.message, 300)}, ${code}`;
  const moveAway = "restore it from a backup or move it away and rerun";
  if (code === "SQLITE_NOTADB")
    return new UserError(`run store ${path} is not a SQLite database or is corrupt (${why}); ${moveAway}`);
  if (code.startsWith("SQLITE_CORRUPT")) return new UserError(`run store ${path} is corrupt (${why}); ${moveAway}`);
  if (code.startsWith("SQLITE_READONLY")) {
    const problem = writeProblem(resolve(path));
    return new UserError(
      `run store ${path} is read-only: ${problem ?? why}; writing to it needs write access (or pass --db <another file>)`,
    );
  }
  if (code.startsWith("SQLITE_CANTOPEN"))
    return new UserError(`cannot ${doing} run store ${path}: ${cantOpenReason(path) ?? why}`);
  if (code === "SQLITE_FULL")
    return new UserError(`run store ${path}: the disk is full (${why}); free some space and rerun`);
  if (code.startsWith("SQLITE_IOERR"))
    return new UserError(
      `run store ${path}: input/output error (${why}); check the disk, or restore the store from a backup`,
    );
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED"))
    return new UserError(
      `run store ${path} is locked by another process (waited ${BUSY_TIMEOUT_MS / 1000} s: ${why}); rerun once it has finished`,
    );
  if (code === "SQLITE_NOMEM") return new UserError(`run store ${path}: out of memory (${why})`);
  if (code.startsWith("SQLITE_PERM") || code.startsWith("SQLITE_AUTH"))
    return new UserError(`run store ${path}: permission denied (${why})`);
  if (code === "SQLITE_NOLFS" || code === "SQLITE_TOOBIG" || code === "SQLITE_PROTOCOL" || code === "SQLITE_SCHEMA")
    return new UserError(`run store ${path}: ${why}`);
  return e;
}
