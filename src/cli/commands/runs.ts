/** `gcx runs`: inspect and export the run store of the paper-reproduction sweeps. */
import { Command, Option } from "commander";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { TRIAL_STATUSES, type TrialRow, type TrialStatus } from "../../store/runStore.js";
import type { Store } from "../../store/store.js";
import { openStore } from "../../store/open.js";
import { SqliteStore } from "../../store/sqlite.js";
import { addStoreOption, DEFAULT_STORE, storeOf, type StoreFlags } from "../storeOption.js";
import { formatStatus } from "./runsStatus.js";
import { UserError } from "../../util/errors.js";
import { onFile, pathKind, writeFileAtomic } from "../../util/files.js";
import { sanitizeLine } from "../errorBoundary.js";

export const DEFAULT_DB = DEFAULT_STORE;

type DbFlags = StoreFlags;
interface FilterFlags extends DbFlags {
  family?: string;
  status?: TrialStatus;
}
interface ExportFlags extends FilterFlags {
  format: "csv" | "jsonl";
  metrics?: boolean;
  out?: string;
}

export function runsCommand(): Command {
  const cmd = new Command("runs")
    .description(
      `Inspect and export the run store of the sweeps (a SQLite file, default ${DEFAULT_DB}, or a postgres:// URL).`,
    )
    .showHelpAfterError("(run with --help for usage)");

  const list = new Command("list")
    .description("Table of trials: id, family, knob=value, seed, status, seconds and final GC/accuracy.")
    .option("--family <name>", "only this family (e.g. E5)")
    .addOption(new Option("--status <status>", "only trials in this status").choices(TRIAL_STATUSES))
    .action((flags: FilterFlags) => withStore(flags, async (store) => write(await formatList(store, flags))));

  const show = new Command("show")
    .description("One trial: its config, status, summary and metric records (an id or a unique id prefix).")
    .argument("<id>", "trial id, or a unique prefix of one")
    .action((id: string, flags: DbFlags) => withStore(flags, async (store) => write(await formatShow(store, id))));

  const exp = new Command("export")
    .description(
      "One row per trial (id, family, version, knob, knob_value, seed, status, seconds, then the summary fields),\n" +
        "or with --metrics one row per (trial, step) with the metric fields; to stdout unless --out.",
    )
    .addOption(new Option("--format <format>", "output format").choices(["csv", "jsonl"]).default("csv"))
    .option("--family <name>", "only this family")
    .addOption(new Option("--status <status>", "only trials in this status").choices(TRIAL_STATUSES))
    .option("--metrics", "one row per logged metric record instead of one per trial")
    .option("--out <file>", "write to this file instead of stdout")
    .action((flags: ExportFlags) =>
      withStore(flags, async (store) => {
        const { text, rows } = await exportRuns(store, flags);
        if (flags.out === undefined) return write(text);
        writeExport(flags.out, text);
        process.stderr.write(`wrote ${rows} row${rows === 1 ? "" : "s"} to ${sanitizeLine(flags.out)}\n`);
      }),
    );

  const status = new Command("status")
    .description("Progress of the sweep: queued, running (worker, heartbeat age), done and failed trials, and an ETA.")
    .option("--family <name>", "only this family")
    .action((flags: FilterFlags) => withStore(flags, async (store) => write(await formatStatus(store, flags.family))));

  for (const sub of [list, show, exp, status]) {
    addStoreOption(sub)
      .showHelpAfterError("(run with --help for usage)")
      // Subcommands added with addCommand do not inherit the parent's exit override: throw, and let the caller decide.
      .exitOverride();
    cmd.addCommand(sub);
  }
  return cmd;
}

/** Runs `fn` on the store opened read-only (inspecting never writes, so a read-only store is fine). */
async function withStore(flags: StoreFlags, fn: (store: Store) => Promise<void>): Promise<void> {
  const store = await openStore(storeOf(flags), { readOnly: true });
  try {
    await fn(store);
  } finally {
    await store.close();
  }
}

/** The store as the "no trial" message names it: the SQLite file's full path, or the redacted URL. */
function storePath(store: Store): string {
  return store instanceof SqliteStore ? store.inner.path : store.shown;
}

function write(text: string): void {
  process.stdout.write(text);
}

/**
 * Writes an export file atomically (a temporary file renamed into place), creating its directory; an existing
 * directory, a read-only directory or any other unwritable path is one line naming the path, and leaves what was
 * there untouched.
 */
function writeExport(out: string, text: string): void {
  const kind = pathKind(out);
  if (kind === "directory") throw new UserError(`cannot write ${out}: it is a directory (pass --out <file>)`);
  if (kind === "other") throw new UserError(`cannot write ${out}: it is not a regular file (pass --out <file>)`);
  onFile("create the directory of", out, () => mkdirSync(dirname(out), { recursive: true }));
  writeFileAtomic(out, text);
}

/** A value from the store as one line of terminal text: escape sequences and control characters removed. */
function clean(s: string): string {
  return sanitizeLine(s).replace(/[\t\n]/g, " ");
}

// ---------------------------------------------------------------------------------------------------------------
// list and show

function fmtNum(v: unknown): string {
  if (typeof v !== "number") return v === undefined || v === null ? "-" : typeof v === "string" ? v : JSON.stringify(v);
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e9) return String(v);
  return Math.abs(v) >= 1e-3 && Math.abs(v) < 1e6 ? String(Number(v.toPrecision(5))) : v.toExponential(3);
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, j) => Math.max(h.length, ...rows.map((r) => r[j].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, j) => c.padEnd(widths[j]))
      .join("  ")
      .trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n") + "\n";
}

const LIST_SUMMARY_KEYS = ["gc_train", "gc_test", "train_acc", "test_acc"];

async function formatList(store: Store, flags: FilterFlags): Promise<string> {
  const trials = await store.list({ family: flags.family, status: flags.status });
  if (trials.length === 0) return "no trials" + (flags.family || flags.status ? " match" : "") + "\n";
  const header = ["id", "family", "knob", "seed", "status", "seconds", ...LIST_SUMMARY_KEYS];
  const rows = trials.map((t) =>
    [
      t.id,
      `${t.family} v${t.version}`,
      `${t.knob}=${fmtNum(t.knobValue)}`,
      String(t.seed),
      t.status,
      t.seconds === null ? "-" : t.seconds.toFixed(1),
      ...LIST_SUMMARY_KEYS.map((k) => fmtNum(t.summary?.[k])),
    ].map(clean),
  );
  const n: Record<TrialStatus, number> = { pending: 0, running: 0, done: 0, failed: 0 };
  for (const t of trials) n[t.status]++;
  const totals = TRIAL_STATUSES.filter((s) => n[s] > 0).map((s) => `${n[s]} ${s}`);
  return table(header, rows) + `${trials.length} trial${trials.length === 1 ? "" : "s"}: ${totals.join(", ")}\n`;
}

async function findTrial(store: Store, id: string): Promise<TrialRow> {
  const exact = await store.get(id);
  if (exact) return exact;
  const matches = id.length > 0 ? (await store.list()).filter((t) => t.id.startsWith(id)) : [];
  if (matches.length === 1) return matches[0];
  if (matches.length > 1) throw new UserError(`trial id prefix ${id} is ambiguous (${matches.length} trials match)`);
  throw new UserError(`no trial ${id} in ${storePath(store)}`);
}

async function formatShow(store: Store, id: string): Promise<string> {
  const t = await findTrial(store, id);
  const lines = [
    `trial:    ${t.id}`,
    `family:   ${t.family} (version ${t.version})`,
    `knob:     ${t.knob} = ${fmtNum(t.knobValue)}`,
    `seed:     ${t.seed}`,
    `status:   ${t.status}${t.seconds !== null ? ` (${t.seconds.toFixed(1)} s)` : ""}`,
  ];
  if (t.startedAt) lines.push(`started:  ${t.startedAt}`);
  if (t.finishedAt) lines.push(`finished: ${t.finishedAt}`);
  if (t.error) lines.push(`error:    ${t.error}`);
  lines.push(
    "config:",
    ...JSON.stringify(t.config, null, 2)
      .split("\n")
      .map((l) => "  " + l),
  );
  if (t.summary) {
    lines.push("summary:");
    const entries = Object.entries(t.summary).map(([k, v]) => [clean(k), clean(fmtNum(v))]);
    const w = Math.max(0, ...entries.map(([k]) => k.length));
    for (const [k, v] of entries) lines.push(`  ${k.padEnd(w)}  ${v}`);
  }
  const records = await store.metrics(t.id);
  // Every entry of `lines` is meant as one line: clean() also turns a stored newline into a space.
  const text = lines.map(clean).join("\n") + "\n";
  if (records.length === 0) return text;
  const keys = fieldNames(records, ["step"]);
  const rows = records.map((r) => keys.map((k) => clean(fmtNum(r[k]))));
  return (
    text + `metrics (${records.length} record${records.length === 1 ? "" : "s"}):\n` + table(keys.map(clean), rows)
  );
}

// ---------------------------------------------------------------------------------------------------------------
// export

const TRIAL_FIELDS = ["id", "family", "version", "knob", "knob_value", "seed", "status", "seconds"] as const;
const METRIC_TRIAL_FIELDS = ["id", "family", "version", "knob", "knob_value", "seed"] as const;

const finite = (v: number): number | null => (Number.isFinite(v) ? v : null);

/** Union of the records' keys in first-seen order, `first` leading. */
function fieldNames(records: Record<string, unknown>[], first: readonly string[] = []): string[] {
  const seen = new Set<string>(first);
  const out = [...first];
  for (const r of records)
    for (const k of Object.keys(r))
      if (!seen.has(k)) {
        seen.add(k);
        out.push(k);
      }
  return out;
}

/** Merges `fields` into `base`, renaming a field that collides with a base column to `<prefix>.<name>`. */
function merge(
  base: Record<string, unknown>,
  fields: Record<string, unknown> | null,
  prefix: string,
): Record<string, unknown> {
  const out = { ...base };
  for (const [k, v] of Object.entries(fields ?? {})) out[k in base ? `${prefix}.${k}` : k] = v;
  return out;
}

/** The flattened export records: one per trial, or one per (trial, step) with `metrics`. */
export async function exportRecords(
  store: Store,
  opts: { family?: string; status?: TrialStatus; metrics?: boolean },
): Promise<Record<string, unknown>[]> {
  const trials = await store.list({ family: opts.family, status: opts.status });
  if (!opts.metrics) {
    return trials.map((t) =>
      merge(
        {
          id: t.id,
          family: t.family,
          version: t.version,
          knob: t.knob,
          knob_value: finite(t.knobValue),
          seed: t.seed,
          status: t.status,
          seconds: t.seconds,
        },
        t.summary,
        "summary",
      ),
    );
  }
  const out: Record<string, unknown>[] = [];
  for (const t of trials) {
    const base = {
      id: t.id,
      family: t.family,
      version: t.version,
      knob: t.knob,
      knob_value: finite(t.knobValue),
      seed: t.seed,
    };
    for (const m of await store.metrics(t.id)) {
      const { step, ...rest } = m;
      out.push(merge({ ...base, step }, rest, "metric"));
    }
  }
  return out;
}

export async function exportRuns(
  store: Store,
  opts: { format: "csv" | "jsonl"; family?: string; status?: TrialStatus; metrics?: boolean },
): Promise<{ text: string; rows: number }> {
  const records = await exportRecords(store, opts);
  if (opts.format === "jsonl")
    return { text: records.map((r) => JSON.stringify(r) + "\n").join(""), rows: records.length };
  const header = fieldNames(records, opts.metrics ? [...METRIC_TRIAL_FIELDS, "step"] : TRIAL_FIELDS);
  const lines = [header.map(csvCell).join(",")];
  for (const r of records) lines.push(header.map((k) => csvCell(r[k])).join(","));
  return { text: lines.join("\n") + "\n", rows: records.length };
}

/** One RFC 4180 cell: null/undefined empty, arrays and objects JSON-encoded, quoted when needed. */
export function csvCell(v: unknown): string {
  const scalar = typeof v === "string" || typeof v === "number" || typeof v === "boolean" || typeof v === "bigint";
  const s = v === null || v === undefined ? "" : scalar ? String(v) : (JSON.stringify(v) ?? "");
  return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
