/**
 * The embedded run store behind the asynchronous `Store` interface: a SQLite file (runStore.ts does the work,
 * synchronously; this adapter only makes its calls look like the Postgres store's).
 */
import { RunStore, type TrialRow, type TrialSpec, type TrialStatus } from "./runStore.js";
import type { RunningTrial, Store } from "./store.js";

export class SqliteStore implements Store {
  readonly kind = "sqlite" as const;
  readonly shown: string;
  readonly readonly: boolean;

  constructor(
    readonly inner: RunStore,
    shown: string,
  ) {
    this.shown = shown;
    this.readonly = inner.readonly;
  }

  /** Opens (creating if missing) the SQLite store at `path` for reading and writing. */
  static open(path: string): SqliteStore {
    return new SqliteStore(RunStore.open(path), path);
  }

  /** Opens an existing SQLite store read-only (never creates or migrates it). */
  static openReadOnly(path: string): SqliteStore {
    return new SqliteStore(RunStore.openReadOnly(path), path);
  }

  async ensureTrials(specs: TrialSpec[]): Promise<void> {
    this.inner.ensureTrials(specs);
    return Promise.resolve();
  }

  async claim(id: string): Promise<boolean> {
    return Promise.resolve(this.inner.claim(id));
  }

  async finish(
    id: string,
    summary: Record<string, unknown>,
    metrics: Record<string, unknown>[],
    seconds: number,
  ): Promise<boolean> {
    if (this.inner.get(id)?.status === "done") return Promise.resolve(false);
    this.inner.finish(id, summary, metrics, seconds);
    return Promise.resolve(true);
  }

  async fail(id: string, error: string): Promise<void> {
    this.inner.fail(id, error);
    return Promise.resolve();
  }

  async get(id: string) {
    return Promise.resolve(this.inner.get(id));
  }

  async list(filter: { family?: string; status?: TrialStatus } = {}) {
    return Promise.resolve(this.inner.list(filter));
  }

  async metrics(id: string) {
    return Promise.resolve(this.inner.metrics(id));
  }

  async counts(family?: string) {
    return Promise.resolve(this.inner.counts(family));
  }

  async running(): Promise<RunningTrial[]> {
    return Promise.resolve(this.inner.running().map((r) => ({ ...r, heartbeatAgeSeconds: null })));
  }

  async importDone(row: TrialRow, metrics: Record<string, unknown>[]): Promise<boolean> {
    const { id, family, version, knob, knobValue, seed, config } = row;
    this.inner.ensureTrials([{ id, family, version, knob, knobValue, seed, config }]);
    return this.finish(id, row.summary ?? {}, metrics, row.seconds ?? NaN);
  }

  async close(): Promise<void> {
    this.inner.close();
    return Promise.resolve();
  }
}
