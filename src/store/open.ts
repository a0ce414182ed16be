/** Opens the run store that `--store` names: a PostgreSQL URL or a SQLite file (the registry of store kinds). */
import { PostgresStore, type PostgresOptions } from "./postgres.js";
import { SqliteStore } from "./sqlite.js";
import { parseStoreSpec, type Store } from "./store.js";

export interface OpenOptions extends PostgresOptions {
  /** Only read: never create or migrate the store (gcx runs, gcx report). */
  readOnly?: boolean;
}

export async function openStore(spec: string, opts: OpenOptions = {}): Promise<Store> {
  const s = parseStoreSpec(spec);
  if (s.kind === "postgres") return PostgresStore.open(s.url, opts);
  return opts.readOnly ? SqliteStore.openReadOnly(s.path) : SqliteStore.open(s.path);
}
