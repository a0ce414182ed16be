/**
 * Training state kept resident between steps (trainStep's `keep`, the wasm arena's kept blocks, decision 0007's
 * addendum): the same numbers as copying the state out, memory flat over 1,000 steps with every penalty (two
 * blocks, reused in turn), released blocks really given back, a kept scope inside another scope falling back to a
 * copy, and the trainer leaving nothing behind.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tensor } from "../src/engine/tensor.js";
import { getBackend, keepResident, keptScope, scope } from "../src/engine/backend.js";
import * as op from "../src/engine/ops.js";
import { wasmArenaUsage } from "../src/engine/backends/wasm.js";
import { compileNetwork } from "../src/models/network.js";
import { initParams } from "../src/models/init.js";
import { buildRegularizers } from "../src/regularizers/index.js";
import { trainStep, type StepState } from "../src/training/step.js";
import { adam, sgd } from "../src/training/optimizers.js";
import { parseTrainConfig } from "../src/training/config.js";
import { train } from "../src/training/trainer.js";
import { exactGC } from "../src/measures/gc.js";
import { loadDataset } from "../src/data/registry.js";
import { Rng } from "../src/util/rng.js";
import { smallRun } from "./helpers.js";

const inWasm = (a: ArrayBufferView): boolean =>
  typeof SharedArrayBuffer !== "undefined" && a.buffer instanceof SharedArrayBuffer;

/** Whether this process keeps state resident (wasm backend over shared memory), with the reason when not. */
function residentOrSkip(t: { skip(m: string): void }): boolean {
  if (!wasmArenaUsage() || getBackend().name !== "wasm") {
    t.skip("the wasm kernels are not built (js backend only)");
    return false;
  }
  const probe = keptScope(() => op.scale(new Tensor(new Float32Array(64).fill(1), [64]), 2));
  const resident = inWasm(probe.value.data);
  probe.drop();
  if (!resident) t.skip("wasm memory is not shared here, so nothing stays resident");
  return resident;
}

const everyPenalty = () =>
  buildRegularizers({ l2: 1e-3, spectral: 1e-3, flatness: 1e-3, gc: 1e-3, inputNoise: 0.05, labelNoise: 0.05 });

test("kept steps give bit-identical states and losses to steps whose state is copied out", (t) => {
  if (!residentOrSkip(t)) return;
  const { net, params, batch } = smallRun();
  const regs = everyPenalty();
  const opt = adam(0.01);
  const init = (): StepState => ({ params, opt: opt.init(params), regs: regs.map((r) => r.init(net, params)) });
  let copied = init(),
    kept = init();
  let release = () => {};
  for (let step = 0; step < 20; step++) {
    const a = trainStep(net, copied, batch, regs, opt, Rng.derive(3, step));
    const b = trainStep(net, kept, batch, regs, opt, Rng.derive(3, step), { keep: true });
    assert.equal(b.loss, a.loss, `loss at step ${step}`);
    assert.equal(b.penalty, a.penalty, `penalty at step ${step}`);
    copied = a.state;
    kept = b.state;
    release();
    release = b.release;
    for (const [k, p] of Object.entries(kept.params)) {
      assert.ok(inWasm(p.data), `${k} stays in wasm memory`);
      assert.deepEqual(p.data, copied.params[k].data, `${k} at step ${step}`);
      assert.ok(!inWasm(copied.params[k].data), `${k} of a plain step is copied to the JS heap`);
    }
    for (const [k, a] of Object.entries(kept.opt.arrays)) assert.deepEqual(a, copied.opt.arrays[k], k);
  }
  release();
  assert.equal(wasmArenaUsage()!.kept, 0, "released blocks are free");
  assert.equal(wasmArenaUsage()!.used, 0, "and given back to the scopes");
});

test("1,000 kept steps with every penalty hold two blocks in turn: memory flat, nothing left after release", (t) => {
  if (!residentOrSkip(t)) return;
  const { net, params, batch } = smallRun();
  const regs = everyPenalty();
  const opt = sgd(0.01, 0.9);
  let state: StepState = { params, opt: opt.init(params), regs: regs.map((r) => r.init(net, params)) };
  let release = () => {};
  const where = new Set<number>();
  let usedMax = -1;
  for (let step = 0; step < 1000; step++) {
    const r = trainStep(net, state, batch, regs, opt, Rng.derive(7, step), { keep: true });
    state = r.state;
    release();
    release = r.release;
    const u = wasmArenaUsage()!;
    if (step === 10 || step === 11) usedMax = Math.max(usedMax, u.used);
    if (step > 11) {
      assert.ok(u.used <= usedMax, `step ${step}: ${u.used} bytes in use, at most ${usedMax} at steps 10–11`);
      where.add(state.params["layers.0.weight"]?.data.byteOffset ?? Object.values(state.params)[0].data.byteOffset);
    }
    assert.ok(u.kept > 0 && u.kept <= u.used, `step ${step}: one live block (${u.kept} of ${u.used} bytes)`);
  }
  assert.equal(where.size, 2, "the state alternates between two places (a released block is reused)");
  release();
  assert.deepEqual({ ...wasmArenaUsage()!, peak: 0 }, { used: 0, peak: 0, kept: 0 });
});

test("a released block's memory is what the next kept result reuses; scopes above it are unaffected", (t) => {
  if (!residentOrSkip(t)) return;
  const x = new Tensor(
    Float32Array.from({ length: 256 }, (_, i) => i),
    [256],
  );
  const a = keptScope(() => ({ y: op.scale(x, 2), n: 3 }));
  const b = keptScope(() => op.scale(x, 3));
  assert.equal(a.value.n, 3, "plain values pass through");
  assert.equal(a.value.y.data[255], 510);
  assert.equal(b.value.data[255], 765);
  // A plain scope above the kept blocks sees them as inputs and leaves them intact.
  const s = scope(() => op.add(a.value.y, b.value));
  assert.equal(s.data[255], 510 + 765);
  const at = a.value.y.data.byteOffset;
  a.drop();
  a.drop(); // twice is harmless
  const c = keptScope(() => op.scale(x, 5));
  assert.equal(c.value.data.byteOffset, at, "the freed block (lowest first) is reused");
  assert.equal(b.value.data[255], 765, "the other block is untouched");
  b.drop();
  c.drop();
  assert.deepEqual({ ...wasmArenaUsage()!, peak: 0 }, { used: 0, peak: 0, kept: 0 });
});

test("a kept scope inside another scope, or holding only JS-heap values, keeps nothing", (t) => {
  if (!residentOrSkip(t)) return;
  const x = new Tensor(
    Float32Array.from({ length: 256 }, (_, i) => i),
    [256],
  );
  const inner = scope(() => {
    const k = keptScope(() => op.scale(x, 2));
    assert.equal(wasmArenaUsage()!.kept, 0, "nothing kept inside a scope");
    k.drop();
    return k.value;
  });
  assert.equal(inner.data[10], 20);
  assert.ok(!inWasm(inner.data));
  const plain = keptScope(() => ({ x, n: 1 }));
  assert.equal(plain.value.x, x, "a JS-heap tensor is returned as it is");
  plain.drop();
  assert.deepEqual({ ...wasmArenaUsage()!, peak: 0 }, { used: 0, peak: 0, kept: 0 });
});

test("a training run (which keeps each step's state) leaves no wasm memory held when it ends", (t) => {
  if (!residentOrSkip(t)) return;
  const dir = mkdtempSync(join(tmpdir(), "gcx-kept-"));
  try {
    train(
      parseTrainConfig({
        data: "moons",
        model: "mlp:2-16-16-2",
        size: 200,
        evalSize: 100,
        gcSize: 50,
        lr: 0.1,
        batchSize: 32,
        steps: 30,
        logEvery: 10,
        checkpointEvery: 20,
        gc: 1e-3,
        optimizer: "adam",
      }),
      dir,
    );
    assert.deepEqual({ ...wasmArenaUsage()!, peak: 0 }, { used: 0, peak: 0, kept: 0 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("keepResident holds a model's parameters in wasm memory for a measurement: same numbers, freed by drop", (t) => {
  if (!residentOrSkip(t)) return;
  const net = compileNetwork({ kind: "mlp", sizes: [2, 32, 32, 2], activation: "relu" });
  const params = initParams(net, { scheme: "he", distribution: "normal", scale: 1, bias: 0, seed: 4 });
  const ds = loadDataset("moons", { split: "test", seed: 0, limit: 100 });
  const held = keepResident(params);
  for (const [k, p] of Object.entries(held.value)) {
    assert.ok(inWasm(p.data), `${k} is resident`);
    assert.deepEqual(p.data, params[k].data, k);
  }
  const onHeap = exactGC(net, params, ds, { batchSize: 32 });
  const resident = exactGC(net, held.value, ds, { batchSize: 32 });
  assert.equal(resident.gc, onHeap.gc);
  assert.ok(wasmArenaUsage()!.kept > 0);
  held.drop();
  assert.deepEqual({ ...wasmArenaUsage()!, peak: 0 }, { used: 0, peak: 0, kept: 0 });
});
