// The fused forward-mode Jacobian kernel (assembly/jacobian.ts) against the JS measures (denseJacobianSqNorms,
// jacobianSqNormsForward) and float64 finite differences, for relu, tanh and identity MLPs of odd widths.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { Tensor } from "../src/engine/tensor.js";
import { compileNetwork, type Network, type Params } from "../src/models/network.js";
import { initParams } from "../src/models/init.js";
import type { ModelSpec } from "../src/models/spec.js";
import { denseJacobianSqNorms } from "../src/measures/denseJacobian.js";
import { jacobianSqNormsForward } from "../src/measures/jacobian.js";
import { Rng } from "../src/util/rng.js";
import { finiteDifferenceJacobianSq } from "./helpers.js";
import { loadHarness, type WasmHarness } from "./wasmHarness.js";
import { setBackend } from "../src/engine/backend.js";
import { gcx } from "./cliRun.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { wasmRuntime } from "../src/engine/wasmKernels.js";
import { loadDataset } from "../src/data/registry.js";
import { exactGC } from "../src/measures/gc.js";
import { saveModel } from "../src/models/io.js";
import { parseModelArg } from "../src/models/resolve.js";

// The references are the JS kernels: run the engine on its JS backend whatever the default backend is.
setBackend("js");

const ACT = { identity: 0, relu: 1, tanh: 2 } as const;

/** Puts the network's dense layers into harness memory; returns the layer-table pointer and count. */
function putLayers(h: WasmHarness, net: Network, params: Params): { table: number; count: number } {
  const dense = net.layers.filter((l) => l.type === "dense") as { index: number; inSize: number; outSize: number }[];
  const rows: number[] = [];
  for (const l of dense) {
    const w = h.put(params[`layers.${l.index}.weight`].data),
      b = h.put(params[`layers.${l.index}.bias`].data);
    rows.push(w, b, l.inSize, l.outSize);
  }
  const table = h.alloc(rows.length);
  new Int32Array(h.memory.buffer, table, rows.length).set(rows);
  return { table, count: dense.length };
}

function wasmSqNorms(
  h: WasmHarness,
  net: Network,
  params: Params,
  x: Float32Array,
  act: number,
  splits: number[],
  output = 0,
): Float64Array {
  const n = x.length / net.inputSize,
    d = net.inputSize;
  const { table, count } = putLayers(h, net, params);
  const xp = h.put(x);
  const scratchBytes = h.exports.jacobian_mlp_scratch_bytes(d, table, count) as number;
  const out = h.alloc(2 * n);
  const bounds = [0, ...splits, n];
  for (let s = 0; s + 1 < bounds.length; s++) {
    const scratch = h.alloc(scratchBytes / 4); // one per "thread"
    const kernel = output === 1 ? h.exports.jacobian_mlp_sqnorms_softmax : h.exports.jacobian_mlp_sqnorms;
    kernel(xp, d, table, count, act, scratch, out, bounds[s], bounds[s + 1]);
  }
  return new Float64Array(h.memory.buffer.slice(out, out + 8 * n));
}

const specs: [string, ModelSpec & { kind: "mlp" }][] = [
  ["MLP2D relu 2-64-64-2", { kind: "mlp", sizes: [2, 64, 64, 2], activation: "relu" }],
  ["tanh 2-37-21-5", { kind: "mlp", sizes: [2, 37, 21, 5], activation: "tanh" }],
  ["relu 5-7-6-3 (two tangent groups)", { kind: "mlp", sizes: [5, 7, 6, 3], activation: "relu" }],
  ["identity 3-4-2", { kind: "mlp", sizes: [3, 4, 2], activation: "identity" }],
  ["tanh 1-8-4 (d = 1)", { kind: "mlp", sizes: [1, 8, 4], activation: "tanh" }],
  ["relu 2-16-33-17-10 (four layers)", { kind: "mlp", sizes: [2, 16, 33, 17, 10], activation: "relu" }],
  ["single layer 4-3", { kind: "mlp", sizes: [4, 3], activation: "relu" }],
];

for (const [name, spec] of specs) {
  test(`wasm fused Jacobian, ${name}: matches the JS measures, float64 finite differences, and any row split`, (t) => {
    const h = loadHarness();
    if (!h) return t.skip("dist/wasm/kernels.wasm not built");
    const net = compileNetwork(spec);
    const params = initParams(net, {
      scheme: "he",
      distribution: "normal",
      scale: 1,
      bias: 0.1,
      seed: 21,
      dtype: "float32",
    });
    const params64: Params = Object.fromEntries(
      Object.entries(params).map(([k, v]) => [k, new Tensor(Float64Array.from(v.data), v.shape)]),
    );
    const rng = new Rng(22);
    const n = 37,
      d = net.inputSize;
    const x = Float32Array.from({ length: n * d }, () => rng.normal());
    const act = ACT[spec.activation as keyof typeof ACT];
    const got = wasmSqNorms(h, net, params, x, act, []);
    const dense = denseJacobianSqNorms(net, params, new Tensor(x, [n, d]));
    const fwd = jacobianSqNormsForward(net, params64, new Tensor(Float64Array.from(x), [n, d]));
    let worst = 0;
    for (let e = 0; e < n; e++) {
      assert.ok(Number.isFinite(got[e]) && got[e] >= 0, `example ${e}: ${got[e]}`); // 0 where every unit of a layer is off
      if (fwd[e] > 0) worst = Math.max(worst, Math.abs(got[e] - fwd[e]) / fwd[e]);
      else assert.equal(got[e], 0, `example ${e}: float64 norm is 0`);
      assert.ok(Math.abs(got[e] - dense[e]) <= 1e-5 * dense[e], `example ${e}: wasm ${got[e]} vs JS dense ${dense[e]}`);
    }
    assert.ok(worst <= 1e-5, `relative error vs float64 forward mode ${worst}`);
    t.diagnostic(`max relative error vs float64: ${worst.toExponential(2)}`);
    for (const e of [0, 17, n - 1]) {
      const fd = finiteDifferenceJacobianSq(net, params64, Float64Array.from(x.subarray(e * d, (e + 1) * d)));
      assert.ok(Math.abs(got[e] - fd) <= 1e-5 * fd + 1e-12, `example ${e}: wasm ${got[e]} vs finite differences ${fd}`);
    }
    // Any split of the rows (threads) gives the same bits.
    h.reset();
    const split = wasmSqNorms(h, net, params, x, act, [1, 9, 10, 30]);
    assert.deepEqual(Array.from(split), Array.from(got));
    // The softmax output's Jacobian.
    h.reset();
    const soft = wasmSqNorms(h, net, params, x, act, [5], 1);
    const softJs = jacobianSqNormsForward(net, params64, new Tensor(Float64Array.from(x), [n, d]), "softmax");
    for (let e = 0; e < n; e++) {
      const msg = `softmax example ${e}: wasm ${soft[e]} vs float64 ${softJs[e]}`;
      assert.ok(Math.abs(soft[e] - softJs[e]) <= 1e-5 * softJs[e] + 1e-12, msg);
    }
  });
}

test("wasm fused Jacobian on the shared-memory build: two worker threads give the single-thread bits", async (t) => {
  const h = loadHarness("kernels-shared.wasm");
  if (!h) return t.skip("dist/wasm/kernels-shared.wasm not built");
  const net = compileNetwork({ kind: "mlp", sizes: [2, 64, 64, 2], activation: "relu" });
  const params = initParams(net, {
    scheme: "he",
    distribution: "normal",
    scale: 1,
    bias: 0.1,
    seed: 31,
    dtype: "float32",
  });
  const rng = new Rng(32);
  const n = 301;
  const x = Float32Array.from({ length: n * 2 }, () => rng.normal());
  const single = wasmSqNorms(h, net, params, x, ACT.relu, []);
  h.reset();
  const { table, count } = putLayers(h, net, params);
  const xp = h.put(x),
    out = h.alloc(2 * n);
  const bytes = h.exports.jacobian_mlp_scratch_bytes(2, table, count) as number;
  const scratches = [h.alloc(bytes / 4), h.alloc(bytes / 4)];
  const module = new WebAssembly.Module(readFileSync(new URL("../wasm/kernels-shared.wasm", import.meta.url)));
  const code = `
    const { parentPort, workerData: w } = require("node:worker_threads");
    const inst = new WebAssembly.Instance(w.module, { env: { memory: w.memory, abort() { throw new Error("abort"); } } });
    inst.exports.jacobian_mlp_sqnorms(w.xp, 2, w.table, w.count, 1, w.scratch, w.out, w.r0, w.r1);
    parentPort.postMessage("done");`;
  const split = 150;
  await Promise.all(
    [
      [0, split],
      [split, n],
    ].map(
      ([r0, r1], i) =>
        new Promise<void>((resolve, reject) => {
          const workerData = { module, memory: h.memory, xp, table, count, scratch: scratches[i], out, r0, r1 };
          const worker = new Worker(code, { eval: true, workerData });
          worker.once("message", () => void worker.terminate().then(() => resolve(), reject));
          worker.once("error", reject);
        }),
    ),
  );
  const threaded = new Float64Array(h.memory.buffer.slice(out, out + 8 * n));
  assert.deepEqual(Array.from(threaded), Array.from(single));
});

test("the fused small-MLP Jacobian shared by two threads gives one thread's bits (in process vs GCX_THREADS=1)", async (t) => {
  const rt = wasmRuntime();
  if (!rt || rt.threads !== 2) return t.skip("no two-thread wasm runtime here");
  for (let i = 0; i < 100 && !rt.helperReady(); i++) await new Promise((res) => setTimeout(res, 50));
  assert.ok(rt.helperReady(), "the helper thread started");
  setBackend("wasm");
  const ds = loadDataset("moons", { split: "test", seed: 0, limit: 1000 });
  for (const spec of ["mlp:2-64-64-2", "mlp:2-32-32-32-2:tanh"]) {
    const parsed = parseModelArg(spec, ds);
    const net = compileNetwork(parsed);
    const params = initParams(net, { scheme: "he", distribution: "normal", scale: 1, bias: 0, seed: 4 });
    const dir = mkdtempSync(join(tmpdir(), "gcx-jac-threads-"));
    try {
      saveModel(dir, parsed, params);
      const two = exactGC(net, params, ds, { mode: "forward", batchSize: 1000 }).gc; // both threads
      const r = gcx(
        ["measure", "--model", dir, "--data", "moons", "--split", "test", "--seed", "0", "--limit", "1000"].concat([
          "--mode",
          "forward",
          "--batch-size",
          "1000",
          "--json",
        ]),
        { env: { ...process.env, GCX_THREADS: "1" } },
      );
      assert.equal(r.status, 0, r.stderr);
      assert.equal((JSON.parse(r.stdout) as { gc: number }).gc, two, spec);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});
