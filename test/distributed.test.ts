/**
 * Distributed sweeps on a throw-away PostgreSQL cluster (test/pgCluster.ts): worker processes killed with SIGKILL
 * mid-trial, the server stopped and restarted mid-sweep, two enqueuers at once, bounded retries, and a migrate round
 * trip. Results are compared value for value with a single-process SQLite run of the same tiny family. Skipped,
 * saying why, where PostgreSQL is not installed.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { families, type FamilyDef } from "../src/experiments/families.js";
import { expandTrials, specOf, type TrialPlan } from "../src/experiments/trials.js";
import { runSweep } from "../src/experiments/sweep.js";
import { TrialQueue, QUEUE_NAME } from "../src/experiments/queue.js";
import { PostgresStore } from "../src/store/postgres.js";
import { SqliteStore } from "../src/store/sqlite.js";
import { redactStore, scrubSecret } from "../src/store/store.js";
import { PG_PASSWORD, PgCluster, pgUnavailable } from "./pgCluster.js";
import { cliEnv } from "./cliRun.js";

const main = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "cli", "main.js");
const unavailable = pgUnavailable();
if (unavailable) process.stderr.write(`distributed.test: ${unavailable}\n`);
const skip = unavailable ?? false;

/** Long enough (1200 steps, a checkpoint every 100) that a worker can be killed between checkpoints. */
const tiny: FamilyDef = {
  id: "TQ",
  version: 1,
  title: "tiny queued L2 sweep",
  description: "test family",
  kind: "train",
  knob: { key: "l2", label: "λ", values: [0, 0.01, 0.03] },
  base: {
    data: "moons",
    model: "mlp:2-16-16-2",
    size: 200,
    evalSize: 200,
    gcSize: 100,
    steps: 1200,
    logEvery: 300,
    checkpointEvery: 100,
    lr: 0.1,
    batchSize: 32,
    measures: ["norms", "output-grad"],
  },
  seeds: [0, 1],
  claims: [],
};
const plans = expandTrials(tiny);

let cluster: PgCluster | undefined;
/** id → the single-process SQLite run's summary and metric records. */
let reference: Map<string, { summary: unknown; metrics: unknown }>;
let referenceDb: string;

before(async () => {
  if (unavailable) return;
  cluster = await PgCluster.start();
  const dir = mkdtempSync(join(tmpdir(), "gcx-ref-"));
  referenceDb = join(dir, "ref.sqlite");
  const store = SqliteStore.open(referenceDb);
  await runSweep(store, plans, { jobs: 2, runsDir: join(dir, "trials") });
  reference = new Map();
  for (const r of await store.list()) reference.set(r.id, { summary: r.summary, metrics: await store.metrics(r.id) });
  await store.close();
  assert.equal(reference.size, plans.length);
});

after(() => cluster?.destroy());

interface Proc {
  child: ChildProcess;
  out: string;
  exited: Promise<number | null>;
}

function gcx(args: string[]): Proc {
  // The test process's kernel variant (cliEnv): trials planned here carry it, and workers refuse other kernels.
  const child = spawn(process.execPath, [main, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: cliEnv({ ...process.env, GCX_DEBUG: "" }),
  });
  const p: Proc = { child, out: "", exited: new Promise((res) => child.on("close", (code) => res(code))) };
  child.stdout.setEncoding("utf8").on("data", (d: string) => (p.out += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (p.out += d));
  return p;
}

async function finished(p: Proc, seconds: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>(
    (_, rej) =>
      (timer = setTimeout(() => rej(new Error(`timed out after ${seconds} s; output:\n${p.out}`)), seconds * 1000)),
  );
  try {
    return await Promise.race([p.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, seconds: number, cond: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

async function enqueue(
  url: string,
  items: TrialPlan[],
  opts: { leaseSeconds: number; retries: number },
): Promise<void> {
  const store = await PostgresStore.open(url);
  const q = await TrialQueue.open(store, { ...opts, retryDelaySeconds: 0 });
  await q.enqueue(items);
  await q.close();
  await store.close();
}

function workerArgs(url: string, runsDir: string, extra: string[] = []): string[] {
  return [
    "worker",
    "--store",
    url,
    "--until-done",
    "--runs-dir",
    runsDir,
    "--poll",
    "1",
    "--heartbeat",
    "1",
    "--maintenance",
    "1",
    ...extra,
  ];
}

/** Every trial done, each recorded by exactly one "done" line, and every value equal to the reference run's. */
async function checkAgainstReference(url: string, logs: string[]): Promise<void> {
  const store = await PostgresStore.open(url, { readOnly: true });
  try {
    assert.deepEqual(await store.counts(), { pending: 0, running: 0, done: plans.length, failed: 0 });
    for (const p of plans) {
      const row = (await store.get(p.id))!;
      const ref = reference.get(p.id)!;
      assert.deepEqual(row.summary, ref.summary, `summary of ${p.id}`);
      assert.deepEqual(await store.metrics(p.id), ref.metrics, `metrics of ${p.id}`);
      const doneLines = logs
        .join("\n")
        .split("\n")
        .filter((l) => l.startsWith(`done ${p.id} `));
      assert.equal(doneLines.length, 1, `trial ${p.id} finished exactly once:\n${logs.join("\n---\n")}`);
    }
  } finally {
    await store.close();
  }
}

test("the password of a store URL is never shown", () => {
  const url = "postgres://alice:pa%40ss@db.example:5432/gcx?sslpassword=xyz";
  const shown = redactStore(url);
  assert.equal(shown, "postgres://alice:***@db.example:5432/gcx?sslpassword=***");
  assert.equal(
    scrubSecret(`could not connect to ${url} as alice with pa@ss`, url),
    `could not connect to ${shown} as alice with ***`,
  );
  assert.equal(redactStore("runs/gcx.sqlite"), "runs/gcx.sqlite");
});

test("runs status on a SQLite store: counts, the running trial with its process, and remaining × mean ÷ running as ETA", async () => {
  const dir = mkdtempSync(join(tmpdir(), "gcx-st-"));
  const db = join(dir, "s.sqlite");
  const store = SqliteStore.open(db);
  await store.ensureTrials(plans.map(specOf));
  for (const [i, p] of plans.slice(0, 3).entries()) {
    await store.claim(p.id);
    await store.finish(p.id, { step: 0 }, [{ step: 0 }], 10 * (i + 1)); // 10, 20, 30 s: mean 20 s
  }
  assert.ok(await store.claim(plans[3].id));
  await store.close();
  const st = gcx(["runs", "status", "--db", db]);
  assert.equal(await finished(st, 60), 0, st.out);
  assert.match(st.out, /^queued 2 {2}running 1 {2}done 3 {2}failed 0 {2}\(6 trials\)$/m);
  assert.match(
    st.out,
    new RegExp(`^  ${plans[3].id} +TQ l2=0.01 seed 1 +\\S+:${process.pid} +started \\d+ s ago$`, "m"),
  );
  // 3 to go × 20 s ÷ 1 running
  assert.match(st.out, /^ETA: 60 s \(3 to go × mean 20 s per trial ÷ 1 running at once\)$/m);
});

test(
  "three workers, one killed with SIGKILL mid-trial: every trial done exactly once, values equal a single-process SQLite run",
  { skip, timeout: 600_000 },
  async () => {
    const url = await cluster!.createDb("killtest");
    const runsDir = mkdtempSync(join(tmpdir(), "gcx-q-"));
    await enqueue(url, plans, { leaseSeconds: 45, retries: 2 });
    const workers = [0, 1, 2].map(() => gcx(workerArgs(url, runsDir)));
    const victim = workers[0];
    const store = await PostgresStore.open(url, { readOnly: true });
    let victimTrial = "";
    try {
      // Kill worker 0 once it holds a trial that has written a checkpoint (so the retry has something to resume).
      await waitFor("worker 0 to be mid-trial", 240, async () => {
        const mine = (await store.running()).find((r) => r.worker?.endsWith(`:${victim.child.pid}`));
        if (mine && existsSync(join(runsDir, mine.id, "latest.json")) && !(await store.get(mine.id))!.summary)
          victimTrial = mine.id;
        return victimTrial !== "";
      });
      victim.child.kill("SIGKILL");
      // Until its lease expires the lost trial shows as running under the dead worker, its heartbeat ageing.
      const status = gcx(["runs", "status", "--store", url]);
      assert.equal(await finished(status, 60), 0, status.out);
      assert.match(status.out, new RegExp(`^  ${victimTrial} .*:${victim.child.pid}  heartbeat \\d+ s ago$`, "m"));
      assert.match(status.out, /^ETA: /m);
      assert.ok(!status.out.includes(PG_PASSWORD), status.out);
      for (const w of workers.slice(1)) assert.equal(await finished(w, 400), 0, w.out);
      await victim.exited;
    } finally {
      for (const w of workers) w.child.kill("SIGKILL");
      await store.close();
    }
    const survivors = workers.slice(1).map((w) => w.out);
    assert.match(
      survivors.join("\n"),
      new RegExp(`start ${victimTrial} .*attempt 2, resuming from its checkpoint`),
      "the lost trial was retried from its checkpoint",
    );
    await checkAgainstReference(
      url,
      workers.map((w) => w.out),
    );
    for (const w of workers) assert.ok(!w.out.includes(PG_PASSWORD), "no password in the worker's output");
  },
);

test(
  "the server stopped and restarted mid-sweep: workers wait, reconnect and finish; nothing lost or duplicated",
  { skip, timeout: 600_000 },
  async () => {
    const url = await cluster!.createDb("restarttest");
    const runsDir = mkdtempSync(join(tmpdir(), "gcx-q-"));
    await enqueue(url, plans, { leaseSeconds: 120, retries: 2 });
    const workers = [0, 1].map(() => gcx(workerArgs(url, runsDir)));
    try {
      await waitFor("a finished trial", 240, () => /^done /m.test(workers.map((w) => w.out).join("\n")));
      cluster!.stopServer();
      await sleep(4000);
      await cluster!.startServer();
      for (const w of workers) assert.equal(await finished(w, 400), 0, w.out);
    } finally {
      for (const w of workers) w.child.kill("SIGKILL");
    }
    const logs = workers.map((w) => w.out).join("\n");
    assert.match(logs, /unreachable/, "a worker noticed the outage");
    assert.match(logs, /reachable again/, "and reconnected");
    assert.ok(!logs.includes(PG_PASSWORD), "no password in the output");
    await checkAgainstReference(
      url,
      workers.map((w) => w.out),
    );
  },
);

test(
  "two experiment runs enqueueing the same family at once queue each trial once",
  { skip, timeout: 300_000 },
  async () => {
    const url = await cluster!.createDb("enqueuetest");
    const dir = mkdtempSync(join(tmpdir(), "gcx-q-"));
    const run = (i: number) =>
      gcx([
        "experiment",
        "run",
        "E2",
        "--store",
        url,
        "--workers",
        "0",
        "--runs-dir",
        join(dir, "t"),
        "--out",
        join(dir, `r${i}`),
        "--no-progress",
      ]);
    const both = [run(0), run(1)];
    for (const p of both) {
      assert.equal(await finished(p, 200), 0, p.out);
      assert.match(p.out, /not finished yet; run gcx worker --store postgres:\/\/gcxtest:\*\*\*@/);
      assert.ok(!p.out.includes(PG_PASSWORD), p.out);
    }
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      const trials = await c.query(
        "SELECT COUNT(*)::int AS n, COUNT(DISTINCT job_id)::int AS jobs FROM gcx.trials WHERE family = 'E2'",
      );
      const n = expandTrials(families("quick").find((f) => f.id === "E2")!).length; // 2 datasets × knobs × seeds
      assert.deepEqual(trials.rows[0], { n, jobs: n });
      const jobs = await c.query(
        "SELECT COUNT(*)::int AS n, COUNT(DISTINCT singleton_key)::int AS keys FROM pgboss.job WHERE name = $1",
        [QUEUE_NAME],
      );
      assert.deepEqual(jobs.rows[0], { n, keys: n }, "one job per trial");
    } finally {
      await c.end();
    }
  },
);

test(
  "a trial that fails every time is retried a bounded number of times, then recorded as failed with its error",
  { skip, timeout: 300_000 },
  async () => {
    const url = await cluster!.createDb("retrytest");
    const runsDir = mkdtempSync(join(tmpdir(), "gcx-q-"));
    const [bad] = expandTrials({
      ...tiny,
      id: "TQbad",
      seeds: [0],
      knob: { ...tiny.knob, values: [0] },
      base: { ...tiny.base, model: "mlp:3-4-2" },
    });
    await enqueue(url, [bad], { leaseSeconds: 60, retries: 1 });
    const w = gcx(workerArgs(url, runsDir));
    assert.equal(await finished(w, 200), 0, w.out);
    assert.match(w.out, new RegExp(`retry ${bad.id} .*attempt 1`));
    assert.match(w.out, new RegExp(`FAILED ${bad.id} .*attempt 2`));
    const store = await PostgresStore.open(url, { readOnly: true });
    try {
      const row = (await store.get(bad.id))!;
      assert.equal(row.status, "failed");
      assert.ok(row.error && row.error.length > 0 && !row.error.includes("\n"), `stored error: ${row.error}`);
    } finally {
      await store.close();
    }
  },
);

test(
  "a trial whose worker is lost on its last attempt is recorded as failed, not left running",
  { skip, timeout: 300_000 },
  async () => {
    const url = await cluster!.createDb("losttest");
    const runsDir = mkdtempSync(join(tmpdir(), "gcx-q-"));
    const [long] = expandTrials({
      ...tiny,
      id: "TQlong",
      seeds: [0],
      knob: { ...tiny.knob, values: [0] },
      base: { ...tiny.base, steps: 50_000 },
    });
    await enqueue(url, [long], { leaseSeconds: 3, retries: 0 });
    const a = gcx(workerArgs(url, runsDir));
    const store = await PostgresStore.open(url, { readOnly: true });
    try {
      await waitFor("the trial to start", 120, async () => (await store.get(long.id))?.status === "running");
      a.child.kill("SIGKILL");
      await a.exited;
      const b = gcx(workerArgs(url, runsDir));
      assert.equal(await finished(b, 200), 0, b.out);
      assert.match(b.out, /recorded 1 trial lost on the last attempt as failed/);
      const row = (await store.get(long.id))!;
      assert.equal(row.status, "failed");
      assert.match(row.error ?? "", /^lost on its last attempt \(job failed by timeout in active state\)/);
    } finally {
      a.child.kill("SIGKILL");
      await store.close();
    }
  },
);

test(
  "store migrate: SQLite → Postgres → SQLite keeps every trial and metric record; runs and report read Postgres",
  { skip, timeout: 300_000 },
  async () => {
    const url = await cluster!.createDb("migratetest");
    const dir = mkdtempSync(join(tmpdir(), "gcx-m-"));
    const back = join(dir, "back.sqlite");
    for (const [from, to] of [
      [referenceDb, url],
      [url, back],
    ]) {
      const m = gcx(["store", "migrate", "--from", from, "--to", to]);
      assert.equal(await finished(m, 120), 0, m.out);
      assert.match(m.out, new RegExp(`copied ${plans.length} finished trials`));
      assert.ok(!m.out.includes(PG_PASSWORD), m.out);
    }
    const again = gcx(["store", "migrate", "--from", referenceDb, "--to", url]);
    assert.equal(await finished(again, 120), 0, again.out);
    assert.match(again.out, new RegExp(`copied 0 finished trials .*\\(${plans.length} already done there, kept\\)`));
    const exports: string[] = [];
    for (const s of [referenceDb, url, back]) {
      for (const extra of [[], ["--metrics"]]) {
        const e = gcx(["runs", "export", "--format", "jsonl", "--store", s, ...extra]);
        assert.equal(await finished(e, 120), 0, e.out);
        exports.push(e.out);
      }
    }
    assert.equal(exports[2], exports[0], "Postgres trials equal the SQLite original");
    assert.equal(exports[3], exports[1], "Postgres metric records equal the SQLite original");
    assert.equal(exports[4], exports[0], "and back in SQLite");
    assert.equal(exports[5], exports[1]);
    assert.equal(exports[1].trim().split("\n").length, plans.length * 5, "steps 0, 300, 600, 900, 1200 of each trial");
  },
);

test(
  "experiment run on a postgres store works on its own queue and reports; the numbers equal a SQLite run's",
  { skip, timeout: 600_000 },
  async () => {
    const url = await cluster!.createDb("inprocesstest");
    const dir = mkdtempSync(join(tmpdir(), "gcx-ip-"));
    const sqlite = join(dir, "ref.sqlite");
    const onPg = gcx([
      "experiment",
      "run",
      "E1s",
      "--store",
      url,
      "--jobs",
      "2",
      "--runs-dir",
      join(dir, "tp"),
      "--out",
      join(dir, "rp"),
      "--no-progress",
    ]);
    assert.equal(await finished(onPg, 500), 0, onPg.out);
    assert.match(onPg.out, /queued 15 trials/);
    assert.match(onPg.out, /E1s: holds/, "the claims table's sanity checks");
    assert.ok(existsSync(join(dir, "rp", "index.html")), "the report");
    assert.ok(!onPg.out.includes(PG_PASSWORD), onPg.out);
    const onSqlite = gcx([
      "experiment",
      "run",
      "E1s",
      "--db",
      sqlite,
      "--jobs",
      "2",
      "--runs-dir",
      join(dir, "ts"),
      "--out",
      join(dir, "rs"),
      "--no-progress",
    ]);
    assert.equal(await finished(onSqlite, 500), 0, onSqlite.out);
    const exported: string[] = [];
    for (const s of [url, sqlite]) {
      const e = gcx(["runs", "export", "--format", "jsonl", "--metrics", "--store", s]);
      assert.equal(await finished(e, 120), 0, e.out);
      exported.push(e.out);
    }
    assert.equal(exported[0].trim().split("\n").length, 15);
    assert.equal(exported[0], exported[1]);
  },
);
