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
import { mkdirSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, resolve } from "node:path";
import { UserError } from "../util/errors.js";

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
  "id", "family", "version", "knob", "knob_value", "seed", "config", "status", "error", "summary",
  "started_at", "finished_at", "seconds", "claim_host", "claim_pid", "claim_token",
];

interface DbTrial {
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
  ) {}

  /** Opens (creating if missing, with its parent directories) the run store at `path`. */
  static open(path: string): RunStore {
    const full = resolve(path);
    try {
      mkdirSync(dirname(full), { recursive: true });
    } catch (e) {
      throw new UserError(`cannot create the directory of run store ${path}: ${(e as Error).message}`);
    }
    let db: Database.Database;
    try {
      db = new Database(full, { timeout: BUSY_TIMEOUT_MS });
    } catch (e) {
      throw openError(path, e);
    }
    try {
      initialize(db, path);
    } catch (e) {
      db.close();
      throw e instanceof UserError ? e : openError(path, e);
    }
    return new RunStore(db, full);
  }

  /** Inserts the trials not yet in the store as `pending`, in one transaction; existing rows are left untouched. */
  ensureTrials(specs: TrialSpec[]): void {
    const insert = this.db.prepare(
      `INSERT INTO trials (id, family, version, knob, knob_value, seed, config, status)
       VALUES (@id, @family, @version, @knob, @knobValue, @seed, @config, 'pending')
       ON CONFLICT (id) DO NOTHING`,
    );
    this.write(() => {
      for (const s of specs) insert.run({ ...s, config: JSON.stringify(s.config) });
    });
  }

  /**
   * Atomically marks the trial `running` for this store, if it is pending, failed, or running under a claim whose
   * process no longer exists. Returns false if it is done, or running under a live claim (this store's included).
   */
  claim(id: string): boolean {
    return this.write(() => {
      const row = this.db.prepare("SELECT status, claim_host, claim_pid FROM trials WHERE id = ?").get(id) as
        | Pick<DbTrial, "status" | "claim_host" | "claim_pid">
        | undefined;
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
    });
  }

  /** Records the trial as done with its final summary and metric records (each with a numeric `step`), atomically. */
  finish(id: string, summary: Record<string, unknown>, metrics: Record<string, unknown>[], seconds: number): void {
    const steps = metrics.map((m, i) => {
      const step = m.step;
      if (typeof step !== "number" || !Number.isInteger(step)) throw new Error(`finish ${id}: metric record ${i} has no integer step`);
      return step;
    });
    if (new Set(steps).size !== steps.length) throw new Error(`finish ${id}: duplicate steps in the metric records`);
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
  }

  /** Records the trial as failed with an error message; a later claim may retry it. */
  fail(id: string, error: string): void {
    this.write(() => {
      const changed = this.db
        .prepare(
          `UPDATE trials SET status = 'failed', error = ?, finished_at = ?,
             claim_host = NULL, claim_pid = NULL, claim_token = NULL WHERE id = ?`,
        )
        .run(error, now(), id).changes;
      if (changed === 0) throw new Error(`fail: unknown trial ${id}`);
    });
  }

  get(id: string): TrialRow | undefined {
    const row = this.db.prepare("SELECT * FROM trials WHERE id = ?").get(id) as DbTrial | undefined;
    return row && toRow(row);
  }

  /** Trials ordered by family, knob value and seed. */
  list(filter: { family?: string; status?: TrialStatus } = {}): TrialRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.family !== undefined) (where.push("family = ?"), args.push(filter.family));
    if (filter.status !== undefined) (where.push("status = ?"), args.push(filter.status));
    const sql = `SELECT * FROM trials ${where.length ? "WHERE " + where.join(" AND ") : ""} ${ORDER}`;
    return (this.db.prepare(sql).all(...args) as DbTrial[]).map(toRow);
  }

  /** The trial's metric records, parsed, in step order. */
  metrics(id: string): Record<string, unknown>[] {
    const rows = this.db.prepare("SELECT data FROM metrics WHERE trial_id = ? ORDER BY step").all(id) as { data: string }[];
    return rows.map((r) => JSON.parse(r.data) as Record<string, unknown>);
  }

  /** Number of trials in each status (all four keys present). */
  counts(family?: string): Record<TrialStatus, number> {
    const rows = (
      family === undefined
        ? this.db.prepare("SELECT status, COUNT(*) AS n FROM trials GROUP BY status").all()
        : this.db.prepare("SELECT status, COUNT(*) AS n FROM trials WHERE family = ? GROUP BY status").all(family)
    ) as { status: TrialStatus; n: number }[];
    const out: Record<TrialStatus, number> = { pending: 0, running: 0, done: 0, failed: 0 };
    for (const r of rows) out[r.status] = r.n;
    return out;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  /** Runs `fn` in one BEGIN IMMEDIATE transaction (takes the write lock up front, waiting up to the busy timeout). */
  private write<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /** A claim on another host cannot be checked and counts as live; on this host it is live while its pid exists. */
  private claimIsLive(host: string | null, pid: number | null): boolean {
    if (pid === null) return false;
    if (host !== null && host !== this.host) return true;
    return pidAlive(pid);
  }
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

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

function now(): string {
  return new Date().toISOString();
}

function initialize(db: Database.Database, path: string): void {
  // Switching a fresh file to WAL needs an exclusive lock; retry while another process is doing the same.
  retryBusy(() => {
    if (String(db.pragma("journal_mode", { simple: true })).toLowerCase() === "wal") return;
    const mode = db.pragma("journal_mode = WAL", { simple: true });
    if (String(mode).toLowerCase() !== "wal") throw new UserError(`run store ${path}: cannot use WAL journal mode (got ${mode})`);
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
    if (missing.length) throw new UserError(`${path} is a SQLite database but not a gcx run store (its trials table lacks ${missing.join(", ")})`);
  }
  if (!names.has("meta")) return false;
  const row = db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as { value: string } | undefined;
  if (row && Number(row.value) > SCHEMA_VERSION)
    throw new UserError(`run store ${path} has schema version ${row.value}; this gcx reads up to version ${SCHEMA_VERSION} (upgrade gcx)`);
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

function openError(path: string, e: unknown): Error {
  if (!(e instanceof Database.SqliteError)) return e as Error;
  if (e.code === "SQLITE_NOTADB") return new UserError(`${path} is not a SQLite database (not a gcx run store)`);
  return new UserError(`cannot open run store ${path}: ${e.message}`);
}

function toRow(r: DbTrial): TrialRow {
  return {
    id: r.id,
    family: r.family,
    version: r.version,
    knob: r.knob,
    knobValue: r.knob_value ?? NaN,
    seed: r.seed,
    config: JSON.parse(r.config) as Record<string, unknown>,
    status: r.status,
    error: r.error,
    summary: r.summary === null ? null : (JSON.parse(r.summary) as Record<string, unknown>),
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    seconds: r.seconds,
  };
}
