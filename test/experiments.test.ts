import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { FamilyDef } from "../src/experiments/families.js";
import { expandTrials } from "../src/experiments/trials.js";
import { runSweep } from "../src/experiments/sweep.js";
import { buildReport, formatClaimsTable, type TrialData } from "../src/experiments/reportBuilder.js";
import { RunStore } from "../src/store/runStore.js";

const tiny: FamilyDef = {
  id: "T2",
  version: 1,
  title: "tiny L2 sweep",
  description: "test family",
  kind: "train",
  knob: { key: "l2", label: "λ", values: [0, 0.03] },
  base: { data: "moons", model: "mlp:2-16-16-2", size: 200, evalSize: 200, gcSize: 100, steps: 150, logEvery: 50, checkpointEvery: 50, lr: 0.1, batchSize: 32, measures: ["norms", "output-grad"] },
  seeds: [0, 1],
  claims: [{ id: "T2", claim: "L2 lowers GC", expected: "decreasing" }],
};

test("sweep runs every trial once on worker threads, skips finished ones on re-run, and the report reads them", async () => {
  const dir = mkdtempSync(join(tmpdir(), "gcx-sweep-"));
  const store = RunStore.open(join(dir, "db.sqlite"));
  const plans = expandTrials(tiny);
  const done: string[] = [];
  const r1 = await runSweep(store, plans, { jobs: 2, runsDir: join(dir, "trials"), onTrialDone: (p) => done.push(p.id) });
  assert.deepEqual(r1, { ran: 4, failed: 0 });
  assert.deepEqual([...done].sort(), plans.map((p) => p.id).sort());
  const r2 = await runSweep(store, plans, { jobs: 2, runsDir: join(dir, "trials") });
  assert.deepEqual(r2, { ran: 0, failed: 0 }, "finished trials are not redone");
  const rows = store.list({ family: "T2", status: "done" });
  assert.equal(rows.length, 4);
  for (const row of rows) assert.equal(store.metrics(row.id).length, 4, "steps 0, 50, 100, 150 logged");
  assert.ok(plans.every((p) => p.setup === "moons/mlp"));
  const data = new Map<string, TrialData[]>([["T2", rows.map((row) => ({ row, variant: "", setup: "moons/mlp", metrics: store.metrics(row.id) }))]]);
  const { doc, claims, sanity } = buildReport([tiny], data, "quick");
  assert.equal(claims[0].id, "T2");
  assert.equal(claims[0].dataset, "moons");
  assert.ok(["agrees", "disagrees", "inconclusive"].includes(claims[0].verdict));
  assert.ok(claims[0].effect && Number.isFinite(claims[0].effect.value), "effect size");
  assert.ok(claims[0].accuracy && Number.isFinite(claims[0].accuracy.baseline), "accuracy cost");
  assert.equal(claims[1].kind, "summary");
  assert.equal(claims[1].verdict, claims[0].verdict, "one counted row: the summary is that row's verdict");
  assert.ok(!claims.some((c) => c.id.startsWith("B ")), "bounds are sanity checks, not claims");
  assert.ok(sanity.some((c) => c.id.startsWith("B T1") && c.verdict === "agrees"), "bounds hold");
  assert.ok(sanity.some((c) => c.id.startsWith("B T2") && c.verdict === "agrees"), "certified T2 bound holds");
  assert.match(doc.intro, /ResNet-18 on CIFAR-10/);
  assert.match(formatClaimsTable(claims, sanity), /T2 .*moons\/mlp/);
  store.close();
});

test("a trial killed mid-way resumes from its checkpoint and finishes with the same result", async () => {
  const dir = mkdtempSync(join(tmpdir(), "gcx-sweep-"));
  const [plan] = expandTrials({ ...tiny, seeds: [5], knob: { ...tiny.knob, values: [0.01] } });
  const { runTrial } = await import("../src/experiments/runTrial.js");
  const { train } = await import("../src/training/trainer.js");
  const { parseTrainConfig } = await import("../src/training/config.js");
  const a = runTrial(plan, join(dir, "a"));
  train(parseTrainConfig(plan.config), join(dir, "b"), { stopAfter: 70 }); // "killed" after its step-50 checkpoint
  const b = runTrial(plan, join(dir, "b"));
  assert.deepEqual(b.metrics, a.metrics);
});

test("gcx experiment list prints every family; unknown ids are user errors", () => {
  const main = join(fileURLToPath(new URL(".", import.meta.url)), "..", "src", "cli", "main.js");
  const list = spawnSync(process.execPath, [main, "experiment", "list"], { encoding: "utf8" });
  assert.equal(list.status, 0);
  for (const id of ["E1", "E2", "E5", "E9", "E10"]) assert.match(list.stdout, new RegExp(`^${id} `, "m"));
  const dir = mkdtempSync(join(tmpdir(), "gcx-x-"));
  const bad = spawnSync(process.execPath, [main, "experiment", "run", "E42", "--db", join(dir, "db.sqlite")], { encoding: "utf8" });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /unknown experiment "E42"/);
  assert.ok(!existsSync(join(dir, "report")));
});
