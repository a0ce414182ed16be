/** The `--store` option every store-using command shares, with `--db` kept as its alias for a SQLite file. */
import type { Command } from "commander";
import { join } from "node:path";
import { redactStore } from "../store/store.js";
import { UserError } from "../util/errors.js";

export const DEFAULT_STORE = join("runs", "gcx.sqlite");

export interface StoreFlags {
  store?: string;
  db?: string;
}

/** Adds `--store <url|file>` and its alias `--db <file>`. */
export function addStoreOption(cmd: Command): Command {
  return cmd
    .option(
      "--store <url|file>",
      `run store: a SQLite file or postgres://user:password@host:port/database (default ${DEFAULT_STORE})`,
    )
    .option("--db <file>", "same as --store, for a SQLite file");
}

/** The store the flags name (`--store`, else `--db`, else the default); naming two different ones is a user error. */
export function storeOf(flags: StoreFlags): string {
  if (flags.store !== undefined && flags.db !== undefined && flags.store !== flags.db)
    throw new UserError(
      `--store ${redactStore(flags.store)} and --db ${redactStore(flags.db)} name different stores; pass one of them`,
    );
  return flags.store ?? flags.db ?? DEFAULT_STORE;
}

/** The flag that names the store again in a suggested command, as the user named it ("" for the default store). */
export function storeFlag(flags: StoreFlags): string {
  const spec = storeOf(flags);
  if (spec === DEFAULT_STORE) return "";
  return flags.store === undefined ? ` --db ${spec}` : ` --store ${redactStore(spec)}`;
}
