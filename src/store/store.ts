/**
 * The run store behind one asynchronous interface: an embedded SQLite file (the default, no server) or a shared
 * PostgreSQL database (for sweeps spread over several machines). Both keep the same trials and metric records with
 * the same semantics; `open.ts` picks one from what the user passed to `--store`.
 */
import type { TrialRow, TrialSpec, TrialStatus } from "./runStore.js";

export type { TrialRow, TrialSpec, TrialStatus } from "./runStore.js";

/** A trial some process is working on: who (host:pid), since when and when it last said it was alive. */
export interface RunningTrial {
  id: string;
  worker: string | null;
  startedAt: string | null;
  /** Seconds since the worker's last heartbeat (Postgres workers beat every few seconds); null where none is kept (SQLite). */
  heartbeatAgeSeconds: number | null;
}

/** Operations every run store offers. All of them may fail with a one-line UserError naming the store. */
export interface Store {
  readonly kind: "sqlite" | "postgres";
  /** The store as shown to the user: a path, or a URL with its password replaced by "***". */
  readonly shown: string;
  readonly readonly: boolean;
  /** Inserts the trials not yet in the store as `pending`; existing rows are left untouched. */
  ensureTrials(specs: TrialSpec[]): Promise<void>;
  /**
   * Marks the trial `running` for this process if it is pending, failed or held by a dead process; false if it is
   * done or running elsewhere (the in-process sweep's claim; queue workers get their leases from the queue).
   */
  claim(id: string): Promise<boolean>;
  /**
   * Records the trial as done with its summary and metric records, atomically. Returns false (and changes nothing)
   * when it was already done: a trial is finished exactly once, however many workers ran it.
   */
  finish(
    id: string,
    summary: Record<string, unknown>,
    metrics: Record<string, unknown>[],
    seconds: number,
  ): Promise<boolean>;
  /** Records the trial as failed with its error (one line). */
  fail(id: string, error: string): Promise<void>;
  get(id: string): Promise<TrialRow | undefined>;
  /** Trials ordered by family, knob value and seed. */
  list(filter?: { family?: string; status?: TrialStatus }): Promise<TrialRow[]>;
  /** The trial's metric records in step order. */
  metrics(id: string): Promise<Record<string, unknown>[]>;
  /** Number of trials in each status (all four keys present). */
  counts(family?: string): Promise<Record<TrialStatus, number>>;
  /** The trials in status `running`, with their workers. */
  running(): Promise<RunningTrial[]>;
  /**
   * Copies a finished trial (row and metric records) from another store: inserted if missing, then recorded as done
   * unless it already is. Returns whether it was written.
   */
  importDone(row: TrialRow, metrics: Record<string, unknown>[]): Promise<boolean>;
  close(): Promise<void>;
}

/** What `--store` names: a PostgreSQL URL or a SQLite file. */
export type StoreSpec = { kind: "postgres"; url: string } | { kind: "sqlite"; path: string };

/** Parses `--store`: `postgres://…` or `postgresql://…` is a server, anything else a SQLite file path. */
export function parseStoreSpec(spec: string): StoreSpec {
  return /^postgres(ql)?:\/\//i.test(spec) ? { kind: "postgres", url: spec } : { kind: "sqlite", path: spec };
}

/** A store spec safe to print: a URL's password becomes "***" (a SQLite path is returned as is). */
export function redactStore(spec: string): string {
  if (parseStoreSpec(spec).kind !== "postgres") return spec;
  try {
    const u = new URL(spec);
    if (u.password) u.password = "***";
    for (const key of [...u.searchParams.keys()]) if (/pass/i.test(key)) u.searchParams.set(key, "***");
    return u.toString();
  } catch {
    // Not parseable: hide everything between "://" and the last "@", where a password could be.
    return spec.replace(/^(\w+:\/\/)[^/]*@/, "$1***@");
  }
}

/** `text` with every occurrence of the URL's password (plain or percent-encoded) replaced by "***". */
export function scrubSecret(text: string, spec: string): string {
  let out = text;
  try {
    const u = new URL(spec);
    const secrets = [
      u.password,
      decodeURIComponent(u.password),
      ...[...u.searchParams].filter(([k]) => /pass/i.test(k)).map(([, v]) => v),
    ];
    for (const s of secrets) if (s.length > 0) out = out.split(s).join("***");
  } catch {
    // nothing recognisable to scrub
  }
  return out.split(spec).join(redactStore(spec));
}
