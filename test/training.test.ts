import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Tensor } from "../src/engine/tensor.js";
import { grad } from "../src/engine/autograd.js";
import * as op from "../src/engine/ops.js";
import { compileNetwork, type Params } from "../src/models/network.js";
import { initParams } from "../src/models/init.js";
import { l2, spectral, flatness, gcPenalty } from "../src/regularizers/index.js";
import type { Batch, Regularizer } from "../src/regularizers/regularizer.js";
import { dataLoss } from "../src/training/step.js";
import { parseTrainConfig } from "../src/training/config.js";
import { train } from "../src/training/trainer.js";
import { adam, sgd, chain, addDecayedWeights } from "../src/training/optimizers.js";
import { corruptLabels } from "../src/training/labelCorruption.js";
import { hessianTopEigenvalue, hessianTrace, hessianVectorProduct } from "../src/measures/companions.js";
import { loadDataset } from "../src/data/registry.js";
import { loadModel } from "../src/models/io.js";
import { spectralNorm } from "../src/measures/norms.js";
import { denseJacobianSqNormsDifferentiable } from "../src/measures/denseJacobian.js";
import { jacobianSqNormsReverse } from "../src/measures/jacobian.js";
import { UserError } from "../src/util/errors.js";
import { Rng } from "../src/util/rng.js";
import { finiteDifferenceGrad, randomTensor, relativeError, SLOW_TEST } from "./helpers.js";

const tmp = () => mkdtempSync(join(tmpdir(), "gcx-train-"));

function tiny(activation: "tanh" | "relu" | "sigmoid" | "gelu" = "tanh") {
  const net = compileNetwork({ kind: "mlp", sizes: [3, 5, 4, 3], activation });
  const params = initParams(net, {
    scheme: "he",
    distribution: "normal",
    scale: 1,
    bias: 0.1,
    seed: 3,
    dtype: "float64",
  });
  const rng = new Rng(4);
  const batch: Batch = { x: randomTensor([6, 3], rng), labels: Int32Array.from([0, 1, 2, 0, 1, 2]), numOutputs: 3 };
  return { net, params, batch };
}

/** Gradient of (data loss + penalty) through the engine vs float64 finite differences in every parameter. */
function checkPenaltyGradient(
  name: string,
  make: () => Regularizer,
  tol = 1e-6,
  activation: "tanh" | "relu" | "sigmoid" | "gelu" = "tanh",
): void {
  const { net, params, batch } = tiny(activation);
  const names = Object.keys(params);
  const total = (raw: Params) => {
    // Penalties differentiate the loss inside (flatness), so parameters must be leaves even for plain evaluation.
    const p: Params = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, v.requiresGrad ? v : v.variable()]));
    const { loss } = dataLoss(net, p, batch);
    const r = make();
    return op.add(loss, r.penalty!({ net, params: p, batch, loss, rng: new Rng(9) }, r.init(net, p)).value);
  };
  const vars: Params = Object.fromEntries(names.map((k) => [k, params[k].variable()]));
  const grads = grad(
    total(vars),
    names.map((k) => vars[k]),
  );
  names.forEach((k, i) => {
    const fd = finiteDifferenceGrad(
      (d) => total({ ...params, [k]: new Tensor(d, params[k].shape) }).item(),
      params[k].data as Float64Array,
    );
    const err = relativeError(grads[i].data, fd);
    assert.ok(err < tol, `${name}: ${k} relative error ${err}`);
  });
}

test("penalty gradients match float64 finite differences: l2, flatness, exact gc, probed gc", () => {
  checkPenaltyGradient("l2", () => l2(0.3));
  checkPenaltyGradient("flatness", () => flatness(0.7));
  checkPenaltyGradient("gc exact", () => gcPenalty(0.2));
  checkPenaltyGradient("gc probes", () => gcPenalty(0.2, 3));
  // ReLU networks take the closed-form path (denseJacobianSqNormsDifferentiable) instead of double backprop.
  checkPenaltyGradient("gc exact, relu", () => gcPenalty(0.2), 1e-6, "relu");
  checkPenaltyGradient("flatness, relu", () => flatness(0.7), 1e-6, "relu");
  // sigmoid and gelu: σ' depends on the weights, so the GC penalty goes through double backprop.
  checkPenaltyGradient("gc exact, sigmoid", () => gcPenalty(0.2), 1e-6, "sigmoid");
  checkPenaltyGradient("gc exact, gelu", () => gcPenalty(0.2), 1e-6, "gelu");
});

test("closed-form GC penalty of a ReLU MLP equals the double-backprop one, value and gradient", () => {
  const { net, params, batch } = tiny("relu");
  const vars: Params = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, v.variable()]));
  const closed = op.sum(denseJacobianSqNormsDifferentiable(net, vars, batch.x)!);
  const reference = op.sum(jacobianSqNormsReverse(net, vars, batch.x, "logits", true));
  assert.ok(relativeError([closed.item()], [reference.item()]) < 1e-12);
  const names = Object.keys(vars);
  const g1 = grad(
      closed,
      names.map((k) => vars[k]),
    ),
    g2 = grad(
      reference,
      names.map((k) => vars[k]),
    );
  names.forEach((k, i) =>
    assert.ok(relativeError(g1[i].data, g2[i].data) < 1e-10 || op.sumSquares(g2[i]).item() === 0, k),
  );
  for (const act of ["tanh", "sigmoid", "gelu"] as const) {
    assert.equal(
      denseJacobianSqNormsDifferentiable(tiny(act).net, vars, batch.x),
      null,
      `${act} needs double backprop`,
    );
  }
});

test("spectral penalty gradient matches finite differences of λ·Σσ_max² once power iteration has converged", () => {
  const { net, params, batch } = tiny();
  const reg = spectral(0.5, 500);
  const vars: Params = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, v.variable()]));
  const { loss } = dataLoss(net, vars, batch);
  const pen = reg.penalty!({ net, params: vars, batch, loss, rng: new Rng(1) }, reg.init(net, params));
  const [g] = grad(pen.value, [vars["layers.1.weight"]]);
  const w = params["layers.1.weight"];
  const fd = finiteDifferenceGrad((d) => 0.5 * spectralNorm(new Tensor(d, w.shape), 2000) ** 2, w.data as Float64Array);
  assert.ok(relativeError(g.data, fd) < 1e-5, `relative error ${relativeError(g.data, fd)}`);
  const exact = Object.keys(params)
    .filter((k) => k.endsWith("weight"))
    .reduce((s, k) => s + spectralNorm(params[k], 2000) ** 2, 0);
  assert.ok(Math.abs(pen.value.item() / (0.5 * exact) - 1) < 1e-6);
});

test("Hutchinson trace and power-iteration top eigenvalue agree with the exact Hessian of a tiny network", () => {
  const { net, params, batch } = tiny();
  const lossOf = (p: Params) => dataLoss(net, p, batch).loss;
  // Exact Hessian, column by column, from finite differences of the float64 gradient (independent of HVPs).
  const names = Object.keys(params);
  const sizes = names.map((k) => params[k].size);
  const n = sizes.reduce((a, b) => a + b, 0);
  const flat = new Float64Array(n);
  let o = 0;
  for (const k of names) {
    flat.set(params[k].data, o);
    o += params[k].size;
  }
  const unflat = (v: Float64Array): Params => {
    const p: Params = {};
    let at = 0;
    names.forEach((k, i) => {
      p[k] = new Tensor(v.slice(at, at + sizes[i]), params[k].shape);
      at += sizes[i];
    });
    return p;
  };
  const gradAt = (v: Float64Array) => {
    const p = unflat(v);
    const vars = Object.fromEntries(names.map((k) => [k, p[k].variable()]));
    const gs = grad(
      lossOf(vars),
      names.map((k) => vars[k]),
    );
    return Float64Array.from(gs.flatMap((g) => Array.from(g.data)));
  };
  const H: number[][] = [];
  const eps = 1e-5;
  for (let j = 0; j < n; j++) {
    const a = Float64Array.from(flat),
      b = Float64Array.from(flat);
    a[j] += eps;
    b[j] -= eps;
    const ga = gradAt(a),
      gb = gradAt(b);
    H.push(Array.from(ga, (v, i) => (v - gb[i]) / (2 * eps)));
  }
  const trace = H.reduce((s, row, i) => s + row[i], 0);
  // Top |eigenvalue| of the explicit matrix by many power iterations.
  let v = Array.from({ length: n }, (_, i) => Math.sin(i + 1));
  let lambda = 0;
  for (let it = 0; it < 3000; it++) {
    const hv = H.map((row) => row.reduce((s, h, j) => s + h * v[j], 0));
    lambda = hv.reduce((s, x, i) => s + x * v[i], 0) / v.reduce((s, x) => s + x * x, 0);
    const norm = Math.sqrt(hv.reduce((s, x) => s + x * x, 0));
    v = hv.map((x) => x / norm);
  }
  // HVP against the explicit matrix on a random vector
  const r = randomTensor([n], new Rng(5));
  const hvp = hessianVectorProduct(
    params,
    lossOf,
    names.map(
      (k, i) =>
        new Tensor(
          r.data.slice(
            sizes.slice(0, i).reduce((a, b) => a + b, 0),
            sizes.slice(0, i + 1).reduce((a, b) => a + b, 0),
          ),
          params[k].shape,
        ),
    ),
  );
  const hvpFlat = hvp.flatMap((t) => Array.from(t.data));
  assert.ok(
    relativeError(
      hvpFlat,
      H.map((row) => row.reduce((s, h, j) => s + h * r.data[j], 0)),
    ) < 1e-5,
  );
  const eig = hessianTopEigenvalue(params, lossOf, 300, 1);
  assert.ok(Math.abs(eig / lambda - 1) < 1e-3, `power iteration ${eig} vs ${lambda}`);
  const draws = Array.from({ length: 40 }, (_, s) => hessianTrace(params, lossOf, 10, 100 + s).trace);
  const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
  const se = Math.sqrt(draws.reduce((a, b) => a + (b - mean) ** 2, 0) / (draws.length - 1) / draws.length);
  assert.ok(Math.abs(mean - trace) < 3 * se + 1e-9, `Hutchinson ${mean} ± ${se} vs exact ${trace}`);
});

test("optimizers: SGD with momentum and Adam follow their textbook first steps; chain adds weight decay first", () => {
  const p = { w: new Tensor(Float32Array.from([1, -2]), [2]) };
  const g = { w: new Tensor(Float32Array.from([0.5, -4]), [2]) };
  const s = sgd(0.1, 0.9);
  let st = s.init(p);
  let r = s.update(g, st, p);
  assert.deepEqual(Array.from(r.updates.w.data), [Math.fround(-0.05), Math.fround(0.4)]);
  r = s.update(g, r.state, p);
  assert.ok(Math.abs(r.updates.w.data[0] - -0.1 * (0.9 * 0.5 + 0.5)) < 1e-7);
  const a = adam(0.01);
  const ra = a.update(g, a.init(p), p);
  // First Adam step moves each coordinate by lr·sign(g) (bias-corrected m/√v = g/|g|).
  assert.ok(Math.abs(ra.updates.w.data[0] + 0.01) < 1e-6 && Math.abs(ra.updates.w.data[1] - 0.01) < 1e-6);
  const c = chain(addDecayedWeights(0.5), sgd(1));
  st = c.init(p);
  assert.deepEqual(Array.from(c.update(g, st, p).updates.w.data), [-(0.5 + 0.5), -(-4 - 1)]);
});

test("fixed label corruption changes about the requested fraction of labels, deterministically", () => {
  const ds = loadDataset("mnist", { split: "train", seed: 0, limit: 2000 });
  const c = corruptLabels(ds, 0.5, 1);
  const changed = c.labels!.reduce((s, l, i) => s + (l !== ds.labels![i] ? 1 : 0), 0);
  assert.ok(changed > 2000 * 0.5 * 0.85 && changed < 2000 * 0.5 * 0.95, `changed ${changed}`);
  assert.deepEqual(corruptLabels(ds, 0.5, 1).labels, c.labels);
});

const quick = { data: "moons", model: "mlp:2-16-16-2", size: 200, evalSize: 200, gcSize: 100, lr: 0.1, batchSize: 32 };

test("T1, T2 and T3 bounds hold at every logged step of a training run", () => {
  const dir = tmp();
  train(parseTrainConfig({ ...quick, steps: 200, logEvery: 20, l2: 1e-3 }), dir);
  const lines = readFileSync(join(dir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.equal(lines.length, 11);
  for (const r of lines) {
    assert.ok(r.gc_train <= r.prod_frobenius_sq, `T1 at step ${r.step}`);
    assert.ok(r.gc_train <= r.lipschitz_bound, `T2 at step ${r.step}`);
    assert.ok(r.gc_train <= r.t3_bound * (1 + 1e-6), `T3 at step ${r.step}: ${r.gc_train} > ${r.t3_bound}`);
    assert.ok(r.param_grad_sq > 0 && r.loss_grad_sq >= 0);
  }
  assert.ok(lines[10].train_loss < lines[0].train_loss, "training lowers the loss");
});

test("resume after a crash gives the same weights and metrics as an uninterrupted run", () => {
  const cfg = parseTrainConfig({
    ...quick,
    steps: 60,
    logEvery: 10,
    checkpointEvery: 20,
    spectral: 0.01,
    inputNoise: 0.1,
    labelNoise: 0.1,
    optimizer: "adam",
    lr: 0.01,
  });
  const a = tmp(),
    b = tmp();
  train(cfg, a);
  train(cfg, b, { stopAfter: 33 }); // dies between checkpoints 20 and 40
  train(null, b);
  assert.equal(readFileSync(join(b, "metrics.jsonl"), "utf8"), readFileSync(join(a, "metrics.jsonl"), "utf8"));
  const wa = loadModel(join(a, "model")).params,
    wb = loadModel(join(b, "model")).params;
  for (const k of Object.keys(wa)) assert.deepEqual(wb[k].data, wa[k].data, k);
  assert.throws(
    () => train(cfg, a),
    (e) => e instanceof UserError && e.message.includes("already holds a run"),
  );
});

function finalGC(over: Record<string, unknown>, seeds: number[]): number {
  let s = 0;
  for (const seed of seeds) {
    const dir = tmp();
    s += train(parseTrainConfig({ measures: [], checkpointEvery: 100000, ...over, seed }), dir).final
      .gc_train as number;
    rmSync(dir, { recursive: true, force: true });
  }
  return s / seeds.length;
}

test("each regularizer at a strong setting ends with lower GC than the unregularized baseline", () => {
  const base = {
    data: "spirals",
    model: "mlp:2-32-32-3",
    size: 300,
    evalSize: 300,
    gcSize: 300,
    steps: 400,
    logEvery: 400,
    lr: 0.1,
    batchSize: 32,
  };
  const seeds = [0, 1];
  const baseline = finalGC(base, seeds);
  const strong: Record<string, Record<string, number>> = {
    l2: { l2: 0.01 },
    spectral: { spectral: 0.05 },
    flatness: { flatness: 0.5 },
    gc: { gc: 0.01 },
    "gc (probes)": { gc: 0.01, gcProbes: 2 },
    "input-noise": { inputNoise: 0.3 },
    "label-noise": { labelNoise: 0.5 },
  };
  for (const [name, v] of Object.entries(strong)) {
    const gc = finalGC({ ...base, ...v }, seeds);
    assert.ok(gc < 0.8 * baseline, `${name}: GC ${gc} vs baseline ${baseline}`);
  }
});

test(
  "implicit regularization: larger learning rate (same lr·steps) and smaller batch end with lower GC",
  SLOW_TEST,
  () => {
    const base = { data: "circles", model: "mlp:2-64-64-2", size: 200, evalSize: 200, gcSize: 200 };
    const seeds = [0, 1, 2];
    const smallLr = finalGC({ ...base, lr: 0.02, steps: 3000, logEvery: 3000, batchSize: 200 }, seeds);
    const bigLr = finalGC({ ...base, lr: 0.5, steps: 120, logEvery: 120, batchSize: 200 }, seeds);
    assert.ok(bigLr < smallLr, `lr 0.5: ${bigLr} vs lr 0.02: ${smallLr}`);
    const bigBatch = finalGC({ ...base, lr: 0.1, steps: 1000, logEvery: 1000, batchSize: 200 }, seeds);
    const smallBatch = finalGC({ ...base, lr: 0.1, steps: 1000, logEvery: 1000, batchSize: 4 }, seeds);
    assert.ok(smallBatch < bigBatch, `batch 4: ${smallBatch} vs batch 200: ${bigBatch}`);
  },
);

test("an invalid config lists one line per problem and the CLI exits 2", () => {
  assert.throws(
    () => parseTrainConfig({ lr: -1, batchSize: 0, bogus: 1 }),
    (e) => e instanceof UserError && e.message.split("\n").length === 3,
  );
  const main = join(fileURLToPath(new URL(".", import.meta.url)), "..", "src", "cli", "main.js");
  const dir = tmp();
  const cfgFile = join(dir, "c.yaml");
  writeFileSync(cfgFile, "lr: -1\nbatchSize: 0\n");
  const r = spawnSync(process.execPath, [main, "train", "--config", cfgFile, "--out", join(dir, "run")], {
    encoding: "utf8",
  });
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim().split("\n").length, 2, r.stderr);
  assert.match(r.stderr, /lr/);
  assert.match(r.stderr, /batchSize/);
});

test(
  "no leak: hundreds of training steps with every penalty do not grow the heap",
  { skip: typeof globalThis.gc !== "function" && "needs --expose-gc" },
  async () => {
    const { trainStep } = await import("../src/training/step.js");
    const { buildRegularizers } = await import("../src/regularizers/index.js");
    const net = compileNetwork({ kind: "mlp", sizes: [20, 32, 32, 5], activation: "relu" });
    const params = initParams(net, { scheme: "he", distribution: "normal", scale: 1, bias: 0, seed: 1 });
    const regs = buildRegularizers({
      l2: 1e-3,
      spectral: 1e-3,
      flatness: 1e-2,
      gc: 1e-3,
      inputNoise: 0.1,
      labelNoise: 0.1,
    });
    const opt = adam(1e-3);
    const rng = new Rng(2);
    const batch: Batch = {
      x: new Tensor(
        Float32Array.from({ length: 64 * 20 }, () => rng.normal()),
        [64, 20],
      ),
      labels: Int32Array.from({ length: 64 }, () => rng.int(5)),
      numOutputs: 5,
    };
    let state = { params, opt: opt.init(params), regs: regs.map((r) => r.init(net, params)) };
    const run = (n: number) => {
      for (let i = 0; i < n; i++) state = trainStep(net, state, batch, regs, opt, Rng.derive(0, i)).state;
    };
    const heap = () => {
      // Twice: the first full collection can leave weak-map entries (transpose and Gram caches) for the second.
      globalThis.gc!();
      globalThis.gc!();
      return process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    };
    run(20);
    const before = heap();
    run(300);
    const grown = heap() - before;
    // One step's graph is ~0.5 MB; keeping even a tenth of 300 of them would exceed this.
    assert.ok(grown < 4e6, `heap grew by ${grown} bytes over 300 steps`);
  },
);
