/**
 * The read-back boundary (decision 0007): training and measures read numbers back only at read points, through
 * measures/readback.ts. The asynchronous drivers give the same runs as the synchronous ones, and the device read
 * schedule (losses read at log points and checkpoints, not every step) names the same diverged step.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getBackend } from "../src/engine/backend.js";
import { parseTrainConfig } from "../src/training/config.js";
import { train, trainAsync } from "../src/training/trainer.js";
import { loadModel } from "../src/models/io.js";
import { exactGC, exactGCDeferred, estimateGC, estimateGCDeferred } from "../src/measures/gc.js";
import { onDevice, resolve } from "../src/measures/readback.js";
import { compileNetwork } from "../src/models/network.js";
import { initParams } from "../src/models/init.js";
import { loadDataset } from "../src/data/registry.js";
import { UserError } from "../src/util/errors.js";

const tmp = () => mkdtempSync(join(tmpdir(), "gcx-readback-"));
const quick = { data: "moons", model: "mlp:2-16-16-2", size: 200, evalSize: 200, gcSize: 100, lr: 0.1, batchSize: 32 };

/**
 * Runs fn with the active backend marked as a device backend: the device read schedule on host storage. (Not
 * withBackend: it would restore the previous backend at fn's first await.)
 */
async function asDevice<T>(fn: () => Promise<T>): Promise<T> {
  const b = getBackend() as { device?: boolean };
  const before = Object.getOwnPropertyDescriptor(b, "device");
  Object.defineProperty(b, "device", { value: true, configurable: true, writable: true });
  try {
    assert.ok(onDevice());
    return await fn();
  } finally {
    if (before) Object.defineProperty(b, "device", before);
    else delete b.device;
  }
}

test("trainAsync writes the same metrics, checkpoint and model as train", async () => {
  const cfg = parseTrainConfig({ ...quick, steps: 30, logEvery: 10, checkpointEvery: 7, spectral: 0.01, gc: 0.01 });
  const a = tmp(),
    b = tmp();
  train(cfg, a);
  await trainAsync(cfg, b);
  const strip = (s: string) => s.replace(/"seconds":[^,}]*/g, "");
  assert.equal(strip(readFileSync(join(b, "metrics.jsonl"), "utf8")), strip(readFileSync(join(a, "metrics.jsonl"), "utf8")));
  const wa = loadModel(join(a, "model")).params,
    wb = loadModel(join(b, "model")).params;
  for (const k of Object.keys(wa)) assert.deepEqual(wb[k].data, wa[k].data, k);
  const ck = "checkpoints/step-00000030/state.safetensors";
  assert.deepEqual(readFileSync(join(b, ck)), readFileSync(join(a, ck)));
});

test("device read schedule: losses are read at log points and checkpoints, with the same sums and the same steps", async () => {
  const cfg = parseTrainConfig({ ...quick, steps: 20, logEvery: 10, checkpointEvery: 100, l2: 1e-3, measures: [] });
  const host = tmp(),
    device = tmp();
  const hostSteps: number[] = [];
  train(cfg, host, { onStep: (s) => hostSteps.push(s) });
  // onStep reports every step, in order, but only once the losses are read: all ten at once, at each log point.
  const seen: { step: number; logsBefore: number }[] = [];
  let logs = 0;
  await asDevice(() =>
    trainAsync(cfg, device, { onStep: (step) => seen.push({ step, logsBefore: logs }), onLog: () => logs++ }),
  );
  assert.deepEqual(
    seen.map((s) => s.step),
    hostSteps,
  );
  assert.deepEqual(
    seen.map((s) => s.logsBefore),
    [...Array(10).fill(1), ...Array(10).fill(2)],
  );
  const rows = (dir: string) =>
    readFileSync(join(dir, "metrics.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, number>);
  const h = rows(host),
    d = rows(device);
  assert.equal(d.length, 3);
  for (let i = 0; i < h.length; i++) {
    for (const k of ["batch_loss", "penalty", "train_loss", "test_loss", "train_acc"]) assert.equal(d[i][k], h[i][k], `${k} at step ${h[i].step}`);
    // Exact GC on a device runs the reverse-mode ops instead of the closed-form host loops: float32 rounding apart.
    assert.ok(Math.abs(d[i].gc_train - h[i].gc_train) <= 1e-5 * h[i].gc_train, `gc_train at ${h[i].step}`);
  }
});

test("device read schedule: a divergence between log points is reported at the next read point, naming its first step", async () => {
  const cfg = parseTrainConfig({ ...quick, steps: 40, logEvery: 20, checkpointEvery: 100, lr: 1e6, measures: [] });
  const message = (e: unknown) => (e instanceof UserError ? e.message : String(e));
  let hostError = "";
  try {
    train(cfg, tmp());
  } catch (e) {
    hostError = message(e);
  }
  assert.match(hostError, /training diverged at step \d+/);
  let deviceError = "";
  try {
    await asDevice(() => trainAsync(cfg, tmp()));
  } catch (e) {
    deviceError = message(e);
  }
  assert.equal(deviceError, hostError);
});

test("deferred GC measures read once at the end and give the synchronous results", async () => {
  const ds = loadDataset("moons", { split: "train", seed: 0, size: 150 });
  const net = compileNetwork({ kind: "mlp", sizes: [2, 12, 12, 2], activation: "tanh" });
  const params = initParams(net, { scheme: "he", distribution: "normal", scale: 1, bias: 0.1, seed: 2 });
  const opts = { batchSize: 40, perClass: true };
  const d = exactGCDeferred(net, params, ds, opts);
  assert.equal(d.tensors.length, 4, "one tensor of per-example norms per batch");
  const { seconds: _a, ...sync } = exactGC(net, params, ds, opts);
  const { seconds: _b, ...async } = await resolve(d);
  assert.deepEqual(async, sync);
  const est = { ...opts, probes: 3, seed: 5 };
  const e = estimateGCDeferred(net, params, ds, est);
  assert.equal(e.tensors.length, 4 * 3, "one tensor per batch and probe");
  const { seconds: _c, ...esync } = estimateGC(net, params, ds, est);
  const { seconds: _d, ...easync } = await resolve(e);
  assert.deepEqual(easync, esync);
});
