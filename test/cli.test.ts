import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { compileNetwork } from "../src/models/network.js";
import { initParams } from "../src/models/init.js";
import { saveModel } from "../src/models/io.js";
import { exactGC } from "../src/measures/gc.js";
import { loadDataset } from "../src/data/registry.js";

const main = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "cli", "main.js");
const gcx = (...args: string[]) => spawnSync(process.execPath, [main, ...args], { encoding: "utf8" });

test("gcx measure --json prints one JSON object with the exact GC of a saved model", () => {
  const spec = { kind: "mlp" as const, sizes: [2, 16, 2], activation: "tanh" as const };
  const net = compileNetwork(spec);
  const params = initParams(net, { scheme: "glorot", distribution: "normal", scale: 1, bias: 0, seed: 7 });
  const dir = mkdtempSync(join(tmpdir(), "gcx-cli-"));
  saveModel(dir, spec, params);
  const r = gcx("measure", "--model", dir, "--data", "moons", "--limit", "200", "--per-class", "--json", "--all");
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  const expected = exactGC(net, params, loadDataset("moons", { split: "test", seed: 0, limit: 200 })).gc;
  assert.ok(Math.abs(out.gc - expected) < 1e-6 * expected, `${out.gc} vs ${expected}`);
  assert.equal(out.method, "exact");
  assert.equal(out.n, 200);
  assert.equal(out.per_class.length, 2);
  assert.ok(out.norms.prod_frobenius_sq >= out.gc);
});

test("gcx measure --method estimate reports a standard error", () => {
  const r = gcx("measure", "--data", "circles", "--method", "estimate", "--probes", "3", "--json");
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.method, "estimate");
  assert.ok(out.stderr > 0 && Number.isFinite(out.gc));
});

test("user mistakes give one line on stderr, exit code 2 and no stack trace", () => {
  const dir = mkdtempSync(join(tmpdir(), "gcx-bad-"));
  mkdirSync(join(dir, "m"));
  writeFileSync(join(dir, "m", "model.json"), "{oops");
  const nan = mkdtempSync(join(tmpdir(), "gcx-nan-"));
  const spec = { kind: "mlp" as const, sizes: [2, 3, 2], activation: "relu" as const };
  const p = initParams(compileNetwork(spec), { scheme: "he", distribution: "normal", scale: 1, bias: 0, seed: 0 });
  p["layers.1.weight"].data[0] = NaN;
  saveModel(nan, spec, p);
  const cases: [string[], RegExp][] = [
    [["measure", "--data", "nope"], /unknown data set/],
    [["measure", "--limit", "-3"], /--limit/],
    [["measure", "--model", join(dir, "m")], /malformed JSON/],
    [["measure", "--model", join(dir, "missing")], /neither a model directory nor a model spec/],
    [["measure", "--model", "mlp:3-4-10", "--limit", "5"], /shape mismatch/],
    [["measure", "--model", nan, "--data", "moons"], /non-finite/],
  ];
  for (const [args, pattern] of cases) {
    const r = gcx(...args);
    assert.equal(r.status, 2, `${args.join(" ")}: status ${r.status}, stderr ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
  }
});

test("gcx measure --help documents the options", () => {
  const r = gcx("measure", "--help");
  assert.equal(r.status, 0);
  for (const flag of [
    "--model",
    "--data",
    "--method",
    "--probes",
    "--per-class",
    "--output",
    "--batch-size",
    "--json",
    "--limit",
    "--split",
  ]) {
    assert.ok(r.stdout.includes(flag), flag);
  }
});

test("gcx reproduce/report: --profile picks quick, full or conv; a bad or conflicting one is a one-line error; report --json prints claims", async () => {
  for (const args of [
    ["reproduce", "--profile", "nope"],
    ["reproduce", "--quick", "--full"],
    ["report", "--profile", "conv", "--full"],
  ]) {
    const r = gcx(...args);
    assert.equal(r.status, 2, args.join(" "));
    assert.match(r.stderr, /^gcx: error: (unknown profile "nope"|choose one profile)/);
    assert.equal(r.stderr.trim().split("\n").length, 1);
  }
  const { RunStore } = await import("../src/store/runStore.js");
  const dir = mkdtempSync(join(tmpdir(), "gcx-cli-"));
  RunStore.open(join(dir, "db.sqlite")).close();
  const r = gcx("report", "--profile", "conv", "--json", "--db", join(dir, "db.sqlite"), "--out", join(dir, "report"));
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.profile, "conv");
  assert.deepEqual(out.claims, []);
});
