/**
 * The shared run store: the same trials and metric records as the SQLite store, in a PostgreSQL database (schema
 * `gcx`), so that workers on several machines can share one sweep. It also records which worker runs a trial,
 * its heartbeat, and the queue job that carries it (the queue itself is pg-boss's, see experiments/queue.ts).
 *
 * Every operation is one statement or one transaction. When the server goes away (restart, network), an operation
 * is retried with exponential backoff until `reconnectSeconds` have passed; writes are idempotent (a trial is
 * finished at most once, inserts skip existing rows), so a retried transaction whose commit was lost is harmless.
 * The URL's password never appears in a message: the store is shown as `redactStore(url)`.
 */
import { hostname } from "node:os";
import type pg from "pg";
import { UserError } from "../util/errors.js";
import {
  metricSteps,
  oneLine,
  parseStoredObject,
  trialFromColumns,
  type TrialColumns,
  type TrialRow,
  type TrialSpec,
  type TrialStatus,
} from "./runStore.js";
import { redactStore, scrubSecret, type RunningTrial, type Store } from "./store.js";

const SCHEMA_VERSION = 1;
/** Key of the advisory lock that serializes schema creation and enqueueing. */
const LOCK_KEY = 0x67637831; // "gcx1"

const SCHEMA = `
CREATE SCHEMA IF NOT EXISTS gcx;
CREATE TABLE IF NOT EXISTS gcx.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS gcx.trials (
  id TEXT PRIMARY KEY,
  family TEXT NOT NULL,
  version INTEGER NOT NULL,
  knob TEXT NOT NULL,
  knob_value DOUBLE PRECISION,
  seed INTEGER NOT NULL,
  config TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
  error TEXT,
  summary TEXT,
  started_at TEXT,
  finished_at TEXT,
  seconds DOUBLE PRECISION,
  worker TEXT,
  heartbeat_at TIMESTAMPTZ,
  job_id TEXT,
  attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS gcx.metrics (
  trial_id TEXT NOT NULL REFERENCES gcx.trials (id) ON DELETE CASCADE,
  step INTEGER NOT NULL,
  data TEXT NOT NULL,
  PRIMARY KEY (trial_id, step)
);
CREATE INDEX IF NOT EXISTS trials_family_order ON gcx.trials (family, knob_value, seed);
`;

const ORDER = `ORDER BY family COLLATE "C", knob_value NULLS FIRST, seed, id COLLATE "C"`;

/** A row of `SELECT id, job_id FROM gcx.trials`. */
interface JobRow {
  id: string;
  job_id: string | null;
}

/** A row of the per-status trial counts. */
interface CountRow {
  status: string;
  /** COUNT(*) is a bigint, which pg returns as text. */
  n: string;
}

/** A row of the running trials with their heartbeat age. */
interface RunningRow {
  id: string;
  worker: string | null;
  started_at: string | null;
  age: number | null;
}

/** Runs SQL on one connection (inside a transaction, for pg-boss's `db` option too). */
export interface SqlExecutor {
  executeSql(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
}

export interface PostgresOptions {
  /** How long an operation keeps retrying while the server cannot be reached (0: fail at once). */
  reconnectSeconds?: number;
  /** Called once per outage, when a retry starts and when the server is back. */
  onReconnect?(event: "lost" | "back", message: string): void;
}

/** Error codes and messages that mean "the server went away", worth retrying after a pause. */
export function isConnectionError(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  if (typeof code === "string") {
    if (
      [
        "ECONNREFUSED",
        "ECONNRESET",
        "EPIPE",
        "ETIMEDOUT",
        "EHOSTUNREACH",
        "ENETUNREACH",
        "EAI_AGAIN",
        "ENOENT",
      ].includes(code)
    )
      return true;
    if (code.startsWith("08") || code === "57P01" || code === "57P02" || code === "57P03" || code === "53300")
      return true;
  }
  const msg = String((e as Error)?.message ?? "");
  return /Connection terminated|connection (is )?(closed|ended)|Client has encountered a connection error|timeout exceeded when trying to connect|terminating connection|the database system is (starting up|shutting down|in recovery mode)|Client was closed|not queryable/i.test(
    msg,
  );
}

/** A deadlock or serialization failure: the server rolled the transaction back, and running it again is right. */
function isTransient(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return code === "40P01" || code === "40001";
}

/** Sleeps `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class PostgresStore implements Store {
  readonly kind = "postgres" as const;
  readonly shown: string;
  private closed = false;
  private opened = false;
  private outage = false;

  private constructor(
    private readonly pool: pg.Pool,
    /** The URL as given (with its password): only for connecting, never for messages. */
    readonly url: string,
    readonly readonly: boolean,
    private readonly opts: PostgresOptions,
  ) {
    this.shown = redactStore(url);
  }

  /**
   * Connects to the database at `url` and creates the `gcx` schema if missing (not with `readOnly`, which needs the
   * tables to exist). Fails with one line naming the redacted URL when the server cannot be reached within
   * `reconnectSeconds`, refuses the login, or holds a newer schema.
   */
  static async open(url: string, opts: PostgresOptions & { readOnly?: boolean } = {}): Promise<PostgresStore> {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new UserError(`run store ${redactStore(url)} is not a valid postgres:// URL`);
    }
    if (!parsed.pathname || parsed.pathname === "/")
      throw new UserError(`run store ${redactStore(url)} names no database (postgres://user@host:port/DATABASE)`);
    // Loaded on first use: importing pg costs start-up time (and under a virtual-memory limit it cannot even load),
    // and most commands never touch Postgres.
    const { default: pgLib } = await import("pg");
    const pool = new pgLib.Pool({
      connectionString: url,
      max: 2,
      connectionTimeoutMillis: 10_000,
      idleTimeoutMillis: 10_000,
    });
    // An idle connection dropped by a restarting server is reported here; the next query reconnects.
    pool.on("error", () => {});
    const store = new PostgresStore(pool, url, opts.readOnly === true, opts);
    try {
      if (opts.readOnly) await store.checkSchema();
      else await store.initialize();
      store.opened = true;
    } catch (e) {
      await pool.end().catch(() => {});
      throw store.userError(e, "open");
    }
    return store;
  }

  private async initialize(): Promise<void> {
    await this.transaction(async (c) => {
      await c.query("SELECT pg_advisory_xact_lock($1)", [LOCK_KEY]);
      await c.query(SCHEMA);
      await c.query("INSERT INTO gcx.meta (key, value) VALUES ('schema_version', $1) ON CONFLICT (key) DO NOTHING", [
        String(SCHEMA_VERSION),
      ]);
      const { rows } = await c.query<{ value: string }>("SELECT value FROM gcx.meta WHERE key = 'schema_version'");
      if (Number(rows[0]?.value) > SCHEMA_VERSION)
        throw new UserError(
          `run store ${this.shown} has schema version ${rows[0].value}; this gcx reads up to version ${SCHEMA_VERSION} (upgrade gcx)`,
        );
    });
  }

  private async checkSchema(): Promise<void> {
    const { rows } = await this.query<{ t: string | null; m: string | null }>(
      "SELECT to_regclass('gcx.trials') AS t, to_regclass('gcx.metrics') AS m",
    );
    if (rows[0].t === null || rows[0].m === null)
      throw new UserError(
        `run store ${this.shown} has no gcx tables yet (run a sweep first, or check the database name)`,
      );
  }

  /**
   * Runs `fn` holding the store's advisory lock (on a connection of its own), so that set-up steps that cannot run
   * twice at once (pg-boss creating its queue) run in one process at a time.
   */
  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    const c = await this.retrying(() => this.pool.connect());
    let broken = false;
    try {
      await c.query("SELECT pg_advisory_lock($1)", [LOCK_KEY]);
      try {
        return await fn();
      } finally {
        await c.query("SELECT pg_advisory_unlock($1)", [LOCK_KEY]).catch((e: unknown) => ((broken = true), e));
      }
    } catch (e) {
      broken ||= isConnectionError(e);
      throw e;
    } finally {
      c.release(broken);
    }
  }

  async ensureTrials(specs: TrialSpec[]): Promise<void> {
    await this.transaction((c) => insertTrials(c, specs));
  }

  /**
   * Inserts the missing trials and, in the same transaction and under an advisory lock (so two enqueuers never both
   * queue a trial), hands the trials that are not done to `makeJobs` with their current job ids; it returns the new
   * job id of each trial it queued, which is recorded (and the trial set back to `pending`).
   */
  async enqueue(
    specs: TrialSpec[],
    makeJobs: (
      trials: { id: string; jobId: string | null; spec: TrialSpec }[],
      db: SqlExecutor,
    ) => Promise<Map<string, string>>,
  ): Promise<{ inserted: number; queued: number }> {
    const byId = new Map(specs.map((s) => [s.id, s]));
    return this.transaction(async (c) => {
      await c.query("SELECT pg_advisory_xact_lock($1)", [LOCK_KEY]);
      const inserted = await insertTrials(c, specs);
      const { rows } = await c.query<JobRow>(
        "SELECT id, job_id FROM gcx.trials WHERE id = ANY($1::text[]) AND status <> 'done'",
        [[...byId.keys()]],
      );
      const db: SqlExecutor = { executeSql: (text, values) => c.query(text, values) };
      const jobs = await makeJobs(
        rows.map((r) => ({ id: r.id, jobId: r.job_id ?? null, spec: byId.get(r.id)! })),
        db,
      );
      for (const [id, jobId] of jobs)
        await c.query(
          "UPDATE gcx.trials SET job_id = $2, status = 'pending', worker = NULL WHERE id = $1 AND status <> 'done'",
          [id, jobId],
        );
      return { inserted, queued: jobs.size };
    });
  }

  async claim(id: string): Promise<boolean> {
    const { rowCount } = await this.query(
      `UPDATE gcx.trials SET status = 'running', error = NULL, started_at = $2, finished_at = NULL, seconds = NULL, worker = $3,
         heartbeat_at = now(), attempts = attempts + 1 WHERE id = $1 AND status IN ('pending', 'failed')`,
      [id, now(), workerName()],
    );
    return rowCount === 1;
  }

  /** Marks the trial running under `worker` for queue job `jobId`; false if it is already done (nothing to do). */
  async start(id: string, worker: string, jobId: string): Promise<boolean> {
    const { rowCount } = await this.query(
      `UPDATE gcx.trials SET status = 'running', started_at = $2, finished_at = NULL, seconds = NULL, worker = $3, job_id = $4,
         heartbeat_at = now(), attempts = attempts + 1 WHERE id = $1 AND status <> 'done'`,
      [id, now(), worker, jobId],
    );
    return rowCount === 1;
  }

  /** The running trials whose worker has not beaten for `staleSeconds`, with the queue job each was started for. */
  async silentRunning(staleSeconds: number): Promise<{ id: string; jobId: string | null }[]> {
    const { rows } = await this.query<JobRow>(
      "SELECT id, job_id FROM gcx.trials WHERE status = 'running' AND (heartbeat_at IS NULL OR heartbeat_at < now() - make_interval(secs => $1))",
      [staleSeconds],
    );
    return rows.map((r) => ({ id: r.id, jobId: r.job_id ?? null }));
  }

  /** Records that `worker` is still running the trial (a failed beat is ignored: the next one will do). */
  async heartbeat(id: string, worker: string): Promise<void> {
    await this.query(
      "UPDATE gcx.trials SET heartbeat_at = now() WHERE id = $1 AND worker = $2 AND status = 'running'",
      [id, worker],
      0,
    );
  }

  /** Puts a trial whose attempt failed back to `pending` (the queue retries it), keeping the error for display. */
  async requeue(id: string, error: string): Promise<void> {
    await this.query(
      "UPDATE gcx.trials SET status = 'pending', error = $2, worker = NULL WHERE id = $1 AND status <> 'done'",
      [id, oneLine(error)],
    );
  }

  async finish(
    id: string,
    summary: Record<string, unknown>,
    metrics: Record<string, unknown>[],
    seconds: number,
  ): Promise<boolean> {
    const steps = metricSteps(id, metrics);
    return this.transaction(async (c) => {
      const { rowCount } = await c.query(
        `UPDATE gcx.trials SET status = 'done', error = NULL, summary = $2, finished_at = $3, seconds = $4, worker = NULL, heartbeat_at = NULL
         WHERE id = $1 AND status <> 'done'`,
        [id, JSON.stringify(summary), now(), Number.isFinite(seconds) ? seconds : null],
      );
      if (rowCount !== 1) {
        const { rows } = await c.query("SELECT 1 FROM gcx.trials WHERE id = $1", [id]);
        if (rows.length === 0) throw new Error(`finish: unknown trial ${id}`);
        return false;
      }
      await c.query("DELETE FROM gcx.metrics WHERE trial_id = $1", [id]);
      if (metrics.length)
        await c.query(
          "INSERT INTO gcx.metrics (trial_id, step, data) SELECT $1, * FROM unnest($2::int[], $3::text[])",
          [id, steps, metrics.map((m) => JSON.stringify(m))],
        );
      return true;
    });
  }

  async fail(id: string, error: string): Promise<void> {
    await this.query(
      "UPDATE gcx.trials SET status = 'failed', error = $2, finished_at = $3, worker = NULL, heartbeat_at = NULL WHERE id = $1 AND status <> 'done'",
      [id, oneLine(error), now()],
    );
  }

  async importDone(row: TrialRow, metrics: Record<string, unknown>[]): Promise<boolean> {
    const { id, family, version, knob, knobValue, seed, config } = row;
    await this.ensureTrials([{ id, family, version, knob, knobValue, seed, config }]);
    const wrote = await this.finish(id, row.summary ?? {}, metrics, row.seconds ?? NaN);
    if (wrote)
      await this.query("UPDATE gcx.trials SET started_at = $2, finished_at = COALESCE($3, finished_at) WHERE id = $1", [
        id,
        row.startedAt,
        row.finishedAt,
      ]);
    return wrote;
  }

  async get(id: string): Promise<TrialRow | undefined> {
    const { rows } = await this.query<TrialColumns>("SELECT * FROM gcx.trials WHERE id = $1", [id]);
    return rows[0] && this.toRow(rows[0]);
  }

  async list(filter: { family?: string; status?: TrialStatus } = {}): Promise<TrialRow[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.family !== undefined) {
      args.push(filter.family);
      where.push(`family = $${args.length}`);
    }
    if (filter.status !== undefined) {
      args.push(filter.status);
      where.push(`status = $${args.length}`);
    }
    const { rows } = await this.query<TrialColumns>(
      `SELECT * FROM gcx.trials ${where.length ? "WHERE " + where.join(" AND ") : ""} ${ORDER}`,
      args,
    );
    return rows.map((r) => this.toRow(r));
  }

  async metrics(id: string): Promise<Record<string, unknown>[]> {
    const { rows } = await this.query<{ step: number; data: string }>(
      "SELECT step, data FROM gcx.metrics WHERE trial_id = $1 ORDER BY step",
      [id],
    );
    return rows.map((r) => this.parseObject(r.data, id, `metric record (step ${String(r.step)})`));
  }

  async counts(family?: string): Promise<Record<TrialStatus, number>> {
    const { rows } =
      family === undefined
        ? await this.query<CountRow>("SELECT status, COUNT(*) AS n FROM gcx.trials GROUP BY status")
        : await this.query<CountRow>("SELECT status, COUNT(*) AS n FROM gcx.trials WHERE family = $1 GROUP BY status", [
            family,
          ]);
    const out: Record<TrialStatus, number> = { pending: 0, running: 0, done: 0, failed: 0 };
    for (const r of rows) if (Object.hasOwn(out, r.status)) out[r.status as TrialStatus] = Number(r.n);
    return out;
  }

  async running(): Promise<RunningTrial[]> {
    const { rows } = await this.query<RunningRow>(
      `SELECT id, worker, started_at, EXTRACT(EPOCH FROM now() - heartbeat_at)::float8 AS age FROM gcx.trials WHERE status = 'running' ${ORDER}`,
    );
    return rows.map((r) => ({
      id: r.id,
      worker: r.worker ?? null,
      startedAt: r.started_at ?? null,
      heartbeatAgeSeconds: r.age === null ? null : Number(r.age),
    }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end().catch(() => {});
  }

  /** One statement, retried while the server is unreachable (for at most `reconnectSeconds`, or `wait` if given). */
  private query<R extends pg.QueryResultRow = Record<string, unknown>>(
    text: string,
    values: unknown[] = [],
    wait?: number,
  ): Promise<pg.QueryResult<R>> {
    return this.retrying(() => this.pool.query<R>(text, values), wait);
  }

  /** `fn` in one transaction on one connection, the whole transaction retried while the server is unreachable. */
  private transaction<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.retrying(async () => {
      const c = await this.pool.connect();
      let broken = false;
      try {
        await c.query("BEGIN");
        const out = await fn(c);
        await c.query("COMMIT");
        return out;
      } catch (e) {
        broken = isConnectionError(e);
        if (!broken) await c.query("ROLLBACK").catch(() => {});
        throw e;
      } finally {
        c.release(broken);
      }
    });
  }

  /** Runs `fn`, retrying connection errors with exponential backoff (0.25 s doubling to 10 s). */
  async retrying<T>(fn: () => Promise<T>, wait = this.opts.reconnectSeconds ?? 0): Promise<T> {
    const deadline = Date.now() + wait * 1000;
    let pause = 250;
    for (;;) {
      try {
        const out = await fn();
        if (this.outage) {
          this.outage = false;
          this.opts.onReconnect?.("back", `run store ${this.shown} is reachable again`);
        }
        return out;
      } catch (e) {
        if (isTransient(e) && !this.closed && pause < 10_000) {
          await sleep(pause * Math.random());
          pause *= 2;
          continue;
        }
        if (!isConnectionError(e) || Date.now() + pause > deadline || this.closed)
          throw this.userError(e, this.opened ? "use" : "open");
        if (!this.outage) {
          this.outage = true;
          this.opts.onReconnect?.(
            "lost",
            `run store ${this.shown} unreachable (${this.message(e)}); retrying with backoff`,
          );
        }
        await sleep(pause);
        pause = Math.min(10_000, pause * 2);
      }
    }
  }

  /** An error's message, one line, with the URL's password removed. */
  message(e: unknown): string {
    return scrubSecret(oneLine(String((e as Error)?.message ?? e), 300), this.url);
  }

  /** A server or connection error as a one-line UserError naming the store; other errors (bugs) pass through. */
  userError(e: unknown, doing: "open" | "use" = "use"): Error {
    if (e instanceof UserError) return new UserError(scrubSecret(e.message, this.url));
    const code = (e as { code?: unknown })?.code;
    if (isConnectionError(e)) return new UserError(`cannot reach run store ${this.shown}: ${this.message(e)}`);
    if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) && !/^(22|23|42)/.test(code))
      return new UserError(`cannot ${doing} run store ${this.shown}: ${this.message(e)} (${code})`);
    if (typeof code === "string" && code.startsWith("28"))
      return new UserError(`cannot ${doing} run store ${this.shown}: ${this.message(e)}`);
    if (e instanceof Error) e.message = scrubSecret(e.message, this.url);
    return e as Error;
  }

  private toRow(r: TrialColumns): TrialRow {
    return trialFromColumns(r, this.shown);
  }

  private parseObject(text: unknown, id: string, what: string): Record<string, unknown> {
    return parseStoredObject(text, this.shown, id, what);
  }
}

async function insertTrials(c: pg.PoolClient, specs: TrialSpec[]): Promise<number> {
  if (specs.length === 0) return 0;
  const { rowCount } = await c.query(
    `INSERT INTO gcx.trials (id, family, version, knob, knob_value, seed, config)
     SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::float8[], $6::int[], $7::text[])
     ON CONFLICT (id) DO NOTHING`,
    [
      specs.map((s) => s.id),
      specs.map((s) => s.family),
      specs.map((s) => s.version),
      specs.map((s) => s.knob),
      specs.map((s) => (Number.isFinite(s.knobValue) ? s.knobValue : null)),
      specs.map((s) => s.seed),
      specs.map((s) => JSON.stringify(s.config)),
    ],
  );
  return rowCount ?? 0;
}

function now(): string {
  return new Date().toISOString();
}

/** This process as a worker name: host:pid. */
export function workerName(): string {
  return `${hostname()}:${process.pid}`;
}
