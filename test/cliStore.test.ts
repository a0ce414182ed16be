/**
 * The run store through the CLI: read-only stores, corrupt stores, malformed rows, terminal control characters,
 * failed trials and unwritable --out paths. Every mistake or environment problem must end `gcx` with exit code 2 and
 * exactly one stderr line naming the path, no stack trace, and every file that existed before byte-identical after.
 *
 * Everything here runs as root, for which file permissions do not apply; the read-only cases run the spawned gcx as
 * the unprivileged user `nobody` (setpriv), and are skipped, saying why, where that is impossible.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import Database from "better-sqlite3";
import { RunStore, trialId, type TrialSpec } from "../src/store/runStore.js";
import { families } from "../src/experiments/families.js";
import { expandTrials } from "../src/experiments/trials.js";
import { parseCsv } from "./helpers.js";
import { cliEnv } from "./cliRun.js";

const here = dirname(fileURLToPath(import.meta.url));
const main = join(here, "..", "src", "cli", "main.js");
const storeUrl = pathToFileURL(join(here, "..", "src", "store", "runStore.js")).href;

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

const SETPRIV = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => existsSync(p));
const NOBODY = 65534;

function gcxSync(args: string[], opts: { nobody?: boolean; cwd?: string } = {}): Result {
  const env = cliEnv({ ...process.env, GCX_DEBUG: "" });
  const cmd = opts.nobody
    ? spawnSync(
        SETPRIV!,
        [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", process.execPath, main, ...args],
        { encoding: "utf8", env, cwd: opts.cwd },
      )
    : spawnSync(process.execPath, [main, ...args], { encoding: "utf8", env, cwd: opts.cwd });
  return { status: cmd.status, stdout: cmd.stdout, stderr: cmd.stderr };
}

/** Runs gcx without blocking, so that a test's commands run side by side (each one takes a second to start). */
function gcx(args: string[], opts: { nobody?: boolean } = {}): Promise<Result> {
  const env = cliEnv({ ...process.env, GCX_DEBUG: "" }); // the test's kernel variant: trial ids match the CLI's
  const [cmd, argv] = opts.nobody
    ? [SETPRIV!, [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", process.execPath, main, ...args]]
    : [process.execPath, [main, ...args]];
  return new Promise((res, rej) => {
    const p = spawn(cmd, argv, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "",
      stderr = "";
    p.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    p.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    p.on("error", rej);
    p.on("close", (status) => res({ status, stdout, stderr }));
  });
}

/** Runs every command at once; resolves to [args, result] pairs in order. */
async function gcxAll(commands: string[][], opts: { nobody?: boolean } = {}): Promise<[string[], Result][]> {
  return Promise.all(commands.map(async (args) => [args, await gcx(args, opts)] as [string[], Result]));
}

/** Why the read-only cases cannot run here, or null: they need root (to drop to nobody) and setpriv. */
const noUnprivilegedUser: string | null = (() => {
  if (process.getuid?.() !== 0)
    return "not running as root: cannot switch to an unprivileged user (and chmod already binds this process)";
  if (!SETPRIV) return "setpriv is not installed";
  const r = gcxSync(["--version"], { nobody: true });
  if (r.status !== 0)
    return `gcx cannot run as uid ${NOBODY} here (${(r.stderr || String(r.status)).trim().split("\n")[0]})`;
  return null;
})();

/** Asserts the one-line error contract and returns the line. */
function oneLineError(r: Result, pattern: RegExp, what: string): string {
  assert.equal(r.status, 2, `${what}: exit ${r.status}, stderr: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n\s+at /, `${what}: no stack trace`);
  const lines = r.stderr.split("\n").filter((l) => l.length > 0);
  assert.equal(lines.length, 1, `${what}: exactly one stderr line, got: ${r.stderr}`);
  assert.match(lines[0], /^gcx: error: /, what);
  assert.doesNotMatch(lines[0], /internal error|this is a bug/, what);
  assert.match(lines[0], pattern, what);
  return lines[0];
}

/**
 * Every file of `before` is byte-identical in `after`. With `sqliteFiles`, the only files allowed to appear are the
 * `-wal` (empty) and `-shm` files SQLite creates next to a store that a read-only connection reads in WAL mode (it
 * cannot remove them when it closes, as it cannot checkpoint); otherwise nothing may appear.
 */
function assertUnchanged(dir: string, before: Record<string, string>, what: string, sqliteFiles = false): void {
  const after = snapshot(dir);
  for (const [f, h] of Object.entries(before)) assert.equal(after[f], h, `${what}: ${f} is byte-identical`);
  const added = Object.keys(after).filter((f) => !(f in before));
  const allowed = (f: string) =>
    sqliteFiles &&
    /-(wal|shm)$/.test(f) &&
    f.replace(/-(wal|shm)$/, "") in before &&
    (f.endsWith("-shm") || statSync(join(dir, f)).size === 0);
  assert.deepEqual(
    added.filter((f) => !allowed(f)),
    [],
    `${what}: no file added`,
  );
}

/** sha256 of every file under `dir` (relative path → hash): compare before and after to prove nothing changed. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[relative(dir, p)] = createHash("sha256").update(readFileSync(p)).digest("hex");
    }
  };
  walk(dir);
  return out;
}

/** A fresh directory; `mode` 0o755 makes it read-only for nobody, 0o777 writable. */
function tmp(mode = 0o755): string {
  const dir = mkdtempSync(join(tmpdir(), "gcx-clistore-"));
  chmodSync(dir, mode);
  return dir;
}

function spec(family: string, knobValue: number, seed: number, extra: Record<string, unknown> = {}): TrialSpec {
  const config = { data: "moons", lr: knobValue, steps: 100, ...extra };
  return { id: trialId(family, 1, config, seed), family, version: 1, knob: "lr", knobValue, seed, config };
}

/** A real trial of family E2 of the quick profile: `gcx report` reads its metrics. */
function e2Spec(i = 0): TrialSpec {
  const plan = expandTrials(families("quick").find((f) => f.id === "E2")!)[i];
  return {
    id: plan.id,
    family: plan.family,
    version: plan.version,
    knob: plan.knob,
    knobValue: plan.knobValue,
    seed: plan.seed,
    config: { ...plan.config, variant: plan.variant, kind: plan.kind },
  };
}

/** A closed store (WAL mode, no -wal/-shm left) with a done trial (an E2 one), a failed one and a pending one. */
function makeStore(
  db: string,
  opts: { many?: number } = {},
): { db: string; done: TrialSpec; failed: TrialSpec; pending: TrialSpec } {
  const store = RunStore.open(db);
  const [done, failed, pending] = [e2Spec(0), spec("E5", 0.1, 1), spec("E5", 0.3, 2)];
  // Extra pending trials with large configs spread the trials table over many pages (one transaction, fast).
  const extra = Array.from({ length: opts.many ?? 0 }, (_, i) => spec("M", i, 0, { pad: "p".repeat(1000) }));
  store.ensureTrials([done, failed, pending, ...extra]);
  store.claim(done.id);
  store.finish(
    done.id,
    { gc_train: 1.5, test_acc: 0.9 },
    [
      { step: 0, gc_train: 2 },
      { step: 100, gc_train: 1.5 },
    ],
    3,
  );
  store.claim(failed.id);
  store.fail(failed.id, "diverged");
  store.close();
  assert.ok(!existsSync(db + "-wal"), "closing the last connection removes the -wal file");
  assert.equal(readFileSync(db)[18], 2, "the store is in WAL mode");
  return { db, done, failed, pending };
}

/** Deterministic pseudo-random bytes. */
function garbage(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

function overwrite(file: string, offset: number, bytes: Buffer): void {
  const fd = openSync(file, "r+");
  try {
    writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
}

/** The read-only commands: list, show, export (trials), export (metrics), report. */
function readCommands(db: string, id: string, out: string, which = "lsemr"): string[][] {
  const all: Record<string, string[]> = {
    l: ["runs", "list", "--db", db],
    s: ["runs", "show", id, "--db", db],
    e: ["runs", "export", "--db", db],
    m: ["runs", "export", "--metrics", "--format", "jsonl", "--db", db],
    r: ["report", "--db", db, "--out", out],
  };
  return [...which].map((k) => all[k]);
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

// ---------------------------------------------------------------------------------------------------------------
// 1. read-only stores

test(
  "runs list/show/export and report read a WAL store in a read-only directory, with and without -wal/-shm, changing nothing",
  { skip: noUnprivilegedUser ?? false },
  async () => {
    const outs = tmp(0o777);
    // (a) read-only directory, no -wal/-shm: SQLite cannot create the -shm file it reads WAL through.
    const dirA = tmp(0o755);
    const a = makeStore(join(dirA, "runs.sqlite"));
    // (b) -wal and -shm present (a sweep holds the store open), not writable by nobody.
    const dirB = tmp(0o755);
    const b = makeStore(join(dirB, "runs.sqlite"));
    const holder = RunStore.open(b.db);
    holder.counts();
    assert.ok(existsSync(b.db + "-wal") && existsSync(b.db + "-shm"));
    // (c) writable directory but a read-only file.
    const dirC = tmp(0o777);
    const c = makeStore(join(dirC, "runs.sqlite"));
    try {
      const cases = [
        ["a", a, dirA, "lsemr"],
        ["b", b, dirB, "lsr"],
        ["c", c, dirC, "lm"],
      ] as const;
      const before = cases.map(([, , dir]) => snapshot(dir));
      const runs = await Promise.all(
        cases.map(([name, s, , which]) =>
          gcxAll(readCommands(s.db, s.done.id.slice(0, 8), join(outs, `report-${name}`), which), { nobody: true }),
        ),
      );
      cases.forEach(([name, , dir], k) => {
        for (const [args, r] of runs[k]) {
          assert.equal(r.status, 0, `${name}: ${args.join(" ")}: ${r.stderr}`);
          assert.doesNotMatch(r.stderr, /error/i, `${name}: ${args.join(" ")}`);
          if (args[1] === "list") assert.match(r.stdout, /3 trials: 1 pending, 1 done, 1 failed/);
          if (args[1] === "show") assert.match(r.stdout, /test_acc\s+0\.9/);
          if (args[1] === "export" && args.includes("--metrics")) assert.equal(r.stdout.trim().split("\n").length, 2);
          if (args[1] === "export" && !args.includes("--metrics")) assert.equal(r.stdout.trim().split("\n").length, 4);
          if (args[0] === "report") assert.ok(existsSync(join(outs, `report-${name}`, "index.html")), r.stdout);
        }
        // Read-only directories stay exactly as they were; in (c) SQLite may add its -wal/-shm files.
        assertUnchanged(dir, before[k], name, name === "c");
      });
    } finally {
      holder.close();
    }
  },
);

test(
  "a read-only WAL store whose -wal has changes but no -shm: one line saying why and what to do",
  { skip: noUnprivilegedUser ?? false },
  async () => {
    const dir = tmp(0o755);
    const { db, done } = makeStore(join(dir, "runs.sqlite"));
    // A writer killed with changes only in its -wal file; then the -shm file is lost (e.g. a copy without it).
    const src = `import { RunStore } from ${JSON.stringify(storeUrl)};
    const s = RunStore.open(process.env.DB); s.fail(${JSON.stringify(done.id)}, "late change");
    process.stdout.write("ready\\n"); setInterval(() => {}, 1000);`;
    const p = spawn(process.execPath, ["--input-type=module", "-e", src], {
      env: { ...process.env, DB: db },
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise<void>((res, rej) => {
      p.stdout.on("data", () => res());
      p.on("exit", (code) => rej(new Error(`writer exited ${code}`)));
    });
    p.kill("SIGKILL");
    await new Promise((res) => p.on("close", res));
    assert.ok(statSync(db + "-wal").size > 0);
    rmSync(db + "-shm");
    const before = snapshot(dir);
    const outs = tmp(0o777);
    const pattern = new RegExp(
      `cannot read run store ${escape(db)}: it is in WAL mode .*-wal holds changes .*-shm, which is missing .*not writable; open the store once with write access`,
    );
    for (const [args, r] of await gcxAll(readCommands(db, done.id, join(outs, "r"), "lr"), { nobody: true }))
      oneLineError(r, pattern, args.join(" "));
    assertUnchanged(dir, before, "dirty -wal without -shm");
    // With write access (root) the same store reads fine, the late change included.
    const r = await gcx(["runs", "show", done.id, "--db", db]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /error:\s+late change/);
  },
);

test(
  "experiment run and reproduce on a read-only store: one line 'run store X is read-only', nothing changed",
  { skip: noUnprivilegedUser ?? false },
  async () => {
    const outs = tmp(0o777);
    await Promise.all(
      [0o755, 0o777].map(async (mode) => {
        const dir = tmp(mode);
        const { db } = makeStore(join(dir, "runs.sqlite"));
        const before = snapshot(dir);
        const pattern = new RegExp(
          `^gcx: error: run store ${escape(db)} is read-only: the file is not writable: permission denied \\(EACCES\\)`,
        );
        for (const [args, r] of await gcxAll(
          [
            [
              "experiment",
              "run",
              "E2",
              "--db",
              db,
              "--out",
              join(outs, "r"),
              "--runs-dir",
              join(outs, "t"),
              "--no-progress",
            ],
            ["reproduce", "--db", db, "--out", join(outs, "r"), "--runs-dir", join(outs, "t"), "--no-progress"],
          ],
          { nobody: true },
        ))
          oneLineError(r, pattern, args.join(" "));
        assertUnchanged(dir, before, `read-only store, directory mode ${mode.toString(8)}`);
      }),
    );
    assert.ok(!existsSync(join(outs, "t")), "no trial ran");
  },
);

test("read-only commands never create a store, and refuse what is not a run store in one line", async () => {
  const dir = tmp();
  const missing = join(dir, "nope.sqlite");
  const empty = join(dir, "empty.sqlite");
  writeFileSync(empty, "");
  const foreign = join(dir, "foreign.sqlite");
  const raw = new Database(foreign);
  raw.exec("CREATE TABLE notes (x TEXT)");
  raw.close();
  const before = snapshot(dir);
  const cases: [string[][], RegExp][] = [
    [readCommands(missing, "abc", join(dir, "r"), "lr"), new RegExp(`run store ${escape(missing)} does not exist`)],
    [readCommands(empty, "abc", join(dir, "r"), "lr"), new RegExp(`run store ${escape(empty)} is empty`)],
    [
      readCommands(foreign, "abc", join(dir, "r"), "se"),
      new RegExp(`${escape(foreign)} is a SQLite database but not a gcx run store`),
    ],
    [readCommands(dir, "abc", join(dir, "r"), "l"), new RegExp(`run store ${escape(dir)} is a directory`)],
  ];
  const results = await Promise.all(cases.map(([commands]) => gcxAll(commands)));
  cases.forEach(([, pattern], k) => {
    for (const [args, r] of results[k]) oneLineError(r, pattern, args.join(" "));
  });
  assert.ok(!existsSync(missing), "not created");
  assertUnchanged(dir, before, "not a run store", true);
});

// ---------------------------------------------------------------------------------------------------------------
// 2. corrupt stores, malformed rows

test("a corrupt store (pages overwritten with garbage) is one line naming it, for every command, and is left as it was", async () => {
  const dir = tmp();
  const { db, done } = makeStore(join(dir, "runs.sqlite"), { many: 200 });
  const size = statSync(db).size;
  const page = 4096;
  assert.ok(size > 20 * page, `the store has many pages (${size} bytes)`);
  overwrite(db, 2 * page, garbage(size - 4 * page, 12345));
  // A damaged header: not a SQLite database (or a corrupt one).
  const dir2 = tmp();
  const bad = makeStore(join(dir2, "runs.sqlite"));
  overwrite(bad.db, 0, garbage(100, 7));
  const outs = tmp();
  const [before, before2] = [snapshot(dir), snapshot(dir2)];
  const sweep = (store: string, out: string) => [
    "experiment",
    "run",
    "E2",
    "--db",
    store,
    "--out",
    join(outs, out),
    "--runs-dir",
    join(outs, "t"),
    "--no-progress",
  ];
  const [corrupt, notDb] = await Promise.all([
    gcxAll([...readCommands(db, done.id, join(outs, "r")), sweep(db, "r2")]),
    gcxAll([...readCommands(bad.db, bad.done.id, join(outs, "r3"), "sr"), sweep(bad.db, "r4")]),
  ]);
  for (const [args, r] of corrupt)
    oneLineError(
      r,
      new RegExp(
        `^gcx: error: run store ${escape(db)} is corrupt \\(database disk image is malformed, SQLITE_CORRUPT\\w*\\); restore it from a backup or move it away and rerun$`,
      ),
      args.join(" "),
    );
  for (const [args, r] of notDb)
    oneLineError(
      r,
      new RegExp(
        `^gcx: error: run store ${escape(bad.db)} is not a SQLite database or is corrupt \\(file is not a database, SQLITE_NOTADB\\); restore it from a backup or move it away and rerun$`,
      ),
      args.join(" "),
    );
  assertUnchanged(dir, before, "corrupt store", true);
  assertUnchanged(dir2, before2, "store with a garbage header", true);
  assert.ok(!existsSync(join(outs, "t")), "no trial ran");
});

test("garbage JSON in a config, summary or metric record: one line naming the store and the trial", async () => {
  const outs = tmp();
  const cases = [
    ["config", "UPDATE trials SET config = '{oops' WHERE id = ?", "lr"],
    ["summary", "UPDATE trials SET summary = '[1, 2' WHERE id = ?", "se"],
    ["summary", "UPDATE trials SET summary = '42' WHERE id = ?", "l"],
    ["metric record \\(step 100\\)", "UPDATE metrics SET data = 'not json' WHERE trial_id = ? AND step = 100", "smr"],
  ] as const;
  await Promise.all(
    cases.map(async ([column, sql, which], k) => {
      const dir = tmp();
      const { db, done } = makeStore(join(dir, "runs.sqlite"));
      const raw = new Database(db);
      raw.prepare(sql).run(done.id);
      raw.close();
      const before = snapshot(dir);
      const pattern = new RegExp(
        `^gcx: error: run store ${escape(db)}: trial ${done.id} has a malformed ${column} \\(not (JSON|a JSON object)`,
      );
      for (const [args, r] of await gcxAll(readCommands(db, done.id, join(outs, `r${k}`), which)))
        oneLineError(r, pattern, `${sql}: ${args.join(" ")}`);
      assertUnchanged(dir, before, sql, true);
    }),
  );
});

// ---------------------------------------------------------------------------------------------------------------
// 3. terminal control characters

test("runs list/show print no terminal control characters from the store; CSV/JSONL export keeps the data", async () => {
  const dir = tmp();
  const db = join(dir, "runs.sqlite");
  const store = RunStore.open(db);
  const evil = "\u001b[2J\u001b]0;pwned\u0007\r\u009b31m\u0008";
  const t: TrialSpec = {
    id: "e".repeat(16),
    family: `E5${evil}`,
    version: 1,
    knob: `lr${evil}`,
    knobValue: 0.1,
    seed: 0,
    config: { note: `x${evil}`, [`k${evil}`]: 1 },
  };
  store.ensureTrials([t]);
  store.claim(t.id);
  store.finish(
    t.id,
    { gc_train: `1${evil}`, [`key${evil}`]: `value${evil}\nnext line` },
    [{ step: 0, [`m${evil}`]: `v${evil}` }],
    1,
  );
  const f: TrialSpec = { ...t, id: "f".repeat(16) };
  store.ensureTrials([f]);
  store.claim(f.id);
  store.close();
  const raw = new Database(db);
  raw.prepare("UPDATE trials SET status = 'failed', error = ? WHERE id = ?").run(`boom${evil}\nsecond line`, f.id);
  raw.close();
  // eslint-disable-next-line no-control-regex
  const control = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;
  const [list, showT, showF, jsonl, csv] = (
    await gcxAll([
      ["runs", "list", "--db", db],
      ["runs", "show", t.id, "--db", db],
      ["runs", "show", f.id, "--db", db],
      ["runs", "export", "--format", "jsonl", "--db", db],
      ["runs", "export", "--db", db],
    ])
  ).map(([, r]) => r);
  for (const r of [list, showT, showF]) {
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stdout, control, `printed a control character: ${JSON.stringify(r.stdout)}`);
    assert.match(r.stdout, /E5/);
  }
  assert.equal(list.stdout.split("\n").length, 2 + 2 + 1 + 1, "header, rule, two rows, totals: one line per trial");
  assert.match(showF.stdout, /error:\s+boom.*second line\n/, "the error stays on one line");
  assert.match(showT.stdout, /m\S*\s+\n?/, "the metric table is there");

  assert.equal(jsonl.status, 0, jsonl.stderr);
  const rec = JSON.parse(jsonl.stdout.split("\n")[0]);
  assert.equal(rec.family, `E5${evil}`, "export keeps the data as stored");
  assert.equal(rec[`key${evil}`], `value${evil}\nnext line`);
  assert.equal(csv.status, 0, csv.stderr);
  const rows = parseCsv(csv.stdout);
  assert.equal(rows.length, 3, "header and two trials, multi-line values quoted");
  assert.ok(
    rows.every((r) => r.length === rows[0].length),
    "every row has every column",
  );
  assert.equal(rows[1][rows[0].indexOf(`key${evil}`)], `value${evil}\nnext line`);
});

// ---------------------------------------------------------------------------------------------------------------
// 4. failed trials

test("experiment run exits 2 with one line when trials fail, after writing the report; stored errors are one line", async () => {
  const dir = tmp();
  const blocker = join(dir, "not-a-dir");
  writeFileSync(blocker, "x");
  const db = join(dir, "runs.sqlite");
  const out = join(dir, "report");
  const r = await gcx([
    "experiment",
    "run",
    "E2",
    "--db",
    db,
    "--runs-dir",
    join(blocker, "trials"),
    "--out",
    out,
    "--jobs",
    "2",
    "--no-progress",
  ]);
  const line = oneLineError(
    r,
    new RegExp(
      `^gcx: error: 24 of 24 trials failed \\(first: [0-9a-f]{16}: .*not a directory.*\\); see gcx runs list --status failed --db ${escape(db)}$`,
    ),
    "experiment run with failing trials",
  );
  assert.ok(line.length < 400, line);
  assert.ok(existsSync(join(out, "index.html")), "the report was written first");
  assert.match(r.stdout, /report: /);
  const store = RunStore.openReadOnly(db);
  const failed = store.list({ status: "failed" });
  store.close();
  assert.equal(failed.length, 24); // E2 quick: 2 setups × 4 values × 3 seeds
  for (const t of failed) {
    assert.ok(t.error && !/[\r\n]/.test(t.error), `one-line error: ${JSON.stringify(t.error)}`);
    assert.doesNotMatch(t.error, /\bat .*:\d+:\d+/, "no stack frames");
  }
});

// ---------------------------------------------------------------------------------------------------------------
// 5. unwritable --out paths

test("report --out and runs export --out to an unusable path: one line naming it, nothing pre-existing modified", async () => {
  const dir = tmp();
  const { db, done } = makeStore(join(dir, "store", "runs.sqlite"));
  const file = join(dir, "existing.txt");
  writeFileSync(file, "keep me\n");
  const reportDir = join(dir, "rep");
  mkdirSync(reportDir);
  writeFileSync(join(reportDir, "figures"), "a file where the figures directory goes\n");
  const before = snapshot(dir);
  const cases: [string[], RegExp][] = [
    [
      ["report", "--db", db, "--out", file],
      new RegExp(`^gcx: error: cannot write the report to ${escape(file)}: it is an existing file, not a directory`),
    ],
    [
      ["report", "--db", db, "--out", join(file, "sub")],
      new RegExp(
        `^gcx: error: cannot create the report directory ${escape(join(file, "sub"))}: ${escape(file)} is not a directory$`,
      ),
    ],
    [
      ["report", "--db", db, "--out", reportDir],
      new RegExp(
        `^gcx: error: cannot write the report to ${escape(reportDir)}: ${escape(join(reportDir, "figures"))} is not a directory`,
      ),
    ],
    [
      ["experiment", "run", "E2", "--db", join(dir, "new.sqlite"), "--out", file, "--no-progress"],
      new RegExp(`^gcx: error: cannot write the report to ${escape(file)}: it is an existing file`),
    ],
    [
      ["runs", "export", "--db", db, "--out", reportDir],
      new RegExp(`^gcx: error: cannot write ${escape(reportDir)}: it is a directory`),
    ],
    [
      ["runs", "export", "--db", db, "--out", join(file, "x.csv")],
      new RegExp(`^gcx: error: cannot create the directory of ${escape(join(file, "x.csv"))}: .*\\(ENOTDIR|EEXIST\\)$`),
    ],
  ];
  for (const [args, r] of await gcxAll(cases.map(([args]) => args)))
    oneLineError(r, cases.find(([a]) => a === args)![1], args.join(" "));
  assertUnchanged(dir, before, "unusable --out", true);
  assert.ok(!existsSync(join(dir, "new.sqlite")), "experiment run checks --out before creating the store");
  assert.equal((await gcx(["runs", "show", done.id, "--db", db])).status, 0);
});

test(
  "report --out and runs export --out in a read-only directory: one line, nothing pre-existing modified",
  { skip: noUnprivilegedUser ?? false },
  async () => {
    const dir = tmp(0o755);
    const { db } = makeStore(join(dir, "runs.sqlite"));
    const existing = join(dir, "trials.csv");
    writeFileSync(existing, "old export\n");
    mkdirSync(join(dir, "report"));
    chmodSync(join(dir, "report"), 0o755);
    const before = snapshot(dir);
    const cases: [string[], RegExp][] = [
      [
        ["report", "--db", db, "--out", join(dir, "report")],
        new RegExp(
          `^gcx: error: cannot write the report to ${escape(join(dir, "report"))}: permission denied \\(EACCES\\)$`,
        ),
      ],
      [
        ["report", "--db", db, "--out", join(dir, "new-report")],
        new RegExp(
          `^gcx: error: cannot create the report directory ${escape(join(dir, "new-report"))}: ${escape(dir)}: permission denied \\(EACCES\\)$`,
        ),
      ],
      [
        ["runs", "export", "--db", db, "--out", existing],
        new RegExp(`^gcx: error: cannot write ${escape(existing)}: permission denied \\(EACCES\\)$`),
      ],
      [
        ["runs", "export", "--db", db, "--out", join(dir, "new", "x.csv")],
        new RegExp(
          `^gcx: error: cannot create the directory of ${escape(join(dir, "new", "x.csv"))}: permission denied \\(EACCES\\)$`,
        ),
      ],
    ];
    for (const [args, r] of await gcxAll(
      cases.map(([args]) => args),
      { nobody: true },
    ))
      oneLineError(r, cases.find(([a]) => a === args)![1], args.join(" "));
    assertUnchanged(dir, before, "read-only --out");
  },
);
