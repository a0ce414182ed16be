/**
 * Graph models (issue 10): compile checks, the built-in residual nets, agreement with the MLP/CNN chains on the
 * same functions, Jacobians against float64 finite differences (BatchNorm in inference mode), and file round trips.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tensor } from "../src/engine/tensor.js";
import { noGrad } from "../src/engine/graph.js";
import { compileNetwork, forward, type Params } from "../src/models/network.js";
import { inferenceFusions } from "../src/models/graph.js";
import { initParams } from "../src/models/init.js";
import { loadModel, saveModel } from "../src/models/io.js";
import { resnetSpec } from "../src/models/zoo.js";
import { parseModelSpec, type GraphSpec, type ModelSpec } from "../src/models/spec.js";
import { jacobianSqNormsReverse } from "../src/measures/jacobian.js";
import { exactGC } from "../src/measures/gc.js";
import { weightNorms } from "../src/measures/norms.js";
import { loadDataset } from "../src/data/registry.js";
import { UserError } from "../src/util/errors.js";
import { Rng } from "../src/util/rng.js";
import { relativeError } from "./helpers.js";

const f64 = {
  scheme: "he" as const,
  distribution: "normal" as const,
  scale: 1,
  bias: 0.05,
  seed: 1,
  dtype: "float64" as const,
};

function trainableCount(spec: ModelSpec): number {
  return compileNetwork(spec)
    .params.filter((p) => p.kind !== "buffer")
    .reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0);
}

/** Non-trivial BatchNorm statistics and affine parameters, so BatchNorm really changes the function. */
function randomizeNorms(spec: ModelSpec, params: Params, seed: number): void {
  const rng = new Rng(seed);
  for (const p of compileNetwork(spec).params) {
    const d = params[p.name].data;
    if (p.name.endsWith(".running_mean") || p.kind === "shift")
      for (let i = 0; i < d.length; i++) d[i] = 0.3 * rng.normal();
    if (p.name.endsWith(".running_var")) for (let i = 0; i < d.length; i++) d[i] = 0.5 + rng.uniformIn(0, 1);
    if (p.kind === "scale") for (let i = 0; i < d.length; i++) d[i] = 1 + 0.3 * rng.normal();
  }
}

test("resnet:18 (CIFAR variant) has the known parameter count; resnet:8/20 and :wN compile", () => {
  // torchvision-style CIFAR ResNet-18 with 3 input channels and 10 classes has 11,173,962 parameters; one input
  // channel removes 2·64·3·3 = 1,152 stem weights.
  assert.equal(trainableCount(resnetSpec(18, [3, 32, 32], 10)), 11_173_962);
  assert.equal(trainableCount(resnetSpec(18, [1, 28, 28], 10)), 11_172_810);
  // He et al.'s ResNet-20 has 0.27M parameters (with projection shortcuts a little more than option A's 269,722).
  const r20 = trainableCount(resnetSpec(20, [3, 32, 32], 10));
  assert.ok(r20 > 269_722 && r20 < 280_000, String(r20));
  const small = compileNetwork(resnetSpec(18, [1, 28, 28], 10, 16));
  assert.equal(small.params.find((p) => p.name === "layer4.1.conv2.weight")?.shape[0], 128); // widths 16-32-64-128
  assert.equal(small.outputSize, 10);
  for (const name of [
    "bn1.running_mean",
    "bn1.running_var",
    "bn1.num_batches_tracked",
    "layer2.0.downsample.0.weight",
    "fc.weight",
  ]) {
    assert.ok(
      small.params.some((p) => p.name === name),
      name,
    );
  }
});

test("graph mistakes are one-line user errors naming the node", () => {
  const base: GraphSpec = {
    kind: "graph",
    input: [4],
    nodes: [{ name: "fc", op: "linear", inputs: ["input"], out: 2, bias: true }],
    output: "fc",
  };
  const bad: [unknown, RegExp][] = [
    [
      { ...base, nodes: [{ name: "fc", op: "linear", inputs: ["nope"], out: 2 }] },
      /input "nope" is not an earlier node/,
    ],
    [{ ...base, nodes: [...base.nodes, { name: "fc", op: "relu", inputs: ["fc"] }] }, /the name "fc" is used twice/],
    [{ ...base, output: "missing" }, /output "missing" is not a node/],
    [
      { ...base, nodes: [{ name: "c", op: "conv2d", inputs: ["input"], out: 2, kernel: [3, 3] }] },
      /needs an image input/,
    ],
    [
      {
        kind: "graph",
        input: [1, 4, 4],
        nodes: [{ name: "c", op: "conv2d", inputs: ["input"], out: 2, kernel: [5, 5] }],
        output: "c",
      },
      /does not fit/,
    ],
  ];
  for (const [spec, pattern] of bad) {
    const r = parseModelSpec(spec);
    assert.ok(r.ok, JSON.stringify(r));
    assert.throws(
      () => compileNetwork(r.spec),
      (e: unknown) => e instanceof UserError && pattern.test(e.message) && !e.message.includes("\n"),
    );
  }
});

test("a graph MLP computes the same GC as the mlp chain with the same weights", () => {
  const chain = compileNetwork({ kind: "mlp", sizes: [2, 16, 16, 3], activation: "tanh" });
  const params = initParams(chain, f64);
  const graph: GraphSpec = {
    kind: "graph",
    input: [2],
    nodes: [
      { name: "l0", op: "linear", inputs: ["input"], out: 16, bias: true },
      { name: "a0", op: "tanh", inputs: ["l0"] },
      { name: "l1", op: "linear", inputs: ["a0"], out: 16, bias: true },
      { name: "a1", op: "tanh", inputs: ["l1"] },
      { name: "l2", op: "linear", inputs: ["a1"], out: 3, bias: true },
    ],
    output: "l2",
  };
  const gnet = compileNetwork(graph);
  const gparams: Params = {};
  for (let i = 0; i < 3; i++) for (const s of ["weight", "bias"]) gparams[`l${i}.${s}`] = params[`layers.${i}.${s}`];
  const ds = loadDataset("spirals", { split: "test", seed: 0, limit: 64 });
  const a = exactGC(chain, params, ds).gc,
    b = exactGC(gnet, gparams, ds).gc;
  assert.ok(Math.abs(a - b) < 1e-6 * a, `${a} vs ${b}`); // the chain takes its closed-form path on float32 inputs
  assert.equal(weightNorms(gnet, gparams).prod_frobenius_sq, null, "bounds are not reported for graph models");
});

test("a graph CNN with padding 1 equals the cnn chain's 'same' convolution (stride 1) after reordering the flatten", () => {
  const cnn = compileNetwork({
    kind: "cnn",
    input: [6, 6, 1],
    layers: [
      { type: "conv", filters: 3, kernel: 3, stride: 1, padding: "same" },
      { type: "relu" },
      { type: "flatten" },
      { type: "dense", units: 4 },
    ],
  });
  const params = initParams(cnn, f64);
  const graph: GraphSpec = {
    kind: "graph",
    input: [1, 6, 6],
    nodes: [
      {
        name: "conv",
        op: "conv2d",
        inputs: ["input"],
        out: 3,
        kernel: [3, 3],
        stride: [1, 1],
        padding: [1, 1, 1, 1],
        dilation: [1, 1],
        groups: 1,
        bias: true,
      },
      { name: "relu", op: "relu", inputs: ["conv"] },
      { name: "flat", op: "flatten", inputs: ["relu"] },
      { name: "fc", op: "linear", inputs: ["flat"], out: 4, bias: true },
    ],
    output: "fc",
  };
  const gnet = compileNetwork(graph);
  // The chain flattens (h, w, c); the graph (c, h, w): move the dense weight's columns accordingly.
  const w = params["layers.1.weight"].data,
    moved = new Float64Array(w.length);
  for (let o = 0; o < 4; o++)
    for (let c = 0; c < 3; c++) for (let p = 0; p < 36; p++) moved[o * 108 + c * 36 + p] = w[o * 108 + p * 3 + c];
  const gparams: Params = {
    "conv.weight": params["layers.0.weight"],
    "conv.bias": params["layers.0.bias"],
    "fc.weight": new Tensor(moved, [4, 108]),
    "fc.bias": params["layers.1.bias"],
  };
  const rng = new Rng(5);
  const x = new Tensor(
    Float64Array.from({ length: 3 * 36 }, () => rng.normal()),
    [3, 36],
  );
  const y1 = noGrad(() => forward(cnn, params, x)),
    y2 = noGrad(() => forward(gnet, gparams, x));
  assert.ok(relativeError(y2.data, y1.data) < 1e-12);
  const j1 = jacobianSqNormsReverse(cnn, params, x).data,
    j2 = jacobianSqNormsReverse(gnet, gparams, x).data;
  assert.ok(relativeError(j2, j1) < 1e-12);
});

test("a residual net with BatchNorm (inference mode): Jacobian norms match float64 finite differences", () => {
  const spec = resnetSpec(8, [2, 6, 6], 3, 2);
  const net = compileNetwork(spec);
  const params = initParams(net, f64);
  randomizeNorms(spec, params, 7);
  const rng = new Rng(11);
  const n = 2,
    d = 72;
  const x = Float64Array.from({ length: n * d }, () => rng.normal());
  const got = jacobianSqNormsReverse(net, params, new Tensor(x, [n, d])).data;
  const f = (v: Float64Array) => noGrad(() => forward(net, params, new Tensor(v, [n, d]))).data;
  const h = 1e-5;
  const want = new Float64Array(n);
  const xp = Float64Array.from(x);
  for (let i = 0; i < d; i++) {
    for (let b = 0; b < n; b++) xp[b * d + i] = x[b * d + i] + h;
    const fp = f(xp);
    for (let b = 0; b < n; b++) xp[b * d + i] = x[b * d + i] - h;
    const fm = f(xp);
    for (let b = 0; b < n; b++) {
      xp[b * d + i] = x[b * d + i];
      for (let o = 0; o < 3; o++) want[b] += ((fp[b * 3 + o] - fm[b * 3 + o]) / (2 * h)) ** 2;
    }
  }
  assert.ok(relativeError(got, want) < 1e-6, `${String(got)} vs ${String(want)}`);
});

test("graph models save with PyTorch names and layouts and load back to the same GC", () => {
  const spec = resnetSpec(8, [1, 28, 28], 10, 4);
  const net = compileNetwork(spec);
  const params = initParams(net, { ...f64, dtype: "float32" });
  randomizeNorms(spec, params, 3);
  const dir = mkdtempSync(join(tmpdir(), "gcx-graph-"));
  saveModel(dir, spec, params);
  const loaded = loadModel(dir);
  const ds = loadDataset("mnist", { split: "test", seed: 0, limit: 16 });
  const a = exactGC(net, params, ds).gc,
    b = exactGC(loaded.net, loaded.params, ds).gc;
  assert.equal(a, b);
  assert.ok(Number.isFinite(a) && a > 0);
});

test("dropout: PyTorch's inverted dropout in training mode (with a mask stream), the identity at inference", () => {
  const spec: GraphSpec = {
    kind: "graph",
    input: [4000],
    nodes: [{ name: "drop", op: "dropout", inputs: ["input"], p: 0.3 }],
    output: "drop",
  };
  const net = compileNetwork(spec);
  const x = new Tensor(
    Float64Array.from({ length: 4000 }, (_, i) => 1 + (i % 7)),
    [1, 4000],
  );
  assert.deepEqual(Array.from(forward(net, {}, x).data), Array.from(x.data), "inference: identity");
  const y = forward(net, {}, x, undefined, { training: true, dropoutRng: new Rng(4) });
  let zeros = 0;
  y.data.forEach((v, i) => {
    if (v === 0) zeros++;
    else assert.ok(Math.abs(v - x.data[i] / 0.7) < 1e-12, "kept values are scaled by 1/(1-p)");
  });
  const sd = Math.sqrt((0.3 * 0.7) / 4000);
  assert.ok(Math.abs(zeros / 4000 - 0.3) < 4 * sd, `dropped fraction ${zeros / 4000}`);
  assert.deepEqual(
    Array.from(forward(net, {}, x, undefined, { training: true }).data),
    Array.from(x.data),
    "no mask stream: identity",
  );
});

test("inference folds conv → BatchNorm → ReLU into one convolution: the unfused nodes' values and input gradients", () => {
  const spec = resnetSpec(8, [2, 8, 8], 3, 4);
  // The same network with a second reader of every convolution's output, which keeps each chain unfused.
  const unfused: GraphSpec = {
    ...spec,
    nodes: [
      ...spec.nodes,
      ...spec.nodes
        .filter((n) => n.op === "conv2d")
        .map((n) => ({ name: `${n.name}_tap`, op: "identity" as const, inputs: [n.name] })),
    ],
  };
  const a = compileNetwork(spec),
    b = compileNetwork(unfused);
  assert.ok(a.graph && b.graph);
  // ResNet-8: the stem, two per block and both downsampling shortcuts; the first of each block's pair has its ReLU.
  assert.equal(inferenceFusions(a.graph), 9);
  assert.equal(inferenceFusions(b.graph), 0);
  for (const dtype of ["float64", "float32"] as const) {
    const params = initParams(a, { ...f64, dtype });
    randomizeNorms(spec, params, 5);
    const rng = new Rng(6);
    const values = dtype === "float64" ? new Float64Array(3 * 128) : new Float32Array(3 * 128);
    for (let i = 0; i < values.length; i++) values[i] = rng.normal();
    const input = new Tensor(values, [3, 128]);
    const ya = forward(a, params, input).data,
      yb = forward(b, params, input).data;
    const tol = dtype === "float64" ? 1e-12 : 2e-5;
    assert.ok(relativeError(ya, yb) < tol, `${dtype} logits: ${relativeError(ya, yb)}`);
    const ga = jacobianSqNormsReverse(a, params, input).data,
      gb = jacobianSqNormsReverse(b, params, input).data;
    assert.ok(relativeError(ga, gb) < tol * 10, `${dtype} input Jacobians: ${relativeError(ga, gb)}`);
  }
});
