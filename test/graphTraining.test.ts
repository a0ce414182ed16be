/**
 * Training graph models with BatchNorm in training mode (issue 10 part 4), against independent truth:
 * float64 finite differences of the training-mode loss (batch statistics recomputed at every perturbation), a hand
 * computation of PyTorch's running-statistics update, finite differences of the GC penalty with the batch statistics
 * frozen at their unperturbed values (its definition), one torch 1.13 `model.train()` SGD step
 * (scripts/make_bn_step_fixture.py), and end-to-end runs of every regularizer on resnet:8:w4 / Fashion-MNIST.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Tensor } from "../src/engine/tensor.js";
import { grad } from "../src/engine/autograd.js";
import * as op from "../src/engine/ops.js";
import { compileNetwork, forward, type Network, type Params } from "../src/models/network.js";
import type { GraphNodeSpec, GraphSpec } from "../src/models/graphSpec.js";
import { initParams } from "../src/models/init.js";
import { loadModel } from "../src/models/io.js";
import { flatness, gcPenalty, l2, spectral } from "../src/regularizers/index.js";
import type { Batch } from "../src/regularizers/regularizer.js";
import { dataLoss, stepGradients, trainStep, trainableNames } from "../src/training/step.js";
import { adam, sgd } from "../src/training/optimizers.js";
import { parseTrainConfig } from "../src/training/config.js";
import { train } from "../src/training/trainer.js";
import { jacobianSqNormsReverse, probeSqNorms } from "../src/measures/jacobian.js";
import { exactGC } from "../src/measures/gc.js";
import { companionMeasures } from "../src/training/evaluate.js";
import type { Dataset } from "../src/data/dataset.js";
import { loadDataset } from "../src/data/registry.js";
import { Rng } from "../src/util/rng.js";
import { finiteDifferenceGrad, randomTensor, relativeError, SLOW_TEST } from "./helpers.js";
import { gcx, snapshot } from "./cliRun.js";

const tmp = () => mkdtempSync(join(tmpdir(), "gcx-graphtrain-"));

const conv = (name: string, input: string, out: number, bias: boolean): GraphNodeSpec => ({
  name,
  op: "conv2d",
  inputs: [input],
  out,
  kernel: [3, 3],
  stride: [1, 1],
  padding: [1, 1, 1, 1],
  dilation: [1, 1],
  groups: 1,
  bias,
});
const bn = (name: string, input: string, momentum: number): GraphNodeSpec => ({
  name,
  op: "batchnorm",
  inputs: [input],
  eps: 1e-5,
  momentum,
});

/** A tiny residual net with BatchNorm on the input, on images (after convs) and on a vector (count = batch size). */
const TINY: GraphSpec = {
  kind: "graph",
  input: [2, 4, 4],
  nodes: [
    bn("bn0", "input", 0.1),
    conv("conv1", "bn0", 3, true),
    bn("bn1", "conv1", 0.25),
    { name: "act1", op: "tanh", inputs: ["bn1"] },
    conv("conv2", "act1", 3, false),
    bn("bn2", "conv2", 0.1),
    { name: "add", op: "add", inputs: ["bn2", "act1"] },
    { name: "act2", op: "tanh", inputs: ["add"] },
    { name: "pool", op: "global_avgpool", inputs: ["act2"] },
    { name: "flatten", op: "flatten", inputs: ["pool"] },
    bn("bnv", "flatten", 0.5),
    { name: "fc", op: "linear", inputs: ["bnv"], out: 3, bias: true },
  ],
  output: "fc",
};

/** Float64 parameters with non-trivial BatchNorm affine parameters and running statistics. */
function tiny() {
  const net = compileNetwork(TINY);
  const init = initParams(net, {
    scheme: "he",
    distribution: "normal",
    scale: 1,
    bias: 0.1,
    seed: 5,
    dtype: "float64",
  });
  const rng = new Rng(11);
  const params: Params = {};
  for (const info of net.params) {
    const t = init[info.name];
    const d = Float64Array.from(t.data);
    if (info.kind === "scale") d.forEach((_, i) => (d[i] = 1 + 0.3 * rng.normal()));
    if (info.kind === "shift") d.forEach((_, i) => (d[i] = 0.2 * rng.normal()));
    if (info.name.endsWith("running_mean")) d.forEach((_, i) => (d[i] = 0.5 * rng.normal()));
    if (info.name.endsWith("running_var")) d.forEach((_, i) => (d[i] = 0.5 + rng.uniform()));
    if (info.name.endsWith("num_batches_tracked")) d[0] = 3;
    params[info.name] = new Tensor(d, t.shape);
  }
  const batch: Batch = { x: randomTensor([5, 32], rng), labels: Int32Array.from([0, 1, 2, 1, 0]), numOutputs: 3 };
  return { net, params, batch };
}

const TRAINING = { training: true } as const;

/**
 * Per-channel values entering BatchNorm `name`, read from a truncated copy of the graph that outputs the BatchNorm's
 * input (flattened in PyTorch's (C, H, W) order), run in training mode. Returns [channel][value].
 */
function bnInputs(spec: GraphSpec, params: Params, x: Tensor, name: string): number[][] {
  const at = spec.nodes.findIndex((n) => n.name === name);
  const src = spec.nodes[at].inputs[0];
  const nodes = spec.nodes.slice(0, spec.nodes.findIndex((n) => n.name === src) + 1);
  const truncated: GraphSpec = {
    ...spec,
    nodes: [...nodes, { name: "__flat", op: "flatten", inputs: [src] }],
    output: "__flat",
  };
  const y = forward(compileNetwork(truncated), params, x, undefined, TRAINING);
  const n = x.shape[0],
    per = y.shape[1];
  const c = channelsOf(spec, src);
  const hw = per / c;
  const out: number[][] = Array.from({ length: c }, () => []);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++) for (let i = 0; i < hw; i++) out[ch].push(y.data[b * per + ch * hw + i]);
  return out;
}

function channelsOf(spec: GraphSpec, node: string): number {
  if (node === "input") return spec.input[0];
  const net = compileNetwork(spec);
  return net.graph!.nodes.find((n) => n.spec.name === node)!.shape[0];
}

/** Mean, biased and unbiased variance of each channel's values, by hand. */
function moments(values: number[][]) {
  return values.map((v) => {
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const ss = v.reduce((a, b) => a + (b - mean) ** 2, 0);
    return { mean, biased: ss / v.length, unbiased: ss / (v.length - 1), count: v.length };
  });
}

const bnNames = (spec: GraphSpec) => spec.nodes.filter((n) => n.op === "batchnorm").map((n) => n.name);

/** The parameters with every BatchNorm's running statistics set to the batch's (biased) statistics at `params`. */
function frozenAt(spec: GraphSpec, params: Params, x: Tensor): Params {
  const out = { ...params };
  for (const name of bnNames(spec)) {
    const m = moments(bnInputs(spec, params, x, name));
    out[`${name}.running_mean`] = new Tensor(
      Float64Array.from(m, (s) => s.mean),
      [m.length],
    );
    out[`${name}.running_var`] = new Tensor(
      Float64Array.from(m, (s) => s.biased),
      [m.length],
    );
  }
  return out;
}

const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/**
 * Compares the engine's gradient of `trainable` parameters with central finite differences of f. A gradient that
 * is zero (a bias right before a training-mode BatchNorm: the batch mean removes it) is checked as zero.
 */
function checkAgainstFD(
  what: string,
  net: Network,
  params: Params,
  grads: Params,
  f: (p: Params) => number,
  tol: number,
): void {
  for (const k of trainableNames(net, params)) {
    const fd = finiteDifferenceGrad(
      (d) => f({ ...params, [k]: new Tensor(d, params[k].shape) }),
      params[k].data as Float64Array,
    );
    if (maxAbs(fd) < 1e-7) {
      assert.ok(maxAbs(grads[k].data) < 1e-12, `${what}: ${k} should be 0, got ${maxAbs(grads[k].data)}`);
      continue;
    }
    const err = relativeError(grads[k].data, fd);
    assert.ok(err < tol, `${what}: ${k} relative error ${err}`);
  }
}

test("training-mode gradient matches finite differences with batch statistics recomputed; buffers are not differentiated", () => {
  const { net, params, batch } = tiny();
  const g = stepGradients(net, params, [], batch, [], new Rng(1));
  const bufferNames = net.params.filter((p) => p.kind === "buffer").map((p) => p.name);
  assert.equal(bufferNames.length, 4 * 3);
  for (const b of bufferNames) assert.ok(!(b in g.grads), `${b} is not differentiated`);
  assert.deepEqual(
    Object.keys(g.grads).sort(),
    net.params
      .filter((p) => p.kind !== "buffer")
      .map((p) => p.name)
      .sort(),
  );
  // The loss is the training-mode loss (differs from inference mode with these running statistics).
  const train = dataLoss(net, params, batch, TRAINING).loss.item();
  assert.equal(g.loss.item(), train);
  assert.ok(Math.abs(train - dataLoss(net, params, batch).loss.item()) > 1e-3);
  checkAgainstFD("data loss", net, params, g.grads, (p) => dataLoss(net, p, batch, TRAINING).loss.item(), 1e-6);
  // conv1's bias feeds a training-mode BatchNorm, whose batch mean removes it: ∂L/∂b = 0 exactly (not in inference mode).
  assert.ok(maxAbs(g.grads["conv1.bias"].data) < 1e-12);
  const bias = params["conv1.bias"].variable();
  const [inference] = grad(dataLoss(net, { ...params, "conv1.bias": bias }, batch).loss, [bias]);
  assert.ok(maxAbs(inference.data) > 1e-3);
});

test("one SGD step updates BatchNorm buffers as PyTorch does (mean, unbiased variance, momentum, count); optimizers never touch them", () => {
  const { net, params, batch } = tiny();
  for (const optimizer of [sgd(0.1), sgd(0.1, 0.9), adam(0.01)]) {
    const state = { params, opt: optimizer.init(params), regs: [] };
    const r = trainStep(net, state, batch, [], optimizer, new Rng(2));
    for (const name of bnNames(TINY)) {
      const m = moments(bnInputs(TINY, params, batch.x, name));
      const momentum = (TINY.nodes.find((n) => n.name === name) as { momentum: number }).momentum;
      const rm = params[`${name}.running_mean`].data,
        rv = params[`${name}.running_var`].data;
      const wantMean = m.map((s, c) => (1 - momentum) * rm[c] + momentum * s.mean);
      const wantVar = m.map((s, c) => (1 - momentum) * rv[c] + momentum * s.unbiased);
      assert.ok(relativeError(r.state.params[`${name}.running_mean`].data, wantMean) < 1e-12, `${name}.running_mean`);
      assert.ok(relativeError(r.state.params[`${name}.running_var`].data, wantVar) < 1e-12, `${name}.running_var`);
      assert.equal(r.state.params[`${name}.num_batches_tracked`].data[0], 4);
      // count: N·H·W per channel for images, N for the vector BatchNorm
      assert.equal(m[0].count, name === "bnv" ? 5 : 5 * 16);
    }
    // Optimizer state for buffers stays as initialized (zeros), so checkpoints keep a fresh run's arrays.
    for (const [k, v] of Object.entries(r.state.opt.arrays)) {
      if (/running_|num_batches/.test(k))
        assert.ok(
          (v as Float32Array).every((e) => e === 0),
          `optimizer state ${k} untouched`,
        );
    }
    assert.deepEqual(Object.keys(r.state.opt.arrays).sort(), Object.keys(state.opt.arrays).sort());
    assert.deepEqual(Object.keys(r.state.params), Object.keys(params));
  }
  // Plain SGD: trainable parameters move by −lr·∇L exactly.
  const g = stepGradients(net, params, [], batch, [], new Rng(2));
  const r = trainStep(net, { params, opt: sgd(0.1).init(params), regs: [] }, batch, [], sgd(0.1), new Rng(2));
  for (const k of Object.keys(g.grads)) {
    // The optimizer's update is a float32 array (−lr·g rounded), added to θ and rounded again.
    const want = Float32Array.from(params[k].data, (v, i) => v + Math.fround(-0.1 * g.grads[k].data[i]));
    assert.deepEqual(r.state.params[k].data, want, k);
  }
});

test("training-mode GC penalty: gradient equals finite differences of the penalty with batch statistics frozen (exact and probed)", () => {
  const { net, params, batch } = tiny();
  const alpha = 0.7;
  const frozen = frozenAt(TINY, params, batch.x);
  for (const probes of [0, 2]) {
    const reg = gcPenalty(alpha, probes);
    const names = trainableNames(net, params);
    const vars: Params = { ...params };
    for (const k of names) vars[k] = params[k].variable();
    const loss = dataLoss(net, vars, batch, TRAINING).loss;
    const value = reg.penalty!({ net, params: vars, batch, loss, rng: new Rng(9), run: TRAINING }, {}).value;
    const gs = grad(
      value,
      names.map((k) => vars[k]),
    );
    const grads: Params = Object.fromEntries(names.map((k, i) => [k, gs[i]]));
    // The definition: α/(B·P) Σ_b ‖J_b‖² (or probes), BatchNorm normalizing with constants = the unperturbed batch statistics.
    const frozenPenalty = (p: Params) => {
      const q = { ...p };
      for (const name of bnNames(TINY))
        for (const s of ["running_mean", "running_var"]) q[`${name}.${s}`] = frozen[`${name}.${s}`];
      const norms =
        probes === 0
          ? jacobianSqNormsReverse(net, q, batch.x)
          : probeSqNorms(net, q, batch.x, probes, "gaussian", new Rng(9)).reduce((a, t) => op.add(a, t));
      return (alpha / (5 * Math.max(1, probes))) * op.sum(norms).item();
    };
    assert.ok(
      Math.abs(value.item() - frozenPenalty(params)) < 1e-12 * value.item(),
      `value ${value.item()} vs ${frozenPenalty(params)}`,
    );
    checkAgainstFD(`gc penalty (probes ${probes})`, net, params, grads, frozenPenalty, 1e-6);
  }
});

test("training-mode flatness penalty differentiates the training-mode loss; l2 and spectral act on conv/linear weights only", () => {
  const { net, params, batch } = tiny();
  const lambda = 0.3;
  const g = stepGradients(net, params, [{}], batch, [flatness(lambda)], new Rng(1));
  const gradSq = (p: Params) => {
    const names = trainableNames(net, p);
    const vars: Params = { ...p };
    for (const k of names) vars[k] = p[k].variable();
    const gs = grad(
      dataLoss(net, vars, batch, TRAINING).loss,
      names.map((k) => vars[k]),
    );
    return gs.reduce((s, t) => s + op.sumSquares(t).item(), 0);
  };
  assert.ok(Math.abs(g.penalty - lambda * gradSq(params)) < 1e-12 * g.penalty);
  checkAgainstFD(
    "loss + flatness",
    net,
    params,
    g.grads,
    (p) => dataLoss(net, p, batch, TRAINING).loss.item() + lambda * gradSq(p),
    1e-5,
  );
  // l2 and spectral: gradients differ from the plain loss's only in kind "weight" parameters.
  const plain = stepGradients(net, params, [], batch, [], new Rng(1));
  const kinds = new Map(net.params.map((p) => [p.name, p.kind]));
  for (const reg of [l2(0.5), spectral(0.5)]) {
    const r = stepGradients(net, params, [reg.init(net, params)], batch, [reg], new Rng(1));
    for (const [k, t] of Object.entries(r.grads)) {
      const same = relativeError(t.data, plain.grads[k].data) === 0;
      assert.equal(same, kinds.get(k) !== "weight", `${reg.name}: ${k} (${kinds.get(k)})`);
    }
  }
  const wantL2 =
    0.5 * net.params.filter((p) => p.kind === "weight").reduce((s, p) => s + op.sumSquares(params[p.name]).item(), 0);
  assert.ok(
    Math.abs(l2(0.5).penalty!({ net, params, batch, loss: plain.loss, rng: new Rng(1) }, {}).value.item() - wantL2) <
      1e-12 * wantL2,
  );
  assert.deepEqual(Object.keys(spectral(1).init(net, params)).sort(), [
    "conv1.weight.v",
    "conv2.weight.v",
    "fc.weight.v",
  ]);
});

test("logged loss-gradient norm of a graph model: inference mode, trained parameters only (buffers fixed)", () => {
  const { net, params, batch } = tiny();
  const x = Float32Array.from(batch.x.data);
  const p32: Params = Object.fromEntries(
    Object.entries(params).map(([k, t]) => [k, new Tensor(Float32Array.from(t.data), t.shape)]),
  );
  const ds: Dataset = {
    name: "tiny",
    task: "classification",
    inputShape: [32],
    numOutputs: 3,
    n: 5,
    x,
    labels: batch.labels,
  };
  const rec = companionMeasures(net, p32, ds, ["loss-grad"], 0);
  const names = trainableNames(net, p32);
  const vars: Params = { ...p32 };
  for (const k of names) vars[k] = p32[k].variable();
  const gs = grad(
    dataLoss(net, vars, { ...batch, x: new Tensor(x, batch.x.shape) }).loss,
    names.map((k) => vars[k]),
  );
  const want = gs.reduce((s, t) => s + op.sumSquares(t).item(), 0);
  assert.ok(Math.abs((rec.loss_grad_sq as number) - want) < 1e-6 * want, `${rec.loss_grad_sq} vs ${want}`);
});

// ------------------------------------------------------------------------------------------------ torch reference

const fixture = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "test", "fixtures", "torch", "bn_step");

interface StepFixture {
  lr: number;
  x: number[];
  x_shape: number[];
  labels: number[];
  loss: number;
  grads: Record<string, number[]>;
  after: Record<string, number[]>;
}

/** Torch's [out, in, kh, kw] conv layout → ours [out, kh, kw, in] (other tensors are unchanged). */
function toOurs(values: number[], shape: readonly number[]): Float64Array {
  if (shape.length !== 4) return Float64Array.from(values);
  const [o, kh, kw, i] = shape;
  const out = new Float64Array(values.length);
  for (let a = 0; a < o; a++)
    for (let c = 0; c < i; c++)
      for (let h = 0; h < kh; h++)
        for (let w = 0; w < kw; w++) out[((a * kh + h) * kw + w) * i + c] = values[((a * i + c) * kh + h) * kw + w];
  return out;
}

test("torch fixture bn_step: one model.train() SGD step (loss, every gradient, parameters and BN buffers after) agrees with torch 1.13", () => {
  const ref = JSON.parse(readFileSync(join(fixture, "step.json"), "utf8")) as StepFixture;
  const model = loadModel(fixture);
  const n = ref.x_shape[0];
  const batch: Batch = {
    x: new Tensor(Float64Array.from(ref.x), [n, ref.x.length / n]),
    labels: Int32Array.from(ref.labels),
    numOutputs: 3,
  };
  const p64: Params = Object.fromEntries(
    Object.entries(model.params).map(([k, t]) => [k, new Tensor(Float64Array.from(t.data), t.shape)]),
  );
  // float64: the same numbers as torch's float64 step, to rounding.
  const g = stepGradients(model.net, p64, [], batch, [], new Rng(0));
  assert.ok(Math.abs(g.loss.item() - ref.loss) < 1e-12, `loss ${g.loss.item()} vs torch ${ref.loss}`);
  assert.deepEqual(Object.keys(g.grads).sort(), Object.keys(ref.grads).sort());
  for (const [k, t] of Object.entries(g.grads))
    assert.ok(
      relativeError(t.data, toOurs(ref.grads[k], t.shape)) < 1e-9,
      `grad ${k}: ${relativeError(t.data, toOurs(ref.grads[k], t.shape))}`,
    );
  const r64 = trainStep(
    model.net,
    { params: p64, opt: sgd(ref.lr).init(p64), regs: [] },
    batch,
    [],
    sgd(ref.lr),
    new Rng(0),
  );
  // float32 (what a run uses): the loaded weights stepped directly.
  const batch32: Batch = { ...batch, x: new Tensor(Float32Array.from(ref.x), batch.x.shape) };
  const r32 = trainStep(
    model.net,
    { params: model.params, opt: sgd(ref.lr).init(model.params), regs: [] },
    batch32,
    [],
    sgd(ref.lr),
    new Rng(0),
  );
  assert.ok(Math.abs(r32.loss - ref.loss) < 1e-5 * ref.loss);
  assert.deepEqual(Object.keys(r64.state.params).sort(), Object.keys(ref.after).sort());
  for (const [k, t] of Object.entries(r64.state.params)) {
    const want = toOurs(ref.after[k], t.shape);
    const isBuffer = /running_|num_batches/.test(k);
    assert.ok(
      relativeError(t.data, want) < (isBuffer ? 1e-12 : 1e-6),
      `after ${k} (float64 step): ${relativeError(t.data, want)}`,
    );
    assert.ok(
      relativeError(r32.state.params[k].data, want) < 1e-5,
      `after ${k} (float32 step): ${relativeError(r32.state.params[k].data, want)}`,
    );
  }
  assert.equal(r32.state.params["bn1.num_batches_tracked"].data[0], 6);
});

// ------------------------------------------------------------------------------------------------ end to end

const quick = {
  model: "resnet:8:w4",
  data: "fashion-mnist",
  limit: 256,
  evalSize: 64,
  gcSize: 8,
  batchSize: 32,
  lr: 0.1,
  measures: [],
  checkpointEvery: 1000,
};

test(
  "resnet:8:w4 on Fashion-MNIST: every regularizer trains in BatchNorm training mode (loss falls, finite)",
  SLOW_TEST,
  () => {
    const settings: Record<string, Record<string, number>> = {
      none: {},
      l2: { l2: 1e-3 },
      spectral: { spectral: 1e-2 },
      flatness: { flatness: 0.01 },
      "gc (exact)": { gc: 1e-3 },
      "gc (probes)": { gc: 1e-3, gcProbes: 1 },
      "input-noise": { inputNoise: 0.1 },
      "label-noise": { labelNoise: 0.1 },
    };
    for (const [name, v] of Object.entries(settings)) {
      const steps = name.startsWith("gc") || name === "flatness" ? 10 : 20;
      const dir = tmp();
      const losses: number[] = [];
      const r = train(parseTrainConfig({ ...quick, ...v, steps, logEvery: steps, seed: 1 }), dir, {
        onStep: (_s, _t, loss) => losses.push(loss),
      });
      const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
      const first = mean(losses.slice(0, 4)),
        last = mean(losses.slice(-4));
      assert.ok(losses.every(Number.isFinite), `${name}: finite batch losses`);
      assert.ok(last < first, `${name}: batch loss ${first} → ${last}`);
      const rec = r.final;
      for (const k of ["train_loss", "test_loss", "gc_train", "gc_test"])
        assert.ok(Number.isFinite(rec[k]), `${name}: ${k} = ${rec[k]}`);
      const trained = loadModel(join(dir, "model")).params;
      assert.equal(trained["bn1.num_batches_tracked"].data[0], steps, `${name}: one buffer update per step`);
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test("BatchNorm buffers: changed by training, unchanged by gcx measure (inference mode), and a crashed run resumes byte-identically", () => {
  const cfg = parseTrainConfig({
    ...quick,
    steps: 12,
    logEvery: 4,
    checkpointEvery: 4,
    spectral: 0.01,
    inputNoise: 0.1,
    labelNoise: 0.1,
    gc: 1e-3,
    gcProbes: 1,
    seed: 2,
  });
  const a = tmp(),
    b = tmp();
  train(cfg, a);
  train(cfg, b, { stopAfter: 6 }); // dies between checkpoints 4 and 8
  train(null, b);
  assert.equal(readFileSync(join(b, "metrics.jsonl"), "utf8"), readFileSync(join(a, "metrics.jsonl"), "utf8"));
  assert.deepEqual(
    readFileSync(join(b, "model", "weights.safetensors")),
    readFileSync(join(a, "model", "weights.safetensors")),
  );
  const model = loadModel(join(a, "model"));
  const buffers = model.net.params.filter((p) => p.kind === "buffer");
  assert.ok(buffers.length > 0);
  for (const p of buffers) {
    const v = model.params[p.name].data;
    if (p.name.endsWith("num_batches_tracked")) assert.equal(v[0], 12);
    else if (p.name.endsWith("running_mean"))
      assert.ok(
        v.some((e) => e !== 0),
        `${p.name} moved from 0`,
      );
    else
      assert.ok(
        v.some((e) => e !== 1),
        `${p.name} moved from 1`,
      );
  }
  // gcx measure uses the running statistics and leaves the model directory as it was.
  const before = snapshot(join(a, "model"));
  const m = gcx(["measure", "--model", join(a, "model"), "--data", "fashion-mnist", "--limit", "16", "--json"]);
  assert.equal(m.status, 0, m.stderr);
  assert.deepEqual(snapshot(join(a, "model")), before);
  const ds = loadDataset("fashion-mnist", { split: "test", seed: 0, limit: 16 });
  const inference = exactGC(model.net, model.params, ds).gc;
  const measured = (JSON.parse(m.stdout) as { gc: number }).gc;
  assert.ok(Math.abs(measured - inference) < 1e-9 * inference, `measure ${measured} vs inference-mode GC ${inference}`);
  rmSync(a, { recursive: true, force: true });
  rmSync(b, { recursive: true, force: true });
});
