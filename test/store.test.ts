import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import Database from "better-sqlite3";
import { oneLine, RunStore, storeError, trialId, type TrialSpec } from "../src/store/runStore.js";
import { UserError } from "../src/util/errors.js";
import { parseCsv } from "./helpers.js";

const here = dirname(fileURLToPath(import.meta.url));
const storeUrl = pathToFileURL(join(here, "..", "src", "store", "runStore.js")).href;
const runsUrl = pathToFileURL(join(here, "..", "src", "cli", "commands", "runs.js")).href;

const tmpDb = () => join(mkdtempSync(join(tmpdir(), "gcx-store-")), "sub", "runs.sqlite");

function spec(family: string, knobValue: number, seed: number, extra: Record<string, unknown> = {}): TrialSpec {
  const config = { data: "moons", lr: knobValue, steps: 100, ...extra };
  return { id: trialId(family, 1, config, seed), family, version: 1, knob: "lr", knobValue, seed, config };
}

/** A child node process running `code` as an ES module with RunStore imported; DB in its environment. */
function child(code: string, db: string): ChildProcess {
  const src = `import { RunStore } from ${JSON.stringify(storeUrl)};\n${code}`;
  return spawn(process.execPath, ["--input-type=module", "-e", src], {
    env: { ...process.env, DB: db },
    stdio: ["pipe", "pipe", "pipe"],
  });
}

function collect(p: ChildProcess): {
  out: () => string;
  err: () => string;
  exit: Promise<{ code: number | null; signal: string | null }>;
} {
  let out = "",
    err = "";
  p.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  p.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
  const exit = new Promise<{ code: number | null; signal: string | null }>((res) =>
    p.on("close", (code, signal) => res({ code, signal })),
  );
  return { out: () => out, err: () => err, exit };
}

/** Resolves once the child's stdout has at least `n` lines. */
function lines(p: ChildProcess, n: number): Promise<string[]> {
  return new Promise((res, rej) => {
    let buf = "";
    const onData = (d: Buffer) => {
      buf += d.toString();
      const ls = buf.split("\n").filter((l) => l.length > 0);
      if (buf.endsWith("\n") && ls.length >= n) {
        p.stdout!.off("data", onData);
        res(ls);
      }
    };
    p.stdout!.on("data", onData);
    p.on("close", (code) => rej(new Error(`child exited (${code}) after ${buf.split("\n").length - 1} lines`)));
  });
}

test("trialId is a stable 16-hex-digit hash, independent of key order, sensitive to config, seed, family, version", () => {
  const id = trialId("E5", 1, { lr: 0.1, data: "mnist", nested: { b: 2, a: [1, 2] } }, 3);
  assert.match(id, /^[0-9a-f]{16}$/);
  assert.equal(trialId("E5", 1, { nested: { a: [1, 2], b: 2 }, data: "mnist", lr: 0.1 }, 3), id);
  assert.notEqual(trialId("E5", 1, { lr: 0.2, data: "mnist", nested: { b: 2, a: [1, 2] } }, 3), id);
  assert.notEqual(trialId("E5", 1, { lr: 0.1, data: "mnist", nested: { b: 2, a: [2, 1] } }, 3), id);
  assert.notEqual(trialId("E5", 1, { lr: 0.1, data: "mnist", nested: { b: 2, a: [1, 2] } }, 4), id);
  assert.notEqual(trialId("E6", 1, { lr: 0.1, data: "mnist", nested: { b: 2, a: [1, 2] } }, 3), id);
  assert.notEqual(trialId("E5", 2, { lr: 0.1, data: "mnist", nested: { b: 2, a: [1, 2] } }, 3), id);
  // Stable across processes and releases: sha256('{"config":{"a":1},"family":"E1","seed":0,"version":1}')[0:16].
  assert.equal(trialId("E1", 1, { a: 1 }, 0), "77e98bd8ec75bbe4");
});

test("ensureTrials is idempotent and leaves existing rows untouched", () => {
  const db = tmpDb();
  const store = RunStore.open(db);
  assert.ok(existsSync(db), "open creates the file and its parent directories");
  const specs = [spec("E5", 0.1, 0), spec("E5", 0.01, 1), spec("E5", 0.01, 0), spec("E2", 1, 0)];
  store.ensureTrials(specs);
  assert.ok(store.claim(specs[0].id));
  store.finish(specs[0].id, { gc_train: 2 }, [{ step: 0 }], 1);
  store.ensureTrials([...specs, spec("E5", 0.5, 0)]);
  store.ensureTrials([...specs, spec("E5", 0.5, 0)]);
  assert.equal(store.list().length, 5);
  assert.deepEqual(store.counts(), { pending: 4, running: 0, done: 1, failed: 0 });
  assert.deepEqual(store.counts("E5"), { pending: 3, running: 0, done: 1, failed: 0 });
  assert.equal(store.get(specs[0].id)!.status, "done");
  assert.deepEqual(store.get(specs[0].id)!.summary, { gc_train: 2 });
  // Ordered by family, knob value, seed.
  assert.deepEqual(
    store.list().map((t) => [t.family, t.knobValue, t.seed]),
    [
      ["E2", 1, 0],
      ["E5", 0.01, 0],
      ["E5", 0.01, 1],
      ["E5", 0.1, 0],
      ["E5", 0.5, 0],
    ],
  );
  assert.deepEqual(store.list({ family: "E5", status: "pending" }).length, 3);
  assert.deepEqual(store.get(specs[1].id)!.config, specs[1].config);
  assert.equal(store.get("nope"), undefined);
  store.close();
  // Reopening keeps everything.
  const again = RunStore.open(db);
  assert.equal(again.list().length, 5);
  again.close();
});

test("claim / finish / fail transitions, and metrics come back in step order", () => {
  const store = RunStore.open(tmpDb());
  const [a, b] = [spec("E1", 1, 0), spec("E1", 2, 0)];
  store.ensureTrials([a, b]);
  assert.equal(store.get(a.id)!.status, "pending");
  assert.equal(store.claim(a.id), true);
  const running = store.get(a.id)!;
  assert.equal(running.status, "running");
  assert.ok(running.startedAt);
  assert.equal(store.claim(a.id), false, "running under a live claim (this process)");
  const metrics = [
    { step: 200, gc_train: 3, spectral_norms: [1, 2] },
    { step: 0, gc_train: 1 },
    { step: 100, gc_train: 2 },
  ];
  store.finish(a.id, { gc_train: 3, test_acc: 0.9 }, metrics, 12.5);
  const done = store.get(a.id)!;
  assert.equal(done.status, "done");
  assert.equal(done.seconds, 12.5);
  assert.ok(done.finishedAt);
  assert.deepEqual(done.summary, { gc_train: 3, test_acc: 0.9 });
  assert.deepEqual(
    store.metrics(a.id).map((m) => m.step),
    [0, 100, 200],
  );
  assert.deepEqual(store.metrics(a.id)[2], { step: 200, gc_train: 3, spectral_norms: [1, 2] });
  assert.equal(store.claim(a.id), false, "done is never claimable");

  assert.equal(store.claim(b.id), true);
  store.fail(b.id, "NaN loss at step 7");
  assert.equal(store.get(b.id)!.status, "failed");
  assert.equal(store.get(b.id)!.error, "NaN loss at step 7");
  assert.deepEqual(store.counts(), { pending: 0, running: 0, done: 1, failed: 1 });
  assert.equal(store.claim(b.id), true, "a failed trial may be retried");
  assert.equal(store.get(b.id)!.error, null);
  store.finish(b.id, {}, [], 1);
  assert.deepEqual(store.counts(), { pending: 0, running: 0, done: 2, failed: 0 });

  assert.throws(() => store.finish(a.id, {}, [{ step: 1 }, { step: 1 }], 1), /duplicate/);
  assert.throws(() => store.finish(a.id, {}, [{ gc: 1 }], 1), /step/);
  assert.throws(() => store.claim("unknown"), /unknown trial/);
  assert.deepEqual(
    store.metrics(a.id).map((m) => m.step),
    [0, 100, 200],
    "a rejected finish changes nothing",
  );
  store.close();
});

test("opening a file that is not a SQLite database is a UserError", () => {
  const file = join(mkdtempSync(join(tmpdir(), "gcx-store-")), "notes.sqlite");
  writeFileSync(file, "this is not a database, just some text that is long enough to have a header ".repeat(20));
  assert.throws(
    () => RunStore.open(file),
    (e: unknown) => e instanceof UserError && e.message.includes("not a SQLite database"),
  );
  const other = join(dirname(file), "other.sqlite");
  const raw = new Database(other);
  raw.exec("CREATE TABLE trials (x INTEGER)");
  raw.close();
  assert.throws(
    () => RunStore.open(other),
    (e: unknown) => e instanceof UserError && e.message.includes("not a gcx run store"),
  );
});

test("a process killed while running a trial loses no finished trial, and its trial becomes claimable again", async () => {
  const db = tmpDb();
  const [a, b] = [spec("E3", 1, 0), spec("E3", 2, 0)];
  const store = RunStore.open(db);
  store.ensureTrials([a, b]);
  const p = child(
    `const s = RunStore.open(process.env.DB);
     if (!s.claim(${JSON.stringify(a.id)})) throw new Error("claim a");
     s.finish(${JSON.stringify(a.id)}, { gc_train: 1.5 }, [{ step: 10, x: 2 }, { step: 0, x: 1 }], 0.25);
     if (!s.claim(${JSON.stringify(b.id)})) throw new Error("claim b");
     process.stdout.write("ready\\n");
     setInterval(() => {}, 1000);`,
    db,
  );
  const c = collect(p);
  try {
    await lines(p, 1).catch((e: Error) => assert.fail(`${e.message}: ${c.err()}`));
    assert.equal(store.get(b.id)!.status, "running");
    assert.equal(store.claim(b.id), false, "the child is alive: its claim holds");
  } finally {
    p.kill("SIGKILL");
    store.close();
  }
  // Waiting for the exit also reaps the child: a zombie would still answer kill(pid, 0).
  assert.equal((await c.exit).signal, "SIGKILL");

  const again = RunStore.open(db);
  assert.equal(again.get(a.id)!.status, "done");
  assert.deepEqual(again.get(a.id)!.summary, { gc_train: 1.5 });
  assert.deepEqual(again.metrics(a.id), [
    { step: 0, x: 1 },
    { step: 10, x: 2 },
  ]);
  assert.equal(again.get(b.id)!.status, "running");
  assert.equal(again.claim(b.id), true, "the killed process's claim is stale");
  assert.equal(again.claim(b.id), false);
  again.close();
});

test("SIGKILL at random moments of finish loops: every reported trial is done with all its metrics, none half-written", async () => {
  const db = tmpDb();
  const specs = Array.from({ length: 400 }, (_, i) => spec("K", i, 0));
  const store = RunStore.open(db);
  store.ensureTrials(specs);
  store.close();
  const reported: string[] = [];
  for (let round = 0; round < 3; round++) {
    // Each round skips what is done and reclaims the trial the previous round was killed in.
    const p = child(
      `const s = RunStore.open(process.env.DB);
       const ids = ${JSON.stringify(specs.map((t) => t.id))};
       const big = "x".repeat(2000);
       for (const id of ids) {
         if (!s.claim(id)) continue;
         const m = Array.from({ length: 30 }, (_, step) => ({ step, gc_train: step / 7, pad: big }));
         s.finish(id, { gc_train: 1 }, m, 0.1);
         process.stdout.write(id + "\\n");
       }
       process.stdout.write("all\\n");`,
      db,
    );
    const c = collect(p);
    try {
      await lines(p, 10).catch((e: Error) => assert.fail(`${e.message}: ${c.err()}`));
      await new Promise((res) => setTimeout(res, Math.random() * 30));
    } finally {
      p.kill("SIGKILL");
    }
    const { signal } = await c.exit;
    assert.equal(signal, "SIGKILL", "the child was still running when killed");
    const mine = c
      .out()
      .split("\n")
      .filter((l) => /^[0-9a-f]{16}$/.test(l));
    assert.ok(mine.length >= 10);
    assert.ok(
      mine.every((id) => !reported.includes(id)),
      "a done trial is never run twice",
    );
    reported.push(...mine);

    const raw = new Database(db, { readonly: true });
    assert.equal(raw.pragma("integrity_check", { simple: true }), "ok");
    raw.close();
    const again = RunStore.open(db);
    for (const id of reported) {
      assert.equal(again.get(id)!.status, "done", id);
      assert.equal(again.metrics(id).length, 30, id);
    }
    for (const t of again.list()) {
      const n = again.metrics(t.id).length;
      if (t.status === "done") assert.equal(n, 30, `done trial ${t.id} has all its metrics`);
      else assert.equal(n, 0, `unfinished trial ${t.id} has no metrics`);
    }
    assert.ok(again.counts().running <= 1);
    assert.ok(again.counts().done >= reported.length);
    if (round === 2)
      for (const t of again.list({ status: "running" })) assert.equal(again.claim(t.id), true, "stale claim");
    again.close();
  }
});

test("two processes writing the same (new) store at once finish all 100 trials without SQLITE_BUSY", async () => {
  const db = tmpDb();
  const specs = Array.from({ length: 100 }, (_, i) => spec("C", i % 10, Math.floor(i / 10)));
  const ids = specs.map((t) => t.id);
  const worker = (mine: string[]) =>
    child(
      `const specs = ${JSON.stringify(specs)};
       const mine = ${JSON.stringify(mine)};
       process.stdout.write("ready\\n");
       await new Promise((res) => process.stdin.once("data", res));
       const t0 = Date.now();
       try {
         const s = RunStore.open(process.env.DB);
         s.ensureTrials(specs);
         for (const id of mine) {
           if (!s.claim(id)) throw new Error("could not claim " + id);
           s.finish(id, { gc_train: 1, pid: process.pid }, Array.from({ length: 5 }, (_, step) => ({ step, v: step })), 0.01);
         }
         process.stdout.write(JSON.stringify({ t0, t1: Date.now() }) + "\\n");
         s.close();
         process.exit(0);
       } catch (e) {
         process.stderr.write("ERROR " + e.code + " " + e.message + "\\n");
         process.exit(1);
       }`,
      db,
    );
  const ps = [worker(ids.filter((_, i) => i % 2 === 0)), worker(ids.filter((_, i) => i % 2 === 1))];
  const cs = ps.map(collect);
  try {
    await Promise.all(ps.map((p, i) => lines(p, 1).catch((e) => assert.fail(`${e.message}: ${cs[i].err()}`))));
  } finally {
    for (const p of ps) p.stdin!.end("go\n");
  }
  const exits = await Promise.all(cs.map((c) => c.exit));
  for (let i = 0; i < 2; i++) {
    assert.doesNotMatch(cs[i].err(), /SQLITE_BUSY|locked/i);
    assert.equal(exits[i].code, 0, cs[i].err());
  }
  const [r0, r1] = cs.map((c) => JSON.parse(c.out().split("\n")[1]) as { t0: number; t1: number });
  assert.ok(r0.t0 <= r1.t1 && r1.t0 <= r0.t1, `the two processes raced: ${JSON.stringify([r0, r1])}`);
  const store = RunStore.open(db);
  assert.deepEqual(store.counts(), { pending: 0, running: 0, done: 100, failed: 0 });
  for (const id of ids)
    assert.deepEqual(
      store.metrics(id).map((m) => m.step),
      [0, 1, 2, 3, 4],
    );
  assert.equal(new Set(store.list().map((t) => t.summary!.pid)).size, 2, "both processes wrote");
  store.close();
});

// ---------------------------------------------------------------------------------------------------------------
// gcx runs

/** Runs `runs <args>` in a child process the way main.ts would (UserError → one line, exit 2). */
function runs(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const src = `import { runsCommand } from ${JSON.stringify(runsUrl)};
    try { await runsCommand().exitOverride().parseAsync(["node", "runs", ...JSON.parse(process.env.ARGS)]); }
    catch (e) {
      if (e.name === "UserError") { process.stderr.write("gcx: error: " + e.message + "\\n"); process.exit(2); }
      if (e.code && String(e.code).startsWith("commander.")) process.exit(e.exitCode === 0 ? 0 : 2);
      throw e;
    }`;
  return spawnSync(process.execPath, ["--input-type=module", "-e", src], {
    env: { ...process.env, ARGS: JSON.stringify(args) },
    encoding: "utf8",
  });
}

function exampleStore(): { db: string; a: TrialSpec; b: TrialSpec; c: TrialSpec } {
  const db = tmpDb();
  const store = RunStore.open(db);
  const [a, b, c] = [spec("E5", 0.1, 0), spec("E5", 0.01, 0), spec("E2", 1, 1)];
  store.ensureTrials([a, b, c]);
  store.claim(a.id);
  store.finish(
    a.id,
    { gc_train: 0.123456789, test_acc: 0.97, note: 'lr 0.1, "warm" start', spectral_norms: [1.5, 2] },
    [
      { step: 100, gc_train: 0.2, spectral_norms: [1, 2] },
      { step: 0, gc_train: 0.5, tag: "a,b" },
    ],
    42.25,
  );
  store.claim(c.id);
  store.fail(c.id, "diverged");
  store.close();
  return { db, a, b, c };
}

test("gcx runs list: a table of trials with knob=value, status, seconds and final gc_train; filters", () => {
  const { db, a, b, c } = exampleStore();
  const r = runs("list", "--db", db);
  assert.equal(r.status, 0, r.stderr);
  const out = r.stdout.split("\n");
  assert.match(out[0], /^id\s+family\s+knob\s+seed\s+status\s+seconds\s+gc_train/);
  const rowA = out.find((l) => l.startsWith(a.id))!;
  assert.match(rowA, /E5 v1\s+lr=0\.1\s+0\s+done\s+42\.3\s+0\.12346\s+-\s+-\s+0\.97$/);
  assert.match(
    out.find((l) => l.startsWith(b.id))!,
    /lr=0\.01\s+0\s+pending\s+-/,
  );
  assert.match(
    out.find((l) => l.startsWith(c.id))!,
    /failed/,
  );
  assert.ok(out.findIndex((l) => l.startsWith(c.id)) < out.findIndex((l) => l.startsWith(b.id)), "E2 before E5");
  assert.ok(out.findIndex((l) => l.startsWith(b.id)) < out.findIndex((l) => l.startsWith(a.id)), "lr 0.01 before 0.1");
  assert.match(r.stdout, /3 trials: 1 pending, 1 done, 1 failed/);

  const done = runs("list", "--db", db, "--family", "E5", "--status", "done");
  assert.equal(done.status, 0, done.stderr);
  assert.ok(done.stdout.includes(a.id) && !done.stdout.includes(b.id) && !done.stdout.includes(c.id));
  assert.equal(runs("list", "--db", db, "--status", "bogus").status, 2);
});

test("gcx runs show: config, status, summary and the metrics table; unique prefixes work", () => {
  const { db, a, c } = exampleStore();
  const r = runs("show", a.id.slice(0, 6), "--db", db);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`trial:\\s+${a.id}`));
  assert.match(r.stdout, /status:\s+done \(42\.3 s\)/);
  assert.match(r.stdout, /"data": "moons"/);
  assert.match(r.stdout, /test_acc\s+0\.97/);
  assert.match(r.stdout, /metrics \(2 records\):\nstep\s+gc_train\s+tag\s+spectral_norms\n/);
  const metricLines = r.stdout.split("metrics (2 records):\n")[1].split("\n");
  assert.match(metricLines[2], /^0\s+0\.5\s+a,b\s+-$/);
  assert.match(metricLines[3], /^100\s+0\.2\s+-\s+\[1,2\]$/);
  assert.match(runs("show", c.id, "--db", db).stdout, /error:\s+diverged/);
  const missing = runs("show", "ffffffffffffffff", "--db", db);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /no trial ffffffffffffffff/);
});

test("gcx runs export: CSV properly quoted with summary fields, JSONL, --metrics, --out", () => {
  const { db, a, b, c } = exampleStore();
  const r = runs("export", "--format", "csv", "--db", db);
  assert.equal(r.status, 0, r.stderr);
  const rows = parseCsv(r.stdout);
  assert.deepEqual(rows[0], [
    "id",
    "family",
    "version",
    "knob",
    "knob_value",
    "seed",
    "status",
    "seconds",
    "gc_train",
    "test_acc",
    "note",
    "spectral_norms",
  ]);
  assert.equal(rows.length, 4);
  assert.deepEqual(rows.map((x) => x[0]).slice(1), [c.id, b.id, a.id]);
  const rowA = rows.find((x) => x[0] === a.id)!;
  assert.deepEqual(rowA, [
    a.id,
    "E5",
    "1",
    "lr",
    "0.1",
    "0",
    "done",
    "42.25",
    "0.123456789",
    "0.97",
    'lr 0.1, "warm" start',
    "[1.5,2]",
  ]);
  assert.ok(r.stdout.includes('"lr 0.1, ""warm"" start"'), "quotes doubled inside a quoted cell");
  assert.ok(r.stdout.includes('"[1.5,2]"'));
  assert.deepEqual(
    rows.find((x) => x[0] === b.id),
    [b.id, "E5", "1", "lr", "0.01", "0", "pending", "", "", "", "", ""],
  );

  const j = runs("export", "--format", "jsonl", "--family", "E5", "--db", db);
  assert.equal(j.status, 0, j.stderr);
  const recs = j.stdout
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.equal(recs.length, 2);
  assert.deepEqual(recs[1], {
    id: a.id,
    family: "E5",
    version: 1,
    knob: "lr",
    knob_value: 0.1,
    seed: 0,
    status: "done",
    seconds: 42.25,
    gc_train: 0.123456789,
    test_acc: 0.97,
    note: 'lr 0.1, "warm" start',
    spectral_norms: [1.5, 2],
  });
  assert.equal(recs[0].status, "pending");

  const m = runs("export", "--format", "csv", "--metrics", "--db", db);
  assert.equal(m.status, 0, m.stderr);
  assert.deepEqual(parseCsv(m.stdout), [
    ["id", "family", "version", "knob", "knob_value", "seed", "step", "gc_train", "tag", "spectral_norms"],
    [a.id, "E5", "1", "lr", "0.1", "0", "0", "0.5", "a,b", ""],
    [a.id, "E5", "1", "lr", "0.1", "0", "100", "0.2", "", "[1,2]"],
  ]);
  const mj = runs("export", "--format", "jsonl", "--metrics", "--db", db);
  assert.deepEqual(
    mj.stdout
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l))[1].spectral_norms,
    [1, 2],
  );

  const outFile = join(dirname(db), "exports", "trials.csv");
  const o = runs("export", "--db", db, "--out", outFile);
  assert.equal(o.status, 0, o.stderr);
  assert.equal(o.stdout, "");
  assert.equal(readFileSync(outFile, "utf8"), r.stdout);
  assert.match(o.stderr, /wrote 3 rows/);
});

test("gcx runs: a missing --db file is a one-line user error", () => {
  const missing = join(mkdtempSync(join(tmpdir(), "gcx-store-")), "nope.sqlite");
  for (const args of [["list"], ["show", "abc"], ["export"]]) {
    const r = runs(...args, "--db", missing);
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, /does not exist/);
    assert.equal(existsSync(missing), false, "not created");
  }
});

test("fail() stores a one-line message: newlines joined, stack frames dropped", () => {
  const store = RunStore.open(tmpDb());
  const a = spec("E1", 1, 0);
  store.ensureTrials([a]);
  store.claim(a.id);
  store.fail(
    a.id,
    "Error: shape mismatch\n  expected 3\r\n    at forward (/x/network.js:10:5)\n    at train (/x/trainer.js:3:1)\n",
  );
  assert.equal(store.get(a.id)!.error, "Error: shape mismatch; expected 3");
  store.claim(a.id);
  store.fail(a.id, "");
  assert.equal(store.get(a.id)!.error, "unknown error");
  assert.equal(oneLine("x".repeat(5000)).length, 2000);
  store.close();
});

test("storeError maps SQLite's environment errors to one-line UserErrors naming the store; bugs pass through", () => {
  const err = (code: string, message: string) => storeError("runs/x.sqlite", new Database.SqliteError(message, code));
  const cases: [string, string, RegExp][] = [
    [
      "SQLITE_CORRUPT",
      "database disk image is malformed",
      /^run store runs\/x\.sqlite is corrupt \(database disk image is malformed, SQLITE_CORRUPT\); restore it from a backup or move it away and rerun$/,
    ],
    ["SQLITE_CORRUPT_INDEX", "database disk image is malformed", /is corrupt/],
    ["SQLITE_NOTADB", "file is not a database", /^run store runs\/x\.sqlite is not a SQLite database or is corrupt/],
    [
      "SQLITE_FULL",
      "database or disk is full",
      /^run store runs\/x\.sqlite: the disk is full \(database or disk is full, SQLITE_FULL\); free some space and rerun$/,
    ],
    [
      "SQLITE_IOERR_WRITE",
      "disk I/O error",
      /^run store runs\/x\.sqlite: input\/output error \(disk I\/O error, SQLITE_IOERR_WRITE\)/,
    ],
    [
      "SQLITE_BUSY",
      "database is locked",
      /^run store runs\/x\.sqlite is locked by another process \(waited 10 s: database is locked, SQLITE_BUSY\); rerun once it has finished$/,
    ],
    ["SQLITE_BUSY_SNAPSHOT", "database is locked", /is locked by another process/],
    ["SQLITE_READONLY", "attempt to write a readonly database", /^run store runs\/x\.sqlite is read-only: /],
    ["SQLITE_CANTOPEN", "unable to open database file", /^cannot use run store runs\/x\.sqlite: /],
  ];
  for (const [code, message, pattern] of cases) {
    const e = err(code, message);
    assert.ok(e instanceof UserError, code);
    assert.match(e.message, pattern, code);
    assert.ok(!e.message.includes("\n"), code);
  }
  const bug = new Database.SqliteError("CHECK constraint failed: status", "SQLITE_CONSTRAINT_CHECK");
  assert.equal(storeError("x", bug), bug, "a constraint violation is a bug, not the user's problem");
  const plain = new TypeError("boom");
  assert.equal(storeError("x", plain), plain);
});

test("openReadOnly reads without writing, refuses writes in one line, and never creates a store", () => {
  const db = tmpDb();
  const store = RunStore.open(db);
  const a = spec("E1", 1, 0);
  store.ensureTrials([a]);
  store.close();
  const before = readFileSync(db);
  const ro = RunStore.openReadOnly(db);
  assert.equal(ro.readonly, true);
  assert.equal(ro.get(a.id)!.status, "pending");
  assert.throws(
    () => ro.claim(a.id),
    (e: unknown) => e instanceof UserError && e.message.includes("is read-only"),
  );
  ro.close();
  assert.deepEqual(readFileSync(db), before);
  const missing = join(dirname(db), "missing.sqlite");
  assert.throws(
    () => RunStore.openReadOnly(missing),
    (e: unknown) => e instanceof UserError && e.message.includes("does not exist"),
  );
  assert.equal(existsSync(missing), false);
});
