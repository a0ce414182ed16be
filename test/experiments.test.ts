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
import { buildReport, claimsJson, formatClaimsTable, type TrialData } from "../src/experiments/reportBuilder.js";
import { RunStore } from "../src/store/runStore.js";
import { SqliteStore } from "../src/store/sqlite.js";

const tiny: FamilyDef = {
  id: "T2",
  version: 1,
  title: "tiny L2 sweep",
  description: "test family",
  kind: "train",
  knob: { key: "l2", label: "λ", values: [0, 0.03] },
  base: {
    data: "moons",
    model: "mlp:2-16-16-2",
    size: 200,
    evalSize: 200,
    gcSize: 100,
    steps: 150,
    logEvery: 50,
    checkpointEvery: 50,
    lr: 0.1,
    batchSize: 32,
    measures: ["norms", "output-grad"],
  },
  seeds: [0, 1],
  claims: [{ id: "T2", claim: "L2 lowers GC", expected: "decreasing" }],
};

test("sweep runs every trial once on worker threads, skips finished ones on re-run, and the report reads them", async () => {
  const dir = mkdtempSync(join(tmpdir(), "gcx-sweep-"));
  const store = RunStore.open(join(dir, "db.sqlite"));
  const plans = expandTrials(tiny);
  const done: string[] = [];
  const r1 = await runSweep(new SqliteStore(store, "db.sqlite"), plans, {
    jobs: 2,
    runsDir: join(dir, "trials"),
    onTrialDone: (p) => done.push(p.id),
  });
  assert.deepEqual(r1, { ran: 4, failed: 0 });
  assert.deepEqual([...done].sort(), plans.map((p) => p.id).sort());
  const r2 = await runSweep(new SqliteStore(store, "db.sqlite"), plans, { jobs: 2, runsDir: join(dir, "trials") });
  assert.deepEqual(r2, { ran: 0, failed: 0 }, "finished trials are not redone");
  const rows = store.list({ family: "T2", status: "done" });
  assert.equal(rows.length, 4);
  for (const row of rows) assert.equal(store.metrics(row.id).length, 4, "steps 0, 50, 100, 150 logged");
  assert.ok(plans.every((p) => p.setup === "moons/mlp"));
  const data = new Map<string, TrialData[]>([
    ["T2", rows.map((row) => ({ row, variant: "", setup: "moons/mlp", metrics: store.metrics(row.id) }))],
  ]);
  const { doc, claims, sanity } = buildReport([tiny], data, "quick");
  assert.equal(claims[0].id, "T2");
  assert.equal(claims[0].dataset, "moons");
  assert.ok(["agrees", "disagrees", "inconclusive"].includes(claims[0].verdict));
  assert.ok(claims[0].effect && Number.isFinite(claims[0].effect.value), "effect size");
  assert.ok(claims[0].accuracy && Number.isFinite(claims[0].accuracy.baseline), "accuracy cost");
  assert.equal(claims[1].kind, "summary");
  assert.equal(claims[1].verdict, claims[0].verdict, "one counted row: the summary is that row's verdict");
  assert.ok(!claims.some((c) => c.id.startsWith("B ")), "bounds are sanity checks, not claims");
  assert.ok(
    sanity.some((c) => c.id.startsWith("B T1") && c.verdict === "agrees"),
    "bounds hold",
  );
  assert.ok(
    sanity.some((c) => c.id.startsWith("B T2") && c.verdict === "agrees"),
    "certified T2 bound holds",
  );
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
  const bad = spawnSync(process.execPath, [main, "experiment", "run", "E42", "--db", join(dir, "db.sqlite")], {
    encoding: "utf8",
  });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /unknown experiment "E42"/);
  assert.ok(!existsSync(join(dir, "report")));
});

/** Synthetic finished trials: GC falls with the knob; test accuracy, loss curves and setups chosen per test. */
function fakeTrials(
  setup: string,
  accAt: (knob: number) => number,
  gcAt: (knob: number, seed: number) => number,
  finalLoss: (knob: number) => number,
): TrialData[] {
  const out: TrialData[] = [];
  for (const knob of [0, 1, 2, 3])
    for (const seed of [0, 1, 2]) {
      const gc = gcAt(knob, seed),
        end = finalLoss(knob);
      // Loss falls linearly from 2 to `end`, GC grows linearly from 1 to its final value.
      const metrics = Array.from({ length: 11 }, (_, i) => ({
        step: i * 10,
        train_loss: 2 + (end - 2) * (i / 10),
        gc_train: 1 + (gc - 1) * (i / 10),
        test_acc: accAt(knob),
      }));
      const row = {
        id: `${setup}-${knob}-${seed}`,
        family: "F",
        version: 1,
        knob: "l2",
        knobValue: knob,
        seed,
        config: {},
        status: "done" as const,
        error: null,
        summary: { ...metrics[10], test_acc: accAt(knob) + 0.001 * seed },
        startedAt: null,
        finishedAt: null,
        seconds: 1,
      };
      out.push({ row, variant: "", setup, metrics });
    }
  return out;
}

test("claim rows: accuracy-cost flags, verdict without them, matched progress, undertrained rows shown but not counted, summary", () => {
  const fam: FamilyDef = {
    ...tiny,
    id: "F",
    knob: { key: "l2", label: "λ", values: [0, 1, 2, 3] },
    setups: [
      { dataset: "a", model: "mlp", config: {}, accFloor: 0.9 },
      { dataset: "b", model: "mlp", config: {}, accFloor: 0.9 },
    ],
    seeds: [0, 1, 2],
    claims: [{ id: "F", claim: "knob lowers GC", expected: "decreasing" }],
  };
  // Setup a: knob 3 costs 10 points of accuracy and its runs never get below loss 0.9; the others reach 0.3.
  const a = fakeTrials(
    "a/mlp",
    (k) => (k === 3 ? 0.85 : 0.95),
    (k, s) => 100 - 20 * k + s,
    (k) => (k === 3 ? 0.9 : 0.3),
  );
  // Setup b: undertrained (baseline accuracy 0.5 < floor 0.9), GC rises with the knob.
  const b = fakeTrials(
    "b/mlp",
    () => 0.5,
    (k, s) => 10 + 5 * k + s,
    () => 0.3,
  );
  const { claims } = buildReport([fam], new Map([["F", [...a, ...b]]]), "quick");
  const [ra, rb, summary] = claims;
  assert.equal(ra.dataset, "a");
  assert.deepEqual(ra.accuracy!.flaggedKnobs, [3]);
  assert.ok(Math.abs(ra.accuracy!.worstDrop - 0.1) < 0.01);
  assert.equal(ra.verdict, "agrees");
  assert.equal(ra.unflagged!.verdict, "agrees");
  assert.ok(Math.abs(ra.effect!.value - 41 / 101) < 1e-9, `effect ${ra.effect!.value}`);
  // Matched level: loosest loss the unflagged runs reach = 0.3; the knob-3 runs never reach it.
  assert.ok(Math.abs(ra.matched!.level! - 0.3) < 1e-12);
  assert.equal(ra.matched!.unreached, 3);
  assert.ok(ra.flags!.some((f) => f.includes("accuracy cost")) && ra.flags!.some((f) => f.includes("never reach")));
  assert.equal(rb.counted, false);
  assert.ok(rb.flags!.some((f) => f.includes("undertrained")));
  assert.equal(rb.verdict, "disagrees");
  assert.equal(summary.kind, "summary");
  assert.equal(summary.verdict, "agrees", "the undertrained row is not counted");
  const json = claimsJson(claims, []);
  assert.equal(json.length, 3);
  assert.deepEqual(
    Object.keys(json[0]).sort(),
    [
      "accuracyCost",
      "claim",
      "counted",
      "dataset",
      "effect",
      "expected",
      "extension",
      "flags",
      "id",
      "kind",
      "knob",
      "matchedProgress",
      "model",
      "note",
      "rho",
      "verdict",
      "withoutFlagged",
    ].sort(),
  );
});
