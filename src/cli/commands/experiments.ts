/**
 * `gcx experiment list|run`, `gcx report` and `gcx reproduce`: the paper's experiment families run as resumable
 * sweeps into the SQLite run store, then the HTML report and the claims table.
 */
import { Command, Option } from "commander";
import { cpus } from "node:os";
import { join, resolve } from "node:path";
import { families, PROFILES, type FamilyDef, type Profile } from "../../experiments/families.js";
import { expandTrials } from "../../experiments/trials.js";
import { runSweep } from "../../experiments/sweep.js";
import { buildReport, claimsJson, formatClaimsTable, type TrialData } from "../../experiments/reportBuilder.js";
import { checkReportDir, writeReport } from "../../report/html.js";
import { oneLine } from "../../store/runStore.js";
import { parseStoreSpec, type Store } from "../../store/store.js";
import { PostgresStore } from "../../store/postgres.js";
import { openStore } from "../../store/open.js";
import { runQueueSweep } from "../../experiments/queueSweep.js";
import { addStoreOption, storeFlag, storeOf, type StoreFlags } from "../storeOption.js";
import { UserError } from "../../util/errors.js";
import { nonNegativeInt, positiveInt } from "../parse.js";
import { progressBar } from "../progress.js";
import { sanitizeLine } from "../errorBoundary.js";

interface SweepFlags extends StoreFlags {
  full?: boolean;
  quick?: boolean;
  profile?: string;
  json?: boolean;
  jobs: number;
  workers?: number;
  lease?: number;
  retries?: number;
  runsDir: string;
  out: string;
  progress: boolean;
}

function addSweepOptions(cmd: Command): Command {
  return addStoreOption(cmd)
    .option("--quick", "small, fast profile (default): the whole suite in about 15 minutes on 2 cores")
    .option("--full", "paper-like scale (hours)")
    .option(
      "--profile <name>",
      `profile: ${PROFILES.join(", ")} (conv: a small CNN on Fashion-MNIST for E2, E5, E7, E9)`,
    )
    .option(
      "--json",
      "print the claims as JSON (id, dataset, model, expected, rho and effect with CIs, matched-progress verdict, accuracy cost, verdict, flags) instead of the table",
    )
    .option("--jobs <n>", "trials run in parallel (worker threads)", positiveInt, Math.max(1, cpus().length))
    .option(
      "--runs-dir <dir>",
      "where each trial keeps its checkpoints (with a postgres store: a directory every worker shares)",
      join("runs", "trials"),
    )
    .option(
      "--workers <n>",
      "with a postgres store: worker threads in this process working on the queue (0: only enqueue; default --jobs)",
      nonNegativeInt,
    )
    .option(
      "--lease <seconds>",
      "with a postgres store: how long a worker may hold a trial before it is given to another",
      positiveInt,
    )
    .option(
      "--retries <n>",
      "with a postgres store: retries of a failed or lost trial before it is recorded as failed",
      nonNegativeInt,
    )
    .option("--no-progress", "hide the progress bar (and, when stderr is not a terminal, the line per finished trial)");
}

function profileOf(flags: { full?: boolean; quick?: boolean; profile?: string }): Profile {
  const named = [flags.quick && "quick", flags.full && "full", flags.profile].filter(Boolean) as string[];
  if (new Set(named).size > 1) throw new UserError(`choose one profile (got ${named.join(", ")})`);
  const p = named[0] ?? "quick";
  if (!(PROFILES as readonly string[]).includes(p))
    throw new UserError(`unknown profile "${p}"; choose one of: ${PROFILES.join(", ")}`);
  return p as Profile;
}

function pick(profile: Profile, ids: string[]): FamilyDef[] {
  const all = families(profile);
  if (!ids.length) return all;
  return ids.map((id) => {
    const f = all.find((x) => x.id.toLowerCase() === id.toLowerCase());
    if (!f) throw new UserError(`unknown experiment "${id}"; choose from: ${all.map((x) => x.id).join(", ")}`);
    return f;
  });
}

interface SweepResult {
  ran: number;
  failures: { id: string; error: string }[];
  /** Trials of a queued sweep not finished yet (--workers 0, or running elsewhere). */
  remaining?: number;
}

async function sweep(fams: FamilyDef[], flags: SweepFlags, store: Store): Promise<SweepResult> {
  const plans = fams.flatMap(expandTrials);
  const tty = flags.progress && process.stderr.isTTY === true;
  const lines = flags.progress && !tty;
  const bar = progressBar("trials", tty);
  const t0 = performance.now();
  const failures: SweepResult["failures"] = [];
  try {
    const opts = {
      jobs: flags.jobs,
      runsDir: flags.runsDir,
      onTrialDone(plan: (typeof plans)[number], ok: boolean, done: number, total: number, error?: string) {
        if (!ok) failures.push({ id: plan.id, error: error ?? "unknown error" });
        bar.update(done, total);
        if (lines) {
          const eta = ((performance.now() - t0) / 1000 / done) * (total - done);
          const line = `[${done}/${total}] ${plan.family} ${plan.variant ? plan.variant + " " : ""}${plan.knob}=${plan.knobValue} seed ${plan.seed}: ${ok ? "done" : "FAILED " + error}  (ETA ${eta.toFixed(0)} s)`;
          process.stderr.write(sanitizeLine(line) + "\n");
        }
      },
    };
    if (store instanceof PostgresStore) {
      const log = (line: string) => process.stderr.write(sanitizeLine(line) + "\n");
      const q = {
        ...opts,
        workers: flags.workers ?? flags.jobs,
        leaseSeconds: flags.lease,
        retries: flags.retries,
        log,
      };
      const r = await runQueueSweep(store, plans, q);
      return { ran: plans.length, failures: r.failures, remaining: r.remaining };
    }
    const r = await runSweep(store, plans, opts);
    return { ran: r.ran, failures };
  } finally {
    bar.stop();
  }
}

async function collect(store: Store, fams: FamilyDef[]): Promise<Map<string, TrialData[]>> {
  const data = new Map<string, TrialData[]>();
  for (const fam of fams) {
    const plans = new Map(expandTrials(fam).map((p) => [p.id, p]));
    const rows = (await store.list({ family: fam.id, status: "done" })).filter((r) => plans.has(r.id));
    const trials: TrialData[] = [];
    for (const row of rows) {
      const variant = String((row.config.variant as string | number | undefined) ?? "");
      trials.push({ row, variant, setup: plans.get(row.id)!.setup, metrics: await store.metrics(row.id) });
    }
    data.set(fam.id, trials);
  }
  return data;
}

async function report(fams: FamilyDef[], profile: Profile, store: Store, out: string, json = false): Promise<void> {
  const { doc, claims, sanity } = buildReport(fams, await collect(store, fams), profile);
  const html = await writeReport(out, doc);
  if (json) {
    process.stdout.write(
      JSON.stringify({ profile, report: resolve(html), claims: claimsJson(claims, sanity) }, null, 2) + "\n",
    );
    return;
  }
  process.stdout.write(formatClaimsTable(claims, sanity));
  process.stdout.write(`\nreport: ${resolve(html)}\n`);
}

/**
 * Runs the sweep, then writes the report. If any trial of this invocation failed, that is a UserError (exit 2)
 * thrown after the report is written: "N of M trials failed (first: <id>: <message>); see gcx runs list ...".
 */
async function sweepAndReport(fams: FamilyDef[], profile: Profile, flags: SweepFlags): Promise<void> {
  // Fail before hours of training rather than after them (and before creating a store).
  checkReportDir(flags.out);
  const spec = storeOf(flags);
  if (
    parseStoreSpec(spec).kind !== "postgres" &&
    (flags.workers !== undefined || flags.lease !== undefined || flags.retries !== undefined)
  )
    throw new UserError("--workers, --lease and --retries need a postgres:// store (--store)");
  const store = await openStore(spec, {
    reconnectSeconds: 3600,
    onReconnect: (_e, line) => process.stderr.write(sanitizeLine(line) + "\n"),
  });
  let result: SweepResult;
  try {
    result = await sweep(fams, flags, store);
    if (result.remaining) {
      process.stderr.write(
        `${result.remaining} trial${result.remaining === 1 ? "" : "s"} not finished yet; run gcx worker${storeFlag(flags)} (on any machine), then gcx report${storeFlag(flags)}\n`,
      );
      return;
    }
    await report(fams, profile, store, flags.out, flags.json);
  } finally {
    await store.close();
  }
  const { ran, failures } = result;
  if (failures.length > 0) {
    const first = { ...failures[0], error: oneLine(failures[0].error, 300) };
    throw new UserError(
      `${failures.length} of ${ran} trial${ran === 1 ? "" : "s"} failed (first: ${first.id}: ${first.error}); see gcx runs list --status failed${storeFlag(flags)}`,
    );
  }
}

export function experimentCommand(): Command {
  const cmd = new Command("experiment").description(
    "The paper's experiment families (E1-E10; B is computed from all trained runs)",
  );
  cmd
    .command("list")
    .description("list the families, their knobs and trial counts")
    .addOption(new Option("--full", "show the full profile"))
    .option("--profile <name>", `profile: ${PROFILES.join(", ")}`)
    .action((flags: { full?: boolean; profile?: string }) => {
      for (const f of families(profileOf(flags))) {
        process.stdout.write(
          `${f.id.padEnd(4)} ${f.title.padEnd(28)} knob ${f.knob.label} ∈ {${f.knob.values.join(", ")}}${f.variants ? ` × ${f.variants.map((v) => v.name).join("/")}` : ""}, ${f.seeds.length} seeds: ${expandTrials(f).length} trials\n`,
        );
      }
    });
  addSweepOptions(
    cmd
      .command("run")
      .description("run one or more families (resumes; finished trials are skipped)")
      .argument("<ids...>", "family ids, e.g. E5"),
  )
    .option("--out <dir>", "report directory", join("runs", "report"))
    .action(async (ids: string[], flags: SweepFlags) => {
      const profile = profileOf(flags);
      await sweepAndReport(pick(profile, ids), profile, flags);
    });
  return cmd;
}

export function reproduceCommand(): Command {
  return addSweepOptions(
    new Command("reproduce").description("Run every experiment family, write the report and print the claims table"),
  )
    .option("--out <dir>", "report directory", join("runs", "report"))
    .action(async (flags: SweepFlags) => {
      const profile = profileOf(flags);
      await sweepAndReport(families(profile), profile, flags);
    });
}

export function reportCommand(): Command {
  return addStoreOption(new Command("report"))
    .description("Write the HTML report and print the claims table from the trials already in the run store")
    .option("--full", "report on the full profile's trials (default: quick)")
    .option("--profile <name>", `profile whose trials to report: ${PROFILES.join(", ")}`)
    .option("--json", "print the claims as JSON instead of the table")
    .option("--out <dir>", "report directory", join("runs", "report"))
    .action(async (flags: StoreFlags & { full?: boolean; profile?: string; json?: boolean; out: string }) => {
      const profile = profileOf(flags);
      checkReportDir(flags.out);
      // Reporting only reads the store: it works on a read-only one, and never creates a missing one.
      const store = await openStore(storeOf(flags), { readOnly: true });
      try {
        await report(families(profile), profile, store, flags.out, flags.json);
      } finally {
        await store.close();
      }
    });
}
