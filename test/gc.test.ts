import { test } from "node:test";
import assert from "node:assert/strict";
import { Tensor } from "../src/engine/tensor.js";
import { compileNetwork, forward, type Params } from "../src/models/network.js";
import { initParams, type InitScheme } from "../src/models/init.js";
import type { ModelSpec } from "../src/models/spec.js";
import type { Dataset } from "../src/data/dataset.js";
import { exactGC, estimateGC } from "../src/measures/gc.js";
import { jacobianSqNormsForward, jacobianSqNormsReverse } from "../src/measures/jacobian.js";
import { denseJacobianSqNorms, supportsDenseJacobian } from "../src/measures/denseJacobian.js";
import { weightNorms, frobeniusSq, spectralNorm } from "../src/measures/norms.js";
import { UserError } from "../src/util/errors.js";
import { Rng } from "../src/util/rng.js";
import { finiteDifferenceJacobianSq, randomTensor, relativeError } from "./helpers.js";

function gaussianDataset(n: number, d: number, k: number, seed: number): Dataset {
  const rng = new Rng(seed);
  const x = Float32Array.from({ length: n * d }, () => rng.normal());
  const labels = Int32Array.from({ length: n }, () => rng.int(k));
  return { name: "gauss", task: "classification", inputShape: [d], numOutputs: k, n, x, labels };
}

function model(
  spec: ModelSpec,
  seed: number,
  scheme: InitScheme = "he",
  scale = 1,
  bias = 0.1,
  dtype: "float32" | "float64" = "float32",
) {
  const net = compileNetwork(spec);
  return { net, params: initParams(net, { scheme, distribution: "normal", scale, bias, seed, dtype }) };
}

const specs: [string, ModelSpec][] = [
  ["tanh MLP", { kind: "mlp", sizes: [5, 7, 6, 3], activation: "tanh" }],
  ["relu MLP", { kind: "mlp", sizes: [4, 8, 8, 5], activation: "relu" }],
  ["narrowing relu MLP (Gram path)", { kind: "mlp", sizes: [9, 4, 6, 3], activation: "relu" }],
  ["identity MLP", { kind: "mlp", sizes: [3, 4, 2], activation: "identity" }],
  ["sigmoid MLP", { kind: "mlp", sizes: [5, 7, 6, 3], activation: "sigmoid" }],
  ["gelu MLP", { kind: "mlp", sizes: [4, 8, 8, 5], activation: "gelu" }],
  ["narrowing gelu MLP (Gram path)", { kind: "mlp", sizes: [9, 4, 6, 3], activation: "gelu" }],
  [
    "CNN conv/gelu/conv/sigmoid/dense",
    {
      kind: "cnn",
      input: [5, 5, 2],
      layers: [
        { type: "conv", filters: 3, kernel: 3, stride: 1, padding: "same" },
        { type: "gelu" },
        { type: "conv", filters: 2, kernel: 2, stride: 2, padding: "valid" },
        { type: "sigmoid" },
        { type: "dense", units: 3 },
      ],
    },
  ],
  [
    "CNN conv/relu/maxpool/tanh/avgpool/dense",
    {
      kind: "cnn",
      input: [6, 6, 2],
      layers: [
        { type: "conv", filters: 3, kernel: 3, stride: 1, padding: "same" },
        { type: "relu" },
        { type: "maxpool", size: 2 },
        { type: "conv", filters: 4, kernel: 2, stride: 1, padding: "valid" },
        { type: "tanh" },
        { type: "avgpool", size: 2 },
        { type: "dense", units: 3 },
      ],
    },
  ],
];

for (const [name, spec] of specs) {
  test(`${name}: Jacobian norms (reverse and forward mode) match float64 finite differences`, () => {
    const { net, params } = model(spec, 11, "he", 1, 0.1, "float64");
    const x = randomTensor([3, net.inputSize], new Rng(12));
    const rev = jacobianSqNormsReverse(net, params, x).data;
    const fwd = jacobianSqNormsForward(net, params, x);
    const dense = supportsDenseJacobian(net) ? denseJacobianSqNorms(net, params, x) : null;
    for (let b = 0; b < 3; b++) {
      const fd = finiteDifferenceJacobianSq(
        net,
        params,
        (x.data as Float64Array).slice(b * net.inputSize, (b + 1) * net.inputSize),
      );
      assert.ok(relativeError([rev[b]], [fd]) < 1e-7, `reverse ${rev[b]} vs fd ${fd}`);
      assert.ok(relativeError([fwd[b]], [fd]) < 1e-7, `forward ${fwd[b]} vs fd ${fd}`);
      if (dense) assert.ok(relativeError([dense[b]], [fd]) < 1e-7, `closed-form dense ${dense[b]} vs fd ${fd}`);
    }
    const softRev = jacobianSqNormsReverse(net, params, x, "softmax").data;
    const softFwd = jacobianSqNormsForward(net, params, x, "softmax");
    assert.ok(relativeError(softFwd, softRev) < 1e-10);
    if (dense) assert.ok(relativeError(denseJacobianSqNorms(net, params, x, "softmax"), softRev) < 1e-10);
    // softmax's Jacobian has spectral norm ≤ ½, so the softmax GC is at most a quarter of the logit GC
    for (let b = 0; b < 3; b++) assert.ok(softRev[b] <= rev[b] / 4 + 1e-12);
  });
}

test("sigmoid and gelu MLPs compute 1/(1+e^−z) and z·Φ(z) (Φ by its own float64 series)", () => {
  // Φ(z) = ½ + φ(z)·Σ z^(2n+1)/(1·3·…·(2n+1)), an independent route to the normal CDF.
  const phiCdf = (z: number) => {
    let term = z,
      sum = z;
    for (let n = 1; n < 200; n++) sum += term *= (z * z) / (2 * n + 1);
    return 0.5 + (Math.exp(-0.5 * z * z) / Math.sqrt(2 * Math.PI)) * sum;
  };
  const truth = { sigmoid: (z: number) => 1 / (1 + Math.exp(-z)), gelu: (z: number) => z * phiCdf(z) };
  for (const activation of ["sigmoid", "gelu"] as const) {
    // 1 → 1 → 1 with weights 1 and biases 0: the output is the activation itself.
    const net = compileNetwork({ kind: "mlp", sizes: [1, 1, 1], activation });
    const one = (v: number) => new Tensor(Float64Array.of(v), [1, 1]);
    const zero = new Tensor(Float64Array.of(0), [1]);
    const params: Params = {
      "layers.0.weight": one(1),
      "layers.0.bias": zero,
      "layers.1.weight": one(1),
      "layers.1.bias": zero,
    };
    const zs = [-6, -2.5, -1, -0.3, 0, 0.4, 1, 2.2, 5];
    const y = forward(net, params, new Tensor(Float64Array.from(zs), [zs.length, 1])).data;
    zs.forEach((z, i) =>
      assert.ok(
        Math.abs(y[i] - truth[activation](z)) < 1e-12,
        `${activation}(${z}) = ${y[i]}, want ${truth[activation](z)}`,
      ),
    );
  }
});

test("affine model: GC equals ‖A‖_F² on any data, in both modes and for the estimator's mean", () => {
  const { net, params } = model({ kind: "mlp", sizes: [6, 9, 4], activation: "identity" }, 3);
  // A = W2 · W1 computed directly
  const W1 = params["layers.0.weight"].data,
    W2 = params["layers.1.weight"].data;
  let expected = 0;
  for (let i = 0; i < 4; i++)
    for (let j = 0; j < 6; j++) {
      let a = 0;
      for (let m = 0; m < 9; m++) a += W2[i * 9 + m] * W1[m * 6 + j];
      expected += a * a;
    }
  for (const seed of [1, 2]) {
    const ds = gaussianDataset(37, 6, 4, seed);
    for (const mode of ["forward", "reverse"] as const) {
      const r = exactGC(net, params, ds, { mode, batchSize: 10 });
      assert.ok(Math.abs(r.gc / expected - 1) < 1e-5, `${mode}: ${r.gc} vs ${expected}`);
    }
  }
});

test("estimator is unbiased: the mean of many estimates is within 3 standard errors of the exact GC", () => {
  const { net, params } = model({ kind: "mlp", sizes: [5, 16, 6], activation: "tanh" }, 21);
  const ds = gaussianDataset(20, 5, 6, 3);
  const exact = exactGC(net, params, ds).gc;
  for (const probe of ["gaussian", "rademacher"] as const) {
    const draws = Array.from({ length: 300 }, (_, s) => estimateGC(net, params, ds, { probes: 2, probe, seed: s }).gc);
    const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
    const sd = Math.sqrt(draws.reduce((a, b) => a + (b - mean) ** 2, 0) / (draws.length - 1));
    const se = sd / Math.sqrt(draws.length);
    assert.ok(Math.abs(mean - exact) < 3 * se, `${probe}: mean ${mean} exact ${exact} se ${se}`);
    assert.ok(sd > 0, "estimates vary across seeds");
  }
});

test("estimator's reported standard error matches the spread of its estimates", () => {
  const { net, params } = model({ kind: "mlp", sizes: [5, 16, 6], activation: "relu" }, 22);
  const ds = gaussianDataset(30, 5, 6, 4);
  const runs = Array.from({ length: 200 }, (_, s) => estimateGC(net, params, ds, { probes: 8, seed: 1000 + s }));
  const mean = runs.reduce((a, r) => a + r.gc, 0) / runs.length;
  const sd = Math.sqrt(runs.reduce((a, r) => a + (r.gc - mean) ** 2, 0) / (runs.length - 1));
  const meanSe = runs.reduce((a, r) => a + r.stderr!, 0) / runs.length;
  assert.ok(meanSe / sd > 0.7 && meanSe / sd < 1.3, `reported se ${meanSe} vs observed sd ${sd}`);
  // same seed, same numbers; another seed, other numbers
  const again = (seed: number) => estimateGC(net, params, ds, { seed }).gc;
  assert.equal(again(5), again(5));
  assert.notEqual(again(5), again(6));
});

test("T1 and T2 bounds hold on random ReLU networks: GC ≤ ∏‖W‖_F² and GC ≤ min(d,k)∏‖W‖_op²", () => {
  const rng = new Rng(77);
  for (let trial = 0; trial < 12; trial++) {
    const depth = 1 + rng.int(4);
    const sizes = [2 + rng.int(20), ...Array.from({ length: depth }, () => 2 + rng.int(30)), 1 + rng.int(10)];
    const { net, params } = model(
      { kind: "mlp", sizes, activation: "relu" },
      trial,
      "he",
      0.5 + 2 * rng.uniform(),
      rng.normal(),
    );
    const ds = gaussianDataset(40, sizes[0], sizes[sizes.length - 1], trial);
    const gc = exactGC(net, params, ds).gc;
    const b = weightNorms(net, params);
    assert.ok(gc <= b.prod_frobenius_sq! * (1 + 1e-5), `T1 violated: ${gc} > ${b.prod_frobenius_sq}`);
    assert.ok(gc <= b.lipschitz_bound! * (1 + 1e-4), `T2 violated: ${gc} > ${b.lipschitz_bound}`);
  }
});

test("spectral norm by power iteration matches the exact value of a diagonal-like matrix and ‖W‖_op ≤ ‖W‖_F", () => {
  const w = new Tensor(Float32Array.from([3, 0, 0, 0, -5, 0]), [2, 3]);
  assert.ok(Math.abs(spectralNorm(w) - 5) < 1e-6);
  const r = randomTensor([7, 4], new Rng(2));
  const s = spectralNorm(r);
  assert.ok(s <= Math.sqrt(frobeniusSq(r)) + 1e-9 && s >= Math.sqrt(frobeniusSq(r) / 4) - 1e-9);
});

test("T6: zero-bias ReLU nets at init: Glorot GC halves per added layer, He stays roughly flat", () => {
  const width = 64;
  const ds = gaussianDataset(32, width, width, 9);
  const meanGC = (scheme: InitScheme, hidden: number) => {
    let s = 0;
    const seeds = 12;
    for (let seed = 0; seed < seeds; seed++) {
      const { net, params } = model(
        { kind: "mlp", sizes: Array(hidden + 2).fill(width), activation: "relu" },
        100 + seed,
        scheme,
        1,
        0,
      );
      s += exactGC(net, params, ds, { batchSize: 32 }).gc;
    }
    return s / seeds;
  };
  for (const scheme of ["glorot", "he"] as const) {
    const ratios = [1, 2, 3].map((h) => meanGC(scheme, h + 1) / meanGC(scheme, h));
    const avg = ratios.reduce((a, b) => a + b, 0) / ratios.length;
    if (scheme === "glorot") assert.ok(avg > 0.35 && avg < 0.65, `glorot ratio per layer ${avg}`);
    else assert.ok(avg > 0.8 && avg < 1.25, `he ratio per layer ${avg}`);
  }
});

test("per-class GC averages back to the total; constant model has zero GC", () => {
  const { net, params } = model({ kind: "mlp", sizes: [3, 5, 4], activation: "tanh" }, 8);
  const ds = gaussianDataset(50, 3, 4, 8);
  const r = exactGC(net, params, ds, { perClass: true, batchSize: 7 });
  const total = r.per_class!.reduce((a, c) => a + c.gc * c.n, 0) / ds.n;
  assert.ok(Math.abs(total - r.gc) < 1e-9 * r.gc);
  // A fresh tensor: tensors are immutable, and caches (Gram, transposes) rely on it.
  const zero = {
    ...params,
    "layers.0.weight": new Tensor(new Float32Array(params["layers.0.weight"].size), params["layers.0.weight"].shape),
  };
  assert.equal(exactGC(net, zero, ds).gc, 0);
});

test("bad input: shape mismatch, bad batch size and too few probes are UserErrors", () => {
  const { net, params } = model({ kind: "mlp", sizes: [3, 4], activation: "relu" }, 1);
  assert.throws(
    () => exactGC(net, params, gaussianDataset(5, 2, 4, 1)),
    (e) => e instanceof UserError && e.message.includes("shape mismatch"),
  );
  assert.throws(() => exactGC(net, params, gaussianDataset(5, 3, 5, 1)), /outputs/);
  assert.throws(() => exactGC(net, params, gaussianDataset(5, 3, 4, 1), { batchSize: 0 }), UserError);
  assert.throws(() => estimateGC(net, params, gaussianDataset(5, 3, 4, 1), { probes: 1 }), UserError);
});

test(
  "no leak: repeated measurement does not grow the heap",
  { skip: typeof globalThis.gc !== "function" && "needs --expose-gc" },
  () => {
    const { net, params } = model({ kind: "mlp", sizes: [20, 64, 10], activation: "relu" }, 1);
    const ds = gaussianDataset(256, 20, 10, 1);
    const heap = () => {
      // Twice: the first full collection can leave weak-map entries (transpose and Gram caches) for the second.
      globalThis.gc!();
      globalThis.gc!();
      return process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    };
    for (let i = 0; i < 5; i++) exactGC(net, params, ds, { batchSize: 64 });
    const before = heap();
    for (let i = 0; i < 40; i++) {
      exactGC(net, params, ds, { batchSize: 64 });
      estimateGC(net, params, ds, { batchSize: 64, seed: i });
    }
    const grown = heap() - before;
    // One batch's graph is ~1 MB; 40 leaked graphs would be tens of MB.
    assert.ok(grown < 4e6, `heap grew by ${grown} bytes`);
  },
);
