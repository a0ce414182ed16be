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
import { getBackend, setBackend } from "../src/engine/backend.js";
import { installStrictBackend, resetStrictStats, strictStats } from "../src/engine/backends/strict.js";
import { Tensor } from "../src/engine/tensor.js";
import { buildRegularizers } from "../src/regularizers/index.js";
import { trainStep, type StepState } from "../src/training/step.js";
import { adam, sgd } from "../src/training/optimizers.js";
import { Rng } from "../src/util/rng.js";
import { parseTrainConfig } from "../src/training/config.js";
import { train, trainAsync } from "../src/training/trainer.js";
import { loadModel } from "../src/models/io.js";
import { exactGC, exactGCDeferred, estimateGC, estimateGCDeferred } from "../src/measures/gc.js";
import { onDevice, resolve } from "../src/measures/readback.js";
import { compileNetwork } from "../src/models/network.js";
import { initParams } from "../src/models/init.js";
import { loadDataset } from "../src/data/registry.js";
import { UserError } from "../src/util/errors.js";
import { jacobianSqNormsForward, jacobianSqNormsForwardTensor } from "../src/measures/jacobian.js";
import { relativeError } from "./helpers.js";

const tmp = () => mkdtempSync(join(tmpdir(), "gcx-readback-"));
const quick = { data: "moons", model: "mlp:2-16-16-2", size: 200, evalSize: 200, gcSize: 100, lr: 0.1, batchSize: 32 };

installStrictBackend();

/**
 * Runs fn on the strict test backend (device storage, synchronous reads throw, reads counted). Not withBackend: it
 * would restore the previous backend at fn's first await.
 */
async function onStrict<T>(fn: () => Promise<T>): Promise<T> {
  const before = getBackend().name;
  setBackend("strict");
  try {
    assert.ok(onDevice());
    return await fn();
  } finally {
    setBackend(before);
  }
}

test("trainAsync writes the same metrics, checkpoint and model as train", async () => {
  const cfg = parseTrainConfig({ ...quick, steps: 30, logEvery: 10, checkpointEvery: 7, spectral: 0.01, gc: 0.01 });
  const a = tmp(),
    b = tmp();
  train(cfg, a);
  await trainAsync(cfg, b);
  const strip = (s: string) => s.replace(/"seconds":[^,}]*/g, "");
  assert.equal(
    strip(readFileSync(join(b, "metrics.jsonl"), "utf8")),
    strip(readFileSync(join(a, "metrics.jsonl"), "utf8")),
  );
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
  // strict's kernels are the js backend's reference loops: the same numbers as js (not wasm).
  const was = getBackend().name;
  setBackend("js");
  try {
    train(cfg, host, { onStep: (s) => hostSteps.push(s) });
  } finally {
    setBackend(was);
  }
  // onStep reports every step, in order, but only once the losses are read: all ten at once, at each log point.
  const seen: { step: number; logsBefore: number }[] = [];
  let logs = 0;
  await onStrict(() =>
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
    for (const k of ["batch_loss", "penalty", "train_loss", "test_loss", "train_acc"])
      assert.equal(d[i][k], h[i][k], `${k} at step ${h[i].step}`);
    // Exact GC on a device runs the reverse-mode ops instead of the closed-form host loops: float32 rounding apart.
    assert.ok(Math.abs(d[i].gc_train - h[i].gc_train) <= 1e-5 * h[i].gc_train, `gc_train at ${h[i].step}`);
  }
});

test("device read schedule: a divergence between log points is reported at the next read point, naming its first step", async () => {
  const cfg = parseTrainConfig({ ...quick, steps: 40, logEvery: 20, checkpointEvery: 100, lr: 1e6, measures: [] });
  const message = (e: unknown) => (e instanceof UserError ? e.message : String(e));
  let hostError = "";
  const was = getBackend().name;
  setBackend("js");
  try {
    train(cfg, tmp());
  } catch (e) {
    hostError = message(e);
  } finally {
    setBackend(was);
  }
  assert.match(hostError, /training diverged at step \d+/);
  let deviceError = "";
  try {
    await onStrict(() => trainAsync(cfg, tmp()));
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

test("strict device backend: a training step with each penalty, and a step of a BatchNorm graph model, read nothing back", async () => {
  const bn = (name: string, input: string) => ({
    name,
    op: "batchnorm" as const,
    inputs: [input],
    eps: 1e-5,
    momentum: 0.1,
  });
  const specs = {
    relu: compileNetwork({ kind: "mlp", sizes: [4, 16, 16, 3], activation: "relu" }),
    tanh: compileNetwork({ kind: "mlp", sizes: [4, 16, 3], activation: "tanh" }),
    bn: compileNetwork({
      kind: "graph",
      input: [4],
      nodes: [
        { name: "fc1", op: "linear", inputs: ["input"], out: 8, bias: true },
        bn("bn1", "fc1"),
        { name: "act", op: "relu", inputs: ["bn1"] },
        { name: "fc2", op: "linear", inputs: ["act"], out: 3, bias: true },
      ],
      output: "fc2",
    }),
  };
  const penalties = {
    l2: { l2: 1e-3 },
    spectral: { spectral: 1e-2 },
    flatness: { flatness: 1e-2 },
    gc: { gc: 1e-2 },
    gcProbes: { gc: 1e-2, gcProbes: 3 },
    noise: { inputNoise: 0.05, labelNoise: 0.05 },
  };
  await onStrict(async () => {
    for (const [name, net] of Object.entries(specs)) {
      const params = initParams(net, { scheme: "he", distribution: "normal", scale: 1, bias: 0.1, seed: 1 });
      const rng = new Rng(2);
      const x = new Tensor(
        Float32Array.from({ length: 8 * 4 }, () => rng.normal()),
        [8, 4],
      );
      const batch = { x, labels: Int32Array.from({ length: 8 }, () => rng.int(3)), numOutputs: 3 };
      for (const [pname, cfg] of Object.entries(penalties)) {
        const regs = buildRegularizers(cfg);
        for (const opt of [sgd(0.01, 0.9), adam(0.01)]) {
          const state: StepState = { params, opt: opt.init(params), regs: regs.map((r) => r.init(net, params)) };
          resetStrictStats();
          const r = trainStep(net, state, batch, regs, opt, Rng.derive(7, 0));
          trainStep(net, r.state, batch, regs, opt, Rng.derive(7, 1)); // a second step, from device state
          assert.equal(strictStats().reads, 0, `${name} + ${pname}: reads inside the steps`);
          assert.throws(() => r.loss, /await tensor.read\(\)/, "a synchronous read of the loss throws on a device");
          const loss = await r.lossTensor.readItem();
          assert.ok(Number.isFinite(loss), `${name} + ${pname}: loss ${loss}`);
        }
      }
    }
  });
});

test("strict device backend: exact and estimated GC run every batch without a read, then read one tensor per batch", async () => {
  const ds = loadDataset("moons", { split: "train", seed: 0, size: 100 });
  const net = compileNetwork({ kind: "mlp", sizes: [2, 16, 16, 2], activation: "relu" });
  const params = initParams(net, { scheme: "he", distribution: "normal", scale: 1, bias: 0.1, seed: 2 });
  const hostExact = withJs(() => exactGC(net, params, ds, { batchSize: 30, mode: "reverse" }).gc);
  await onStrict(async () => {
    const p = initParams(net, { scheme: "he", distribution: "normal", scale: 1, bias: 0.1, seed: 2 });
    resetStrictStats();
    const d = exactGCDeferred(net, p, ds, { batchSize: 30, perClass: true });
    assert.equal(strictStats().reads, 0);
    const r = await resolve(d);
    assert.equal(strictStats().reads, 4);
    assert.equal(r.mode, "reverse");
    // The host runs the closed-form MLP propagation, the device the reverse-mode ops: float32 rounding apart.
    assert.ok(Math.abs(r.gc - hostExact) <= 1e-6 * hostExact, `device GC ${r.gc} vs host ${hostExact}`);
    resetStrictStats();
    const e = estimateGCDeferred(net, p, ds, { batchSize: 30, probes: 3, seed: 1 });
    assert.equal(strictStats().reads, 0);
    assert.ok(Number.isFinite((await resolve(e)).gc));
    assert.equal(strictStats().reads, 4 * 3);
  });
});

function withJs<T>(fn: () => T): T {
  const was = getBackend().name;
  setBackend("js");
  try {
    return fn();
  } finally {
    setBackend(was);
  }
}

test("strict device backend: a run resumed from its checkpoint writes what an uninterrupted run writes", async () => {
  const cfg = parseTrainConfig({
    ...quick,
    steps: 24,
    logEvery: 8,
    checkpointEvery: 8,
    spectral: 0.01,
    optimizer: "adam",
    lr: 0.01,
    measures: ["norms"],
  });
  const a = tmp(),
    b = tmp();
  await onStrict(async () => {
    await trainAsync(cfg, a);
    await trainAsync(cfg, b, { stopAfter: 13 }); // dies between the checkpoints of steps 8 and 16
    await trainAsync(null, b);
  });
  assert.equal(readFileSync(join(b, "metrics.jsonl"), "utf8"), readFileSync(join(a, "metrics.jsonl"), "utf8"));
  const wa = loadModel(join(a, "model")).params,
    wb = loadModel(join(b, "model")).params;
  for (const k of Object.keys(wa)) assert.deepEqual(wb[k].data, wa[k].data, k);
});

test("forward-mode GC as ops (device path) matches the host forward-mode loop, logits and softmax; strict runs it with no read", async () => {
  const ds = loadDataset("moons", { split: "train", seed: 0, size: 60 });
  const net = compileNetwork({ kind: "mlp", sizes: [2, 16, 3], activation: "tanh" });
  const labels = Int32Array.from(ds.labels!, (c, i) => (c + i) % 3);
  const three = { ...ds, numOutputs: 3, labels };
  const params = initParams(net, { scheme: "he", distribution: "normal", scale: 1, bias: 0.1, seed: 4 });
  for (const output of ["logits", "softmax"] as const) {
    const x = new Tensor(ds.x.subarray(0, 60 * 2), [60, 2]);
    const host = jacobianSqNormsForward(net, params, x, output);
    const ops = jacobianSqNormsForwardTensor(net, params, x, output).data;
    assert.ok(relativeError(ops, host) < 1e-5, `${output}: ops vs host loop ${relativeError(ops, host)}`);
    const want = withJs(() => exactGC(net, params, three, { batchSize: 25, mode: "forward", output }).gc);
    await onStrict(async () => {
      const p = initParams(net, { scheme: "he", distribution: "normal", scale: 1, bias: 0.1, seed: 4 });
      resetStrictStats();
      const d = exactGCDeferred(net, p, three, { batchSize: 25, mode: "forward", output });
      assert.equal(strictStats().reads, 0);
      const r = await resolve(d);
      assert.equal(r.mode, "forward");
      assert.ok(Math.abs(r.gc - want) <= 1e-5 * want, `${output}: strict ${r.gc} vs host ${want}`);
    });
  }
});
