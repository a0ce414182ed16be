/**
 * Bounded work: impossible requests are refused in seconds with the estimate (one line, exit 2, no stack), large
 * but legitimate models pass the check, WebAssembly memory failures fall back to the JS kernels, and non-finite
 * results are errors.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import {
  checkMeasureBudget,
  checkTrainingBudget,
  estimateMeasure,
  memoryBudget,
  networkCost,
  parseDuration,
  parseMemorySize,
  type TrainWork,
} from "../src/models/budget.js";
import { compileNetwork } from "../src/models/network.js";
import { initParams } from "../src/models/init.js";
import { saveModel } from "../src/models/io.js";
import type { CnnSpec, ModelSpec } from "../src/models/spec.js";

const main = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "cli", "main.js");

/** Runs gcx with a deterministic memory budget; returns status, output and wall time. */
function gcx(args: string[], env: Record<string, string> = {}) {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [main, ...args], {
    encoding: "utf8",
    timeout: 30_000,
    env: { ...process.env, GCX_MEMORY_LIMIT: "8G", ...env },
  });
  return { ...r, seconds: (Date.now() - t0) / 1000 };
}

function assertRefused(r: ReturnType<typeof gcx>, pattern: RegExp): void {
  assert.equal(r.error, undefined, `did not return in time: ${r.error}`);
  assert.equal(r.status, 2, `status ${r.status}, stderr ${r.stderr}`);
  assert.match(r.stderr, /^gcx: error: /);
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
}

const runDir = () => join(mkdtempSync(join(tmpdir(), "gcx-budget-")), "run");
const BIG_CNN = JSON.stringify({
  kind: "cnn",
  input: [28, 28, 1],
  layers: [
    { type: "conv", filters: 100000, kernel: 3 },
    { type: "relu" },
    { type: "flatten" },
    { type: "dense", units: 10 },
  ],
});

test("memory sizes and durations parse with units; bad ones are user errors", () => {
  assert.equal(parseMemorySize("8G"), 8 * 2 ** 30);
  assert.equal(parseMemorySize("512m"), 512 * 2 ** 20);
  assert.equal(parseMemorySize("2.5GiB"), 2.5 * 2 ** 30);
  assert.equal(parseMemorySize("1000"), 1000);
  assert.throws(() => parseMemorySize("lots"), /GCX_MEMORY_LIMIT/);
  assert.throws(() => parseMemorySize("0"), /GCX_MEMORY_LIMIT/);
  assert.equal(parseDuration("30d"), 30 * 86400);
  assert.equal(parseDuration("90"), 90);
  assert.throws(() => parseDuration("soon"), /GCX_TIME_LIMIT/);
  assert.equal(memoryBudget({ GCX_MEMORY_LIMIT: "8G" }).bytes, 8 * 2 ** 30);
  assert.ok(memoryBudget({}).bytes > 0);
});

/** A plain (no skip connections) CNN with ResNet-18's widths: 16 3x3 convolutions 64-128-256-512, ≈11 M parameters. */
function resnet18Sized(): CnnSpec {
  const layers: CnnSpec["layers"] = [];
  for (const f of [64, 128, 256, 512]) {
    for (let i = 0; i < 4; i++) {
      layers.push({ type: "conv", filters: f, kernel: 3, stride: i === 0 && f > 64 ? 2 : 1, padding: "same" });
      layers.push({ type: "relu" });
    }
  }
  layers.push({ type: "avgpool", size: 4 }, { type: "flatten" }, { type: "dense", units: 10 });
  return { kind: "cnn", input: [28, 28, 1], layers };
}

const TRAIN: TrainWork = {
  batchSize: 128,
  optimizer: "adam",
  momentum: 0,
  gc: 0,
  gcProbes: 0,
  flatness: 0,
  logEvery: 100,
  evalSize: 1000,
  gcSize: 256,
  measures: ["norms", "output-grad", "loss-grad"],
};
const advice = { memoryAdvice: "smaller", timeAdvice: "shorter" };

test("large but legitimate models pass the check: a ResNet-18-sized CNN at batch 128", () => {
  const spec = resnet18Sized();
  const c = networkCost(compileNetwork(spec));
  assert.ok(c.params > 10e6 && c.params < 12e6, `${c.params} parameters`);
  const env = { GCX_MEMORY_LIMIT: "8G" };
  checkMeasureBudget(
    spec,
    "resnet18",
    { n: 10000, batchSize: 128, gc: { method: "exact", mode: "auto" } },
    { ...advice, env },
  );
  checkMeasureBudget(
    spec,
    "resnet18",
    { n: 10000, batchSize: 128, gc: { method: "estimate", probes: 4 } },
    { ...advice, env },
  );
  // Training also logs exact GC on 256 examples at a time (its peak); it fits in 16 GiB.
  checkTrainingBudget(spec, "resnet18", TRAIN, 60000, 10000, 1000, { ...advice, env: { GCX_MEMORY_LIMIT: "16G" } });
  // The default MLP on MNIST fits a small budget.
  const mlp: ModelSpec = { kind: "mlp", sizes: [784, 256, 256, 10], activation: "relu" };
  checkMeasureBudget(
    mlp,
    "mlp",
    { n: 10000, batchSize: 256, gc: { method: "exact", mode: "auto" } },
    { ...advice, env: { GCX_MEMORY_LIMIT: "256M" } },
  );
  checkTrainingBudget(mlp, "mlp", TRAIN, 60000, 10000, 1000, { ...advice, env: { GCX_MEMORY_LIMIT: "256M" } });
});

test("the memory rule follows the estimate against the budget", () => {
  const mlp: ModelSpec = { kind: "mlp", sizes: [784, 256, 256, 10], activation: "relu" };
  const work = { n: 10000, batchSize: 256, gc: { method: "exact" as const, mode: "auto" as const } };
  const e = estimateMeasure(compileNetwork(mlp), work);
  const fits = { ...advice, env: { GCX_MEMORY_LIMIT: String(Math.ceil(e.bytes)) } };
  const short = { ...advice, env: { GCX_MEMORY_LIMIT: String(Math.floor(e.bytes / 2)) } };
  checkMeasureBudget(mlp, "mlp", work, fits);
  assert.throws(
    () => checkMeasureBudget(mlp, "mlp", work, short),
    /mlp needs about .* for its parameters and one batch of 256 .*GCX_MEMORY_LIMIT=\d+\); smaller/,
  );
  assert.throws(
    () => checkTrainingBudget(mlp, "mlp", TRAIN, 100, 100, 2 ** 60, advice),
    /beyond what can be counted exactly/,
  );
});

test("gcx measure refuses models and probe counts that cannot fit, within seconds, naming the estimate", () => {
  assertRefused(
    gcx(["measure", "--model", "mlp:2-1000000000-2", "--data", "moons"]),
    /mlp:2-1000000000-2 needs about [\d.]+ TiB for its parameters and one batch of 256 .*GCX_MEMORY_LIMIT=8G/,
  );
  assertRefused(
    gcx(["measure", "--model", BIG_CNN, "--data", "mnist"]),
    /cnn \(7\.85e\+8 parameters\) needs about [\d.]+ GiB for its parameters and one batch of 256/,
  );
  assertRefused(
    gcx(["measure", "--data", "moons", "--method", "estimate", "--probes", "1000000000"]),
    /needs about .*1000000000 probes' results.*use fewer --probes/,
  );
  const sci = gcx(["measure", "--data", "moons", "--method", "estimate", "--probes", "1e9"]);
  assert.equal(sci.status, 2, sci.stderr);
  assert.match(sci.stderr, /--probes/);
  assertRefused(
    gcx(["measure", "--data", "spirals", "--classes", "1000000"]),
    /classes \(1000000\) cannot exceed the examples per split/,
  );
  // Without the spirals rule: 100000 outputs need Jacobians far beyond the budget.
  assertRefused(
    gcx([
      "measure",
      "--data",
      "spirals",
      "--classes",
      "100000",
      "--size",
      "100000",
      "--model",
      "mlp:2-256-100000",
      "--mode",
      "reverse",
    ]),
    /needs about .*Jacobians/,
  );
  assertRefused(
    gcx(["measure", "--data", "moons", "--size", "10000000000"]),
    /moons with 10000000000 examples needs about [\d.]+ GiB \(GCX_MEMORY_LIMIT=8G\); use a smaller --size/,
  );
  // A budget too small for even the default model is refused too; the environment sets the rule.
  assertRefused(gcx(["measure", "--data", "moons"], { GCX_MEMORY_LIMIT: "1M" }), /GCX_MEMORY_LIMIT=1M/);
  assertRefused(
    gcx(["measure", "--data", "moons"], { GCX_MEMORY_LIMIT: "plenty" }),
    /GCX_MEMORY_LIMIT="plenty" is not a memory size/,
  );
});

test("gcx train refuses runs that cannot fit or finish, before creating anything", () => {
  const cases: [string[], RegExp, Record<string, string>?][] = [
    [["--data", "spirals", "--classes", "1000000", "--steps", "1"], /classes \(1000000\) cannot exceed/],
    [
      ["--data", "spirals", "--classes", "1000000", "--size", "1000000", "--steps", "1"],
      /mlp:2-256-256-1000000 needs about [\d.]+ GiB .*GCX_MEMORY_LIMIT=8G/,
    ],
    [
      ["--data", "spirals", "--classes", "1000000", "--size", "1000000", "--steps", "1"],
      /would take .* (days|years)/,
      { GCX_MEMORY_LIMIT: "64G", GCX_TIME_LIMIT: "1d" },
    ],
    [
      ["--model", "mlp:2-1000000000-2", "--data", "moons", "--steps", "1"],
      /mlp:2-1000000000-2 needs about .* TiB for its parameters and/,
    ],
    [
      ["--data", "moons", "--epochs", "1e9"],
      /mlp:2-256-256-2 would take (about|at least) [\d.]+ (years|days) .*GCX_TIME_LIMIT=30d\); use fewer --steps or --epochs/,
      { GCX_TIME_LIMIT: "30d" },
    ],
    [["--data", "moons", "--steps", "1000000000000000"], /would take at least .* years/],
    [["--data", "moons", "--epochs", "1e300"], /training steps is beyond what can be counted exactly/],
  ];
  for (const [args, pattern, env] of cases) {
    const out = runDir();
    const r = gcx(["train", ...args, "--out", out], env);
    assertRefused(r, pattern);
    assert.ok(!existsSync(out), "no run directory was created");
    assert.ok(r.seconds < 30, `${args.join(" ")}: ${r.seconds} s`);
  }
});

test("help of measure and train documents the limits and their overrides", () => {
  for (const cmd of ["measure", "train"]) {
    const r = gcx([cmd, "--help"]);
    assert.equal(r.status, 0);
    for (const s of ["GCX_MEMORY_LIMIT", "GCX_TIME_LIMIT", "estimates the memory"])
      assert.ok(r.stdout.includes(s), `${cmd}: ${s}`);
  }
});

test("without WebAssembly memory (ulimit -v), gcx falls back to the JS kernels with one note", () => {
  const r = spawnSync(
    "bash",
    ["-c", `ulimit -v 8000000; "${process.execPath}" "${main}" measure --data moons --json`],
    { encoding: "utf8", timeout: 60_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.ok(Number.isFinite(out.gc) && out.gc > 0, `gc ${out.gc}`);
  const notes = r.stderr.trim().split("\n").filter(Boolean);
  assert.ok(notes.length <= 1 && notes.every((l) => l.startsWith("gcx: note: ")), r.stderr);
  const plain = gcx(["measure", "--data", "moons", "--json"]);
  assert.ok(Math.abs(JSON.parse(plain.stdout).gc - out.gc) < 1e-5 * out.gc, "same GC as the wasm kernels");
});

test("a non-finite GC is an error naming the overflow, not NaN or null", () => {
  const r = gcx(["measure", "--data", "moons", "--init-scale", "1e20", "--json"]);
  assertRefused(
    r,
    /GC is not finite \(NaN\): the model's outputs or Jacobians overflow float32 \(largest \|weight\| [\d.]+e\+20/,
  );
  assert.equal(r.stdout, "");
  const spec = { kind: "mlp" as const, sizes: [2, 16, 2], activation: "relu" as const };
  const params = initParams(compileNetwork(spec), { scheme: "he", distribution: "normal", scale: 1, bias: 0, seed: 0 });
  params["layers.0.weight"].data.fill(1e20);
  params["layers.1.weight"].data.fill(1e20);
  const dir = mkdtempSync(join(tmpdir(), "gcx-huge-"));
  saveModel(dir, spec, params);
  for (const extra of [[], ["--method", "estimate"], ["--per-class"], ["--all"]]) {
    assertRefused(
      gcx(["measure", "--model", dir, "--data", "moons", ...extra]),
      /is not finite .*largest \|weight\| 1\.00e\+20/,
    );
  }
  // Large but finite: GC is reported, and an overflowing bound is written as "Infinity", never null.
  const big = gcx(["measure", "--data", "moons", "--init-scale", "1e10", "--all", "--json"]);
  assert.equal(big.status, 0, big.stderr);
  const out = JSON.parse(big.stdout);
  assert.ok(Number.isFinite(out.gc));
  for (const [k, v] of Object.entries(out.norms))
    assert.ok(
      v !== null || ["lipschitz_bound", "prod_frobenius_sq", "t3_bound", "param_grad_sq"].includes(k),
      `${k} is null`,
    );
});
