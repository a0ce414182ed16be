/**
 * The engine's backends and storage: scoped memory is reclaimed deterministically (flat over 1,000 steps with every
 * penalty), results never point into released memory, the wasm and js backends agree to float32 rounding, and the
 * same backend gives bit-identical runs whatever the thread count.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Tensor } from "../src/engine/tensor.js";
import * as op from "../src/engine/ops.js";
import { grad } from "../src/engine/autograd.js";
import { Arena } from "../src/engine/arena.js";
import { engineInfo, getBackend, scope, setBackend, withBackend } from "../src/engine/backend.js";
import { wasmArenaUsage } from "../src/engine/backends/wasm.js";
import { compileNetwork } from "../src/models/network.js";
import { initParams } from "../src/models/init.js";
import { buildRegularizers } from "../src/regularizers/index.js";
import { trainStep, type StepState } from "../src/training/step.js";
import { sgd } from "../src/training/optimizers.js";
import { exactGC } from "../src/measures/gc.js";
import { loadDataset } from "../src/data/registry.js";
import { Rng } from "../src/util/rng.js";
import { smallRun } from "./helpers.js";

const cli = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const wasm = () => getBackend().name === "wasm";

test("backend: 1,000 steps with every penalty leave no scoped memory behind and the heap flat", (t) => {
  if (!wasmArenaUsage()) return t.skip("the wasm kernels are not built (js backend only)");
  const { net, params, batch } = smallRun();
  const regs = buildRegularizers({
    l2: 1e-3,
    spectral: 1e-3,
    flatness: 1e-3,
    gc: 1e-3,
    inputNoise: 0.05,
    labelNoise: 0.05,
  });
  assert.equal(regs.length, 6);
  const opt = sgd(0.01, 0.9);
  let state: StepState = { params, opt: opt.init(params), regs: regs.map((r) => r.init(net, params)) };
  const gc = (globalThis as { gc?: () => void }).gc;
  const heapAt: number[] = [];
  for (let step = 0; step < 1000; step++) {
    state = trainStep(net, state, batch, regs, opt, Rng.derive(7, step)).state;
    assert.equal(wasmArenaUsage()!.used, 0, `step ${step} left scoped memory allocated`);
    if (gc && (step === 199 || step === 999)) {
      gc();
      heapAt.push(process.memoryUsage().heapUsed);
    }
  }
  for (const p of Object.values(state.params))
    assert.ok(!getBackendOwns(p.data), "parameters live on the JS heap between steps");
  if (heapAt.length === 2)
    assert.ok(
      heapAt[1] - heapAt[0] < 8 << 20,
      `heap grew by ${((heapAt[1] - heapAt[0]) / 2 ** 20).toFixed(1)} MiB between steps 200 and 1000`,
    );
  assert.ok(wasmArenaUsage()!.peak > 0, "the steps did use resident memory");
});

/** True when data is a view of the wasm memory (a scope's storage). */
function getBackendOwns(data: Float32Array | Float64Array): boolean {
  return typeof SharedArrayBuffer !== "undefined" && data.buffer instanceof SharedArrayBuffer;
}

test("backend: a scope's results are copies on the JS heap, intact after later scopes reuse the memory", (t) => {
  if (!wasm()) return t.skip("the wasm backend is not active");
  const a = new Tensor(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]);
  const kept = scope(() => ({ y: op.relu(op.affine(a, 2, -3)), list: [op.exp(op.scale(a, 0.1))] }));
  scope(() => op.affine(op.matmul(a, a, false, true), 5, 1)); // reuses the released memory
  assert.deepEqual(Array.from(kept.y.data), [0, 1, 3, 5, 7, 9]);
  assert.ok(!getBackendOwns(kept.y.data) && !getBackendOwns(kept.list[0].data));
  assert.ok(Math.abs(kept.list[0].data[5] - Math.exp(0.6)) < 1e-6);
});

test("arena: allocations are zeroed unless asked not to be; unzeroed ones are NaN with poisoning, stale without", () => {
  for (const poison of [false, true]) {
    const arena = new Arena(new WebAssembly.Memory({ initial: 1 }), true, 1024, poison);
    const fill = (v: number) => new Array<number>(8).fill(v);
    arena.run(
      () => {
        const fresh = arena.alloc(8, false)!; // never used memory: 0 unless poisoned
        assert.deepEqual(Array.from(fresh), fill(poison ? NaN : 0));
        fresh.fill(7); // left behind when the scope releases it
      },
      (r) => r,
    );
    arena.run(
      () => {
        assert.deepEqual(Array.from(arena.alloc(8, false)!), fill(poison ? NaN : 7));
        assert.deepEqual(Array.from(arena.alloc(8)!), fill(0));
      },
      (r) => r,
    );
  }
});

test("backend: wasm and js agree to float32 rounding on values, gradients and second derivatives", (t) => {
  if (!wasm()) return t.skip("the wasm backend is not active");
  const rng = new Rng(5);
  const mk = (shape: number[]) =>
    new Tensor(
      Float32Array.from({ length: shape[0] * shape[1] }, () => rng.normal()),
      shape,
    );
  const x = mk([17, 9]),
    w1 = mk([9, 33]),
    w2 = mk([33, 5]);
  const run = () =>
    scope(() => {
      const [v1, v2] = [w1.variable(), w2.variable()];
      const f = op.sumSquares(op.tanh(op.matmul(op.relu(op.matmul(x, v1)), v2)));
      const [g1, g2] = grad(f, [v1, v2], { createGraph: true });
      const [h1] = grad(op.sumSquares(g2), [v1]); // a second-order term (double backprop)
      return { f: f.item(), g1: Array.from(g1.data), g2: Array.from(g2.data), h1: Array.from(h1.data) };
    });
  const onWasm = run();
  const onJs = withBackend("js", run);
  assert.equal(engineInfo().backend, "wasm");
  const close = (a: number[], b: number[], what: string) => {
    const scale = Math.max(...b.map(Math.abs));
    a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= 2e-5 * scale, `${what}[${i}]: wasm ${v} vs js ${b[i]}`));
  };
  assert.ok(Math.abs(onWasm.f - onJs.f) <= 1e-5 * Math.abs(onJs.f));
  close(onWasm.g1, onJs.g1, "∂f/∂W1");
  close(onWasm.g2, onJs.g2, "∂f/∂W2");
  close(onWasm.h1, onJs.h1, "∂‖∂f/∂W2‖²/∂W1");
});

test("backend: exact GC of the same model agrees across backends", (t) => {
  if (!wasm()) return t.skip("the wasm backend is not active");
  const net = compileNetwork({ kind: "mlp", sizes: [2, 32, 32, 2], activation: "tanh" });
  const params = initParams(net, { scheme: "glorot", distribution: "normal", scale: 1, bias: 0, seed: 0 });
  const ds = loadDataset("moons", { split: "test", seed: 0, size: 300 });
  const a = exactGC(net, params, ds).gc,
    b = withBackend("js", () => exactGC(net, params, ds).gc);
  assert.ok(Math.abs(a - b) <= 1e-5 * b, `wasm ${a} vs js ${b}`);
});

test("backend: setBackend rejects unknown names with the choices", () => {
  assert.throws(() => setBackend("cuda"), /unknown backend "cuda" \(choose auto, .*js\)/);
  assert.equal(setBackend("auto").name, wasmArenaUsage() ? "wasm" : "js");
});

test("backend: the same run is bit-identical with one and with two threads, and records its backend", (t) => {
  const dirs = [1, 2].map(() => mkdtempSync(join(tmpdir(), "gcx-threads-")));
  try {
    const args = (out: string) => [
      cli,
      "train",
      "--model",
      "mlp:784-64-64-10",
      "--data",
      "mnist",
      "--limit",
      "512",
      "--steps",
      "30",
      "--batch-size",
      "128",
      "--log-every",
      "10",
      "--gc",
      "0.01",
      "--seed",
      "3",
      "--out",
      out,
    ];
    for (const [i, threads] of ["1", "2"].entries()) {
      const r = spawnSync(process.execPath, args(join(dirs[i], "run")), {
        encoding: "utf8",
        env: { ...process.env, GCX_THREADS: threads },
      });
      assert.equal(r.status, 0, r.stderr);
    }
    const metrics = dirs.map((d) =>
      readFileSync(join(d, "run", "metrics.jsonl"), "utf8").replace(/"seconds[^,}]*[,]?/g, ""),
    );
    assert.equal(metrics[0], metrics[1]);
    const state = readFileSync(join(dirs[0], "run", "checkpoints", "step-00000030", "state.json"), "utf8");
    assert.match(state, /"engine":\{"backend":"(wasm|js)","variant":"[a-z0-9-]+"\}/);
    // A resume on another backend is refused with one line.
    const r = spawnSync(
      process.execPath,
      [cli, "train", "--resume", join(dirs[0], "run"), "--steps", "40", "--backend", "js"],
      { encoding: "utf8" },
    );
    if (wasmArenaUsage()) {
      assert.equal(r.status, 2);
      assert.match(r.stderr, /^gcx: error: run .* was computed on the wasm backend .* resume it with --backend wasm/);
    } else t.diagnostic("js only: no other backend to refuse");
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
});

test("backend: the fused dense layer (matmul + bias + ReLU in one kernel) equals the composite to second order", (t) => {
  if (!wasm()) return t.skip("the wasm backend is not active");
  const rng = new Rng(9);
  const mk = (shape: number[]) =>
    new Tensor(
      Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()),
      shape,
    );
  const x = mk([33, 20]),
    W = mk([40, 20]),
    b = mk([40]),
    V = mk([3, 40]);
  for (const act of ["relu", "none"] as const) {
    const run = () =>
      scope(() => {
        const [xv, wv, bv] = [x.variable(), W.variable(), b.variable()];
        const y = op.matmul(op.linear(xv, wv, bv, act), V, false, true);
        const [gx, gw, gb] = grad(op.sumSquares(op.tanh(y)), [xv, wv, bv], { createGraph: true });
        const [hw] = grad(op.add(op.sumSquares(gx), op.add(op.sumSquares(gw), op.sumSquares(gb))), [wv]);
        return [y, gx, gw, gb, hw].map((v) => Array.from(v.data));
      });
    const fused = run(),
      composite = withBackend("js", run);
    fused.forEach((v, i) => {
      const scale = Math.max(...composite[i].map(Math.abs));
      v.forEach((e, j) =>
        assert.ok(
          Math.abs(e - composite[i][j]) <= 3e-5 * scale,
          `${act} output ${i}[${j}]: ${e} vs ${composite[i][j]}`,
        ),
      );
    });
  }
});

test("the arena's offsets stay exact and 16-byte aligned past 2 GiB (no 32-bit wrap), and stop at the ceiling", () => {
  // A stand-in for 4 GiB of wasm memory: reserve() only reads its size (no views are made here).
  const memory = { buffer: { byteLength: 2 ** 32 } as ArrayBuffer, grow: () => 0 } as unknown as WebAssembly.Memory;
  let full = 0;
  const arena = new Arena(memory, true, 1024, false, () => full++);
  const offsets: number[] = [];
  for (let i = 0; i < 3; i++) offsets.push(arena.reserve(1.1e9 + 3)!);
  assert.deepEqual(offsets, [1024, 1024 + 1100000016, 1024 + 2 * 1100000016]);
  assert.ok(offsets[2] > 2 ** 31, "the third block lies above 2 GiB");
  assert.equal(arena.reserve(1.1e9), null, "past 3.75 GiB: full");
  assert.equal(full, 1);
  arena.release(1024);
  assert.equal(arena.used, 0);
});
