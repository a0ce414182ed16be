/**
 * `gcx measure` and `gcx train` on a device backend (issue 12), in-process on the strict test backend: device
 * storage, synchronous reads throw, reads counted. Its kernels are the js backend's reference loops, so the numbers
 * are compared with the js backend's.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getBackend, setBackend } from "../src/engine/backend.js";
import { installStrictBackend, resetStrictStats, strictStats } from "../src/engine/backends/strict.js";
import { measureCommand, runMeasure, type MeasureFlags } from "../src/cli/commands/measure.js";
import { runTrain, trainCommand } from "../src/cli/commands/train.js";
import { onDevice } from "../src/measures/readback.js";

installStrictBackend();

/** Runs fn with `name` as the active backend, across fn's awaits (withBackend restores at the first await). */
async function on<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
  const before = getBackend().name;
  setBackend(name);
  try {
    return await fn();
  } finally {
    setBackend(before);
  }
}

/** Flags exactly as commander parses them from a command line (defaults included), without running the action. */
function flagsOf(cmd: ReturnType<typeof measureCommand>, args: string[]): Record<string, unknown> {
  cmd.action(() => {});
  cmd.parse(args, { from: "user" });
  return cmd.opts();
}

const measureFlags = (args: string[]) => flagsOf(measureCommand(), args) as unknown as MeasureFlags;

/** The measure JSON without what legitimately differs between backends: wall time and the engine. */
function comparable(json: string): Record<string, unknown> {
  const { seconds: _s, engine: _e, ...rest } = JSON.parse(json) as Record<string, unknown>;
  return rest;
}

test("gcx measure on a device backend: the js backend's numbers, read back once per batch at the end", async () => {
  const args = ["--data", "moons", "--limit", "200", "--batch-size", "64", "--model", "mlp:2-16-16-2:tanh", "--json"];
  for (const extra of [["--per-class"], ["--method", "estimate", "--probes", "3"]]) {
    const flags = measureFlags([...args, ...extra]);
    const host = comparable(await on("js", () => runMeasure(flags)));
    const device = await on("strict", async () => {
      assert.ok(onDevice());
      resetStrictStats();
      const out = await runMeasure(flags);
      return { out: comparable(out), reads: strictStats().reads };
    });
    // One norms tensor per batch (4 batches of 200), or one per batch and probe: read together, at the end.
    assert.equal(device.reads, extra.includes("estimate") ? 4 * 3 : 4, extra.join(" "));
    if (extra.includes("estimate")) {
      // Probes run the same ops on both: bit for bit.
      assert.deepEqual(device.out, host);
      continue;
    }
    // Exact GC: the js backend runs the closed-form MLP propagation in float64, the device the reverse-mode ops.
    const { gc: hgc, per_class: hpc, ...hrest } = host;
    const { gc: dgc, per_class: dpc, ...drest } = device.out;
    assert.deepEqual(drest, hrest);
    assert.notEqual(dgc, undefined);
    assert.ok(
      Math.abs((dgc as number) - (hgc as number)) <= 1e-8 * (hgc as number),
      `${String(dgc)} vs ${String(hgc)}`,
    );
    const h = hpc as { n: number; gc: number }[],
      d = dpc as { n: number; gc: number }[];
    assert.deepEqual(
      d.map((c) => c.n),
      h.map((c) => c.n),
    );
    for (let i = 0; i < h.length; i++) assert.ok(Math.abs(d[i].gc - h[i].gc) <= 1e-8 * h[i].gc);
  }
});

test("gcx measure --all on a device backend reads the companion measures at the end too", async () => {
  const flags = measureFlags(["--data", "moons", "--limit", "100", "--model", "mlp:2-8-8-2", "--all", "--json"]);
  const host = JSON.parse(await on("js", () => runMeasure(flags))) as { norms: Record<string, unknown> };
  const device = await on("strict", async () => {
    resetStrictStats();
    return JSON.parse(await runMeasure(flags)) as { norms: Record<string, unknown> };
  });
  // Everything but the top Hessian eigenvalue is bit for bit; that one differs in float32's last bits.
  const { hessian_top_eig: he, ...hn } = host.norms;
  const { hessian_top_eig: de, ...dn } = device.norms;
  assert.deepEqual(dn, hn);
  assert.ok(
    Math.abs((de as number) - (he as number)) <= 1e-6 * Math.abs(he as number),
    `${String(de)} vs ${String(he)}`,
  );
  assert.equal(device.norms.companions_n, 100);
});

const trainFlags = (args: string[]) => flagsOf(trainCommand(), [...args, "--no-progress"]);

/** Runs `gcx train` in-process; returns its stdout, its log lines, and the strict read count at each log line. */
async function trainIn(backend: string, args: string[]) {
  const out: string[] = [];
  const logs: string[] = [];
  const readsAtLog: number[] = [];
  resetStrictStats();
  await on(backend, () =>
    runTrain(trainFlags(args), {
      out: (t) => out.push(t),
      err: (t) => {
        logs.push(t);
        readsAtLog.push(strictStats().reads);
      },
    }),
  );
  return { out: out.join(""), logs, readsAtLog, reads: strictStats().reads };
}

test("gcx train on a device backend: the js backend's run, numbers read at log points and checkpoints only", async () => {
  const quick = ["--data", "moons", "--model", "mlp:2-16-16-2", "--size", "200", "--eval-size", "200"];
  const run = (steps: number) => [
    ...quick,
    "--gc-size",
    "100",
    "--lr",
    "0.1",
    "--batch-size",
    "32",
    "--steps",
    String(steps),
    "--log-every",
    "10",
    "--checkpoint-every",
    "100",
    "--measures",
    "norms",
  ];
  const dirs = { js: mkdtempSync(join(tmpdir(), "gcx-clidev-")), strict: mkdtempSync(join(tmpdir(), "gcx-clidev-")) };
  const host = await trainIn("js", [...run(20), "--out", dirs.js]);
  const device = await trainIn("strict", [...run(20), "--out", dirs.strict]);
  const strip = (s: string) =>
    s
      .replace(/[\d.]+ ms\/step/, "")
      .replaceAll(dirs.js, "DIR")
      .replaceAll(dirs.strict, "DIR");
  // Losses, accuracies and the norms are bit for bit; exact GC is the closed form on js and reverse-mode ops on the
  // device, equal to float32 rounding (see the measure test). Compare the final line field by field.
  const fields = (s: string) =>
    Object.fromEntries([...strip(s).matchAll(/(\w+) ([-\d.e+]+)/g)].map((m) => [m[1], +m[2]]));
  const h = fields(host.out.split("\n")[1]),
    d = fields(device.out.split("\n")[1]);
  for (const k of ["train_loss", "test_loss", "test_acc"]) assert.equal(d[k], h[k], k);
  for (const k of ["gc_train", "gc_test"]) assert.ok(Math.abs(d[k] - h[k]) <= 1e-6 * h[k], `${k}: ${d[k]} vs ${h[k]}`);
  assert.equal(strip(device.out.split("\n")[0]), strip(host.out.split("\n")[0]));
  const rows = (dir: string) =>
    readFileSync(join(dir, "metrics.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, number>);
  const hr = rows(dirs.js),
    dr = rows(dirs.strict);
  assert.equal(dr.length, hr.length);
  for (let i = 0; i < hr.length; i++)
    for (const k of ["step", "batch_loss", "train_loss", "test_loss", "train_acc", "test_acc", "sum_frobenius_sq"])
      assert.equal(dr[i][k], hr[i][k], `${k} at row ${i}`);
  // Three log points (steps 0, 10, 20). A synchronous read would throw on strict; the asynchronous ones happen at
  // log points (each step's loss scalar, read together there, plus the log's measures) and the final checkpoint.
  // Twice the steps between log points reads exactly one more scalar per extra step, nothing else.
  assert.equal(device.logs.length, 3);
  assert.equal(host.reads, 0);
  const longerDir = mkdtempSync(join(tmpdir(), "gcx-clidev-"));
  const longer = await trainIn("strict", [...run(40), "--log-every", "20", "--out", longerDir]);
  assert.equal(longer.logs.length, 3);
  assert.equal(longer.readsAtLog[0], device.readsAtLog[0]);
  for (const i of [1, 2])
    assert.equal(
      longer.readsAtLog[i] - longer.readsAtLog[i - 1],
      device.readsAtLog[i] - device.readsAtLog[i - 1] + 10,
      `reads between log points ${i - 1} and ${i}`,
    );
  assert.equal(longer.reads - longer.readsAtLog[2], device.reads - device.readsAtLog[2], "final checkpoint reads");
  assert.ok(device.reads < 20 * 5, `${device.reads} reads in 20 steps`);
});

test("runTrialAsync on a device backend: the js backend's init and training trials", async () => {
  const { runTrial, runTrialAsync } = await import("../src/experiments/runTrial.js");
  type Plan = Parameters<typeof runTrial>[0];
  const config = { data: "moons", model: "mlp:2-16-2", size: 200, evalSize: 200, gcSize: 100, measures: [] };
  const plan = (kind: "init" | "train") =>
    ({ id: `t-${kind}`, kind, config: { ...config, steps: 20, logEvery: 10, batchSize: 32 } }) as unknown as Plan;
  for (const kind of ["init", "train"] as const) {
    const host = await on("js", () => runTrial(plan(kind), mkdtempSync(join(tmpdir(), "gcx-trial-"))));
    resetStrictStats();
    const device = await on("strict", () => runTrialAsync(plan(kind), mkdtempSync(join(tmpdir(), "gcx-trial-"))));
    assert.ok(strictStats().reads > 0, "the device trial read back");
    assert.equal(device.metrics.length, host.metrics.length, kind);
    for (let i = 0; i < host.metrics.length; i++) {
      const h = host.metrics[i],
        d = device.metrics[i];
      for (const k of ["step", "train_loss", "test_loss", "train_acc", "test_acc"])
        assert.equal(d[k], h[k], `${kind} ${k}`);
      for (const k of ["gc_train", "gc_test"])
        assert.ok(Math.abs((d[k] as number) - (h[k] as number)) <= 1e-6 * (h[k] as number), `${kind} ${k}`);
    }
    if (kind === "init") assert.deepEqual(device.summary.line, host.summary.line);
  }
});

test("gcx measure on a device backend: an overflowing model is one user error, without a synchronous read", async () => {
  const { UserError } = await import("../src/util/errors.js");
  const flags = measureFlags(["--data", "moons", "--limit", "50", "--model", "mlp:2-16-16-2", "--init-scale", "1e20"]);
  const message = async (backend: string) => {
    try {
      await on(backend, () => runMeasure(flags));
    } catch (e) {
      assert.ok(e instanceof UserError, String(e));
      return e.message;
    }
    assert.fail("no error");
  };
  const host = await message("js");
  const device = await message("strict");
  assert.match(
    host,
    /^GC is not finite \((Infinity|NaN)\): .*\(largest \|weight\| [\d.e+]+, largest \|input\| [\d.]+\)/,
  );
  assert.match(device, /^GC is not finite \((Infinity|NaN)\): .*float32 \(largest \|input\| [\d.]+\); use/);
});
