import { test } from "node:test";
import assert from "node:assert/strict";
import { Tensor, tensor } from "../src/engine/tensor.js";
import * as op from "../src/engine/ops.js";
import * as E from "../src/engine/elementwise.js";
import { grad } from "../src/engine/autograd.js";
import { Rng } from "../src/util/rng.js";
import { finiteDifferenceGrad, randomTensor, relativeError } from "./helpers.js";

// ---------- independent references ----------

/** erf by its alternating Maclaurin series in 1e-60 fixed-point BigInt arithmetic (exact enough for any |x| ≤ 6). */
function erfReference(x: number): number {
  const S = 10n ** 60n;
  const xb = BigInt(Math.round(x * 1e15)) * (S / 10n ** 15n);
  const x2 = (xb * xb) / S;
  let term = xb,
    sum = xb; // term_n = (−1)ⁿ x^{2n+1}/n!
  for (let n = 1; n < 1000; n++) {
    term = (-term * x2) / S / BigInt(n);
    const t = term / BigInt(2 * n + 1);
    if (t === 0n) break;
    sum += t;
  }
  return (Number(sum / 10n ** 30n) / 1e30) * (2 / Math.sqrt(Math.PI));
}

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    assert.ok(d <= tol * Math.max(1, Math.abs(expected[i])), `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

const t64 = (values: number[], shape: number[]) => tensor(values, shape, "float64");

/** Naive broadcast reference: out[idx] = f(a[idx mapped], b[idx mapped]). */
function broadcastRef(a: Tensor, b: Tensor, outShape: number[], f: (p: number, q: number) => number): number[] {
  const r = outShape.length;
  const n = outShape.reduce((s, d) => s * d, 1);
  const at = (t: Tensor, idx: number[]) => {
    let flat = 0;
    const off = r - t.shape.length;
    for (let d = 0; d < t.shape.length; d++) flat = flat * t.shape[d] + (t.shape[d] === 1 ? 0 : idx[d + off]);
    return t.data[flat];
  };
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const idx: number[] = [];
    let rem = i;
    for (let d = r - 1; d >= 0; d--) {
      idx[d] = rem % outShape[d];
      rem = Math.floor(rem / outShape[d]);
    }
    out.push(f(at(a, idx), at(b, idx)));
  }
  return out;
}

// ---------- forward values ----------

test("broadcast binary ops match a naive index reference for many shape pairs", () => {
  const rng = new Rng(11);
  const pairs: [number[], number[], number[]][] = [
    [
      [2, 3, 4],
      [3, 1],
      [2, 3, 4],
    ],
    [[4], [2, 3, 4], [2, 3, 4]],
    [[1], [2, 3], [2, 3]],
    [
      [2, 1, 4],
      [3, 1],
      [2, 3, 4],
    ],
    [[], [2, 3], [2, 3]],
    [
      [2, 3],
      [2, 3],
      [2, 3],
    ],
    [
      [3, 1, 5],
      [1, 4, 1],
      [3, 4, 5],
    ],
  ];
  const fs: [string, (a: Tensor, b: Tensor) => Tensor, (p: number, q: number) => number][] = [
    ["addB", E.addB, (p, q) => p + q],
    ["subB", E.subB, (p, q) => p - q],
    ["mulB", E.mulB, (p, q) => p * q],
    ["divB", E.divB, (p, q) => p / q],
  ];
  for (const [sa, sb, so] of pairs) {
    const a = randomTensor(sa, rng),
      b = randomTensor(sb, rng);
    for (const [name, f, ref] of fs) {
      for (const [x, y] of [
        [a, b],
        [b, a],
      ]) {
        const out = f(x, y);
        assert.deepEqual([...out.shape], so, `${name} [${x.shape}] [${y.shape}] shape`);
        close(out.data, broadcastRef(x, y, so, ref), 1e-15, `${name} [${x.shape}] ∘ [${y.shape}]`);
      }
    }
  }
});

test("broadcastTo / sumTo match naive references, and sumTo is broadcastTo's adjoint", () => {
  const rng = new Rng(12);
  const x = randomTensor([3, 1], rng);
  const y = E.broadcastTo(x, [2, 3, 4]);
  close(
    y.data,
    broadcastRef(x, t64([0], [1]), [2, 3, 4], (p) => p),
    0,
    "broadcastTo",
  );
  const g = randomTensor([2, 3, 4], rng);
  const s = E.sumTo(g, [3, 1]);
  assert.deepEqual([...s.shape], [3, 1]);
  const ref = [0, 0, 0];
  for (let i = 0; i < 2; i++)
    for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) ref[j] += g.data[(i * 3 + j) * 4 + k];
  close(s.data, ref, 1e-14, "sumTo");
  // <broadcastTo(x), g> = <x, sumTo(g)>
  const lhs = op.sum(op.mul(y, g)).item(),
    rhs = op.sum(op.mul(x, s)).item();
  assert.ok(Math.abs(lhs - rhs) < 1e-12);
  assert.deepEqual(Array.from(E.sumTo(g, []).data).length, 1);
  assert.equal(E.broadcastTo(x, [3, 1]), x, "same shape is the identity");
});

test("shape mismatches throw RangeError with the shapes in the message", () => {
  const a = randomTensor([2, 3], new Rng(1)),
    b = randomTensor([4], new Rng(2));
  assert.throws(
    () => E.addB(a, b),
    (e: unknown) => e instanceof RangeError && /\[2,3\].*\[4\]/.test(e.message),
  );
  assert.throws(() => E.mulB(randomTensor([2, 3, 4], new Rng(3)), randomTensor([2, 4], new Rng(3))), RangeError);
  assert.throws(() => E.broadcastTo(a, [3, 3]), RangeError);
  assert.throws(() => E.broadcastTo(a, [3]), RangeError);
  assert.throws(() => E.sumTo(a, [2, 2]), RangeError);
  assert.throws(() => E.sumTo(a, [1, 2, 3]), RangeError);
  assert.throws(() => E.reduceSum(a, [2], false), RangeError);
  assert.throws(() => E.reduceSum(a, [0, -2], false), RangeError);
  const v = t64([1, 1, 1], [3]);
  assert.throws(
    () => E.batchNorm(randomTensor([2, 4], new Rng(4)), v, v, v, v, 1e-5),
    /mean must have shape \[4\], got \[3\]/,
  );
  assert.throws(
    () => E.batchNorm(randomTensor([2, 3], new Rng(4)), v, t64([1, 1], [2]), v, v, 1e-5),
    /variance must have shape \[3\]/,
  );
  assert.throws(() => E.layerNorm(a, t64([1, 1], [2]), v, 1e-5), RangeError);
  assert.throws(() => E.channelMoments(v), RangeError);
  assert.throws(() => E.unbiasedVariance(v, 1), RangeError);
  assert.throws(() => E.batchNorm(randomTensor([2, 3], new Rng(4)), v, v, v, v, -1), /eps/);
  assert.throws(() => E.layerNorm(a, v, v, NaN), /eps/);
  assert.throws(() => E.leakyRelu(a, NaN), /alpha/);
  assert.throws(() => E.gelu(a, "erf" as "none"), RangeError);
  assert.throws(() => E.softplus(a, 0), /beta/);
});

test("reduceSum and reduceMean match naive loops (keepdims, negative axes, empty axes = all)", () => {
  const x = randomTensor([2, 3, 4], new Rng(13));
  const at = (i: number, j: number, k: number) => x.data[(i * 3 + j) * 4 + k];
  const s02 = [0, 0, 0];
  for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) s02[j] += at(i, j, k);
  let r = E.reduceSum(x, [0, 2], false);
  assert.deepEqual([...r.shape], [3]);
  close(r.data, s02, 1e-14, "sum [0,2]");
  r = E.reduceSum(x, [-1, 0], true);
  assert.deepEqual([...r.shape], [1, 3, 1]);
  close(r.data, s02, 1e-14, "sum [-1,0] keepdims");
  r = E.reduceMean(x, [2, 0], false);
  close(
    r.data,
    s02.map((v) => v / 8),
    1e-14,
    "mean [0,2]",
  );
  const m1: number[] = [];
  for (let i = 0; i < 2; i++)
    for (let k = 0; k < 4; k++) {
      let s = 0;
      for (let j = 0; j < 3; j++) s += at(i, j, k);
      m1.push(s / 3);
    }
  r = E.reduceMean(x, [1], true);
  assert.deepEqual([...r.shape], [2, 1, 4]);
  close(r.data, m1, 1e-14, "mean [1]");
  const all = Array.from(x.data).reduce((a, b) => a + b, 0);
  r = E.reduceSum(x, [], false);
  assert.deepEqual([...r.shape], []);
  close(r.data, [all], 1e-14, "sum all");
  r = E.reduceMean(x, [], true);
  assert.deepEqual([...r.shape], [1, 1, 1]);
  close(r.data, [all / 24], 1e-14, "mean all keepdims");
});

test("erf matches a high-precision series to 1e-7 (and known values), is odd and saturates", () => {
  const known: [number, number][] = [
    [0, 0],
    [0.5, 0.5204998778130465],
    [1, 0.8427007929497149],
    [2, 0.9953222650189527],
    [3, 0.9999779095030014],
  ];
  const xs: number[] = [];
  for (let v = -6; v <= 6; v += 0.0371) xs.push(v);
  xs.push(2.5, -2.5, 2.4999999, 6.5, 6.6);
  const y = E.erf(t64(xs, [xs.length]));
  close(y.data, xs.map(erfReference), 1e-7, "erf vs series");
  for (let i = 0; i < xs.length; i++)
    assert.ok(Math.abs(y.data[i] - erfReference(xs[i])) < 1e-13, `erf(${xs[i]}) tight`);
  close(
    E.erf(
      t64(
        known.map((k) => k[0]),
        [known.length],
      ),
    ).data,
    known.map((k) => k[1]),
    1e-15,
    "erf known values",
  );
  close(
    E.erf(t64([-0.7, 0.7, 40, -40, Infinity, -Infinity], [6])).data,
    [-erfReference(0.7), erfReference(0.7), 1, -1, 1, -1],
    1e-14,
    "erf odd/saturating",
  );
  assert.ok(Number.isNaN(E.erf(t64([NaN], [1])).data[0]));
  // float32 in, float32 out
  const f = E.erf(tensor([0.5, 1], [2], "float32"));
  assert.ok(f.data instanceof Float32Array);
  close(f.data, [0.5204998778130465, 0.8427007929497149], 1e-7, "erf float32");
});

test("activations match their closed forms", () => {
  const xs = [-30, -5, -1.3, -1, -0.2, 0, 0.2, 1, 1.7, 5, 30];
  const x = t64(xs, [xs.length]);
  const Phi = (v: number) => 0.5 * (1 + erfReference(v / Math.SQRT2));
  assert.ok(Math.abs(E.gelu(t64([1], [1]), "none").item() - 0.8413447460685429) < 1e-15);
  assert.ok(Math.abs(E.gelu(t64([-1], [1]), "none").item() + 0.15865525393145707) < 1e-15);
  close(
    E.gelu(x, "none").data,
    xs.map((v) => (Math.abs(v) > 6 ? (v > 0 ? v : 0) : v * Phi(v))),
    1e-13,
    "gelu none",
  );
  const k = Math.sqrt(2 / Math.PI);
  close(
    E.gelu(x, "tanh").data,
    xs.map((v) => 0.5 * v * (1 + Math.tanh(k * (v + 0.044715 * v ** 3)))),
    1e-15,
    "gelu tanh",
  );
  // PyTorch: F.gelu(torch.tensor(1.), approximate="tanh") = 0.8411919906082768
  assert.ok(Math.abs(E.gelu(t64([1], [1]), "tanh").item() - 0.8411919906082768) < 1e-14);
  close(
    E.sigmoid(x).data,
    xs.map((v) => 1 / (1 + Math.exp(-v))),
    1e-15,
    "sigmoid",
  );
  close(E.sigmoid(t64([-800, 800], [2])).data, [0, 1], 0, "sigmoid saturates without NaN");
  close(
    E.silu(x).data,
    xs.map((v) => v / (1 + Math.exp(-v))),
    1e-15,
    "silu",
  );
  close(E.silu(t64([-800, 800], [2])).data, [-0, 800], 0, "silu saturates without NaN");
  close(
    E.leakyRelu(x, 0.01).data,
    xs.map((v) => (v > 0 ? v : 0.01 * v)),
    0,
    "leakyRelu",
  );
  close(
    E.leakyRelu(x, 0.2).data,
    xs.map((v) => (v > 0 ? v : 0.2 * v)),
    0,
    "leakyRelu 0.2",
  );
  close(
    E.softplus(x).data,
    xs.map((v) => (v > 20 ? v : Math.log(1 + Math.exp(v)))),
    1e-15,
    "softplus",
  );
});

test("softplus reverts to the identity above the threshold (value and gradient), in units of beta·x", () => {
  // beta=1, threshold=20: 19 uses the log branch, 25 is returned as is
  const a = E.softplus(t64([19, 25], [2]));
  assert.equal(a.data[0], Math.log1p(Math.exp(19)));
  assert.equal(a.data[1], 25);
  // beta=2, threshold=20: βx = 21 > 20 → x; βx = 18 → log1p(e^18)/2
  const b = E.softplus(t64([10.5, 9, -3], [3]), 2, 20);
  close(b.data, [10.5, Math.log1p(Math.exp(18)) / 2, Math.log1p(Math.exp(-6)) / 2], 1e-15, "softplus beta 2");
  // a low threshold makes the switch visible: βx = 1.5 > 1 → x exactly
  const c = E.softplus(t64([1.5, 0.5], [2]), 1, 1);
  close(c.data, [1.5, Math.log1p(Math.exp(0.5))], 1e-15, "softplus threshold 1");
  const xv = t64([10.5, 9, -3], [3]).variable();
  const [g] = grad(op.sum(E.softplus(xv, 2, 20)), [xv]);
  close(g.data, [1, 1 / (1 + Math.exp(-18)), 1 / (1 + Math.exp(6))], 1e-15, "softplus gradient");
});

test("powScalar, sqrt, neg match Math", () => {
  const xs = [0.3, 1, 2.5, 4];
  const x = t64(xs, [4]);
  for (const p of [2, 3, 0.5, -0.5, -1, 1.5, -2.25, 1, 0]) {
    close(
      E.powScalar(x, p).data,
      xs.map((v) => Math.pow(v, p)),
      1e-15,
      `pow ${p}`,
    );
  }
  close(E.sqrt(x).data, xs.map(Math.sqrt), 0, "sqrt");
  close(
    E.neg(x).data,
    xs.map((v) => -v),
    0,
    "neg",
  );
  close(E.powScalar(t64([-2, -0.5], [2]), 3).data, [-8, -0.125], 1e-15, "odd power of negatives");
});

test("channelMoments and batchNorm match naive per-channel loops (NHWC)", () => {
  const rng = new Rng(14);
  const [N, H, W, C] = [2, 3, 2, 4];
  const x = randomTensor([N, H, W, C], rng, 2);
  for (let i = 0; i < x.size; i++) x.data[i] += 3 * (i % C); // distinct channel means
  const mean = new Array(C).fill(0),
    v = new Array(C).fill(0);
  const cnt = N * H * W;
  for (let i = 0; i < x.size; i++) mean[i % C] += x.data[i] / cnt;
  for (let i = 0; i < x.size; i++) v[i % C] += (x.data[i] - mean[i % C]) ** 2 / cnt;
  const m = E.channelMoments(x);
  assert.deepEqual([...m.mean.shape], [C]);
  close(m.mean.data, mean, 1e-14, "channel mean");
  close(m.variance.data, v, 1e-13, "channel variance (biased)");
  close(
    E.unbiasedVariance(m.variance, cnt).data,
    v.map((q) => (q * cnt) / (cnt - 1)),
    1e-13,
    "unbiased variance",
  );

  const rm = randomTensor([C], rng),
    rv = t64([0.5, 1.2, 2, 0.1], [C]);
  const gamma = randomTensor([C], rng),
    beta = randomTensor([C], rng);
  const eps = 1e-3;
  const y = E.batchNorm(x, rm, rv, gamma, beta, eps);
  const ref = Array.from(x.data, (val, i) => {
    const c = i % C;
    return ((val - rm.data[c]) / Math.sqrt(rv.data[c] + eps)) * gamma.data[c] + beta.data[c];
  });
  assert.deepEqual([...y.shape], [N, H, W, C]);
  close(y.data, ref, 1e-13, "batchNorm");
  // training-mode normalization: per channel mean 0, variance var/(var+eps) before the affine
  const one = t64(new Array(C).fill(1), [C]),
    zero = t64(new Array(C).fill(0), [C]);
  const z = E.batchNorm(x, m.mean, m.variance, one, zero, 0);
  const zm = E.channelMoments(z);
  close(zm.mean.data, new Array(C).fill(0), 1e-13, "normalized mean");
  close(zm.variance.data, new Array(C).fill(1), 1e-12, "normalized variance");
  // vectors [N, F]
  const xv = randomTensor([5, 3], rng);
  const mv = randomTensor([3], rng),
    vv = t64([1, 2, 3], [3]),
    gv = randomTensor([3], rng),
    bv = randomTensor([3], rng);
  const yv = E.batchNorm(xv, mv, vv, gv, bv, 1e-5);
  assert.deepEqual([...yv.shape], [5, 3]);
  close(
    yv.data,
    Array.from(
      xv.data,
      (val, i) => ((val - mv.data[i % 3]) / Math.sqrt(vv.data[i % 3] + 1e-5)) * gv.data[i % 3] + bv.data[i % 3],
    ),
    1e-13,
    "batchNorm [N,F]",
  );
});

test("layerNorm rows have mean 0 and variance 1 before the affine, and match a naive loop after it", () => {
  const rng = new Rng(15);
  const x = randomTensor([2, 3, 5], rng, 3);
  const one = t64([1, 1, 1, 1, 1], [5]),
    zero = t64([0, 0, 0, 0, 0], [5]);
  const z = E.layerNorm(x, one, zero, 1e-12);
  for (let r = 0; r < 6; r++) {
    const row = Array.from(z.data.subarray(r * 5, r * 5 + 5));
    const mu = row.reduce((a, b) => a + b, 0) / 5;
    const v = row.reduce((a, b) => a + (b - mu) ** 2, 0) / 5;
    assert.ok(Math.abs(mu) < 1e-14 && Math.abs(v - 1) < 1e-10, `row ${r}: mean ${mu} variance ${v}`);
  }
  const gamma = randomTensor([5], rng),
    beta = randomTensor([5], rng);
  const eps = 1e-5;
  const y = E.layerNorm(x, gamma, beta, eps);
  const ref: number[] = [];
  for (let r = 0; r < 6; r++) {
    const row = Array.from(x.data.subarray(r * 5, r * 5 + 5));
    const mu = row.reduce((a, b) => a + b, 0) / 5;
    const v = row.reduce((a, b) => a + (b - mu) ** 2, 0) / 5;
    row.forEach((val, j) => ref.push(((val - mu) / Math.sqrt(v + eps)) * gamma.data[j] + beta.data[j]));
  }
  close(y.data, ref, 1e-13, "layerNorm");
});

test("stopGradient keeps values and blocks the gradient", () => {
  const x = randomTensor([4], new Rng(16)).variable();
  const s = E.stopGradient(x);
  assert.deepEqual(Array.from(s.data), Array.from(x.data));
  assert.equal(s.requiresGrad, false);
  const [g] = grad(op.sum(E.mulB(s, x)), [x]); // d/dx Σ c·x with c = x held constant
  close(g.data, x.data, 0, "gradient with one factor stopped");
  const [g0] = grad(op.add(op.sum(op.mul(E.stopGradient(op.tanh(x)), x)), op.scale(op.sum(E.stopGradient(x)), 3)), [x]);
  close(g0.data, Array.from(x.data, Math.tanh), 1e-15, "stopped terms contribute nothing");
});

test("float32 inputs give float32 results; mixed precisions promote to float64", () => {
  const a = tensor([1, 2, 3], [3], "float32"),
    b = tensor([0.5], [1], "float32");
  for (const y of [
    E.addB(a, b),
    E.divB(a, b),
    E.gelu(a, "tanh"),
    E.silu(a),
    E.softplus(a),
    E.sigmoid(a),
    E.sqrt(a),
    E.powScalar(a, 3),
    E.leakyRelu(a, 0.1),
    E.reduceMean(a, [0], true),
  ]) {
    assert.ok(y.data instanceof Float32Array);
  }
  assert.ok(E.addB(a, t64([1], [1])).data instanceof Float64Array);
  const x32 = tensor([0.1, -0.4, 2, 1, 0.3, -1], [2, 3], "float32");
  const y32 = E.layerNorm(x32, tensor([1, 2, 3], [3], "float32"), tensor([0, 0.5, 0], [3], "float32"), 1e-5);
  const y64 = E.layerNorm(t64(Array.from(x32.data), [2, 3]), t64([1, 2, 3], [3]), t64([0, 0.5, 0], [3]), 1e-5);
  assert.ok(y32.data instanceof Float32Array);
  close(y32.data, y64.data, 1e-5, "layerNorm float32 vs float64");
});

// ---------- gradients: first and second order against float64 finite differences ----------

type Fn = (...xs: Tensor[]) => Tensor;

/** Σ tanh(y) ⊙ R: a nonlinear scalar readout, so even linear ops have nonzero second derivatives. */
function readout(y: Tensor, seed: number): Tensor {
  const r = randomTensor([...y.shape], new Rng(seed));
  return op.sum(op.mul(op.tanh(y), r));
}

/** Scalar f with inputs xs; FD over each input in turn. */
function checkFirstOrder(name: string, f: Fn, xs: Tensor[], tol: number): void {
  const vars = xs.map((x) => x.variable());
  const gs = grad(f(...vars), vars);
  xs.forEach((x, k) => {
    const fd = finiteDifferenceGrad(
      (d) => f(...xs.map((xx, j) => (j === k ? new Tensor(d, x.shape) : xx))).item(),
      x.data as Float64Array,
    );
    const err = relativeError(gs[k].data, fd);
    assert.ok(err < tol, `${name}: input ${k} relative error ${err}`);
  });
}

/**
 * P(xs) = Σ_k Σ (∂f/∂x_k ⊙ r_k)², built with createGraph and differentiated again, against finite differences of
 * P evaluated through the engine's first-order gradient.
 */
function checkSecondOrder(name: string, f: Fn, xs: Tensor[], tol: number): void {
  const rs = xs.map((x, k) => randomTensor([...x.shape], new Rng(100 + k)));
  const P = (ins: Tensor[], create: boolean): Tensor => {
    const gs = grad(f(...ins), ins, { createGraph: create });
    return gs.map((g, k) => op.sumSquares(op.mul(g, rs[k]))).reduce((a, b) => op.add(a, b));
  };
  const vars = xs.map((x) => x.variable());
  const ggs = grad(P(vars, true), vars);
  xs.forEach((x, k) => {
    const fd = finiteDifferenceGrad(
      (d) =>
        P(
          xs.map((xx, j) => (j === k ? new Tensor(d, x.shape) : xx).variable()),
          false,
        ).item(),
      x.data as Float64Array,
      1e-5,
    );
    const err = relativeError(ggs[k].data, fd);
    assert.ok(err < tol, `${name} (second order): input ${k} relative error ${err}`);
  });
}

const rnd = (shape: number[], seed: number, std = 1) => randomTensor(shape, new Rng(seed), std);
/** Values bounded away from 0 (for divisors, kinks), random signs unless positive. */
function awayFromZero(shape: number[], seed: number, positive = false): Tensor {
  const t = randomTensor(shape, new Rng(seed));
  for (let i = 0; i < t.size; i++) {
    const m = 0.5 + Math.abs(t.data[i]);
    t.data[i] = positive || t.data[i] > 0 ? m : -m;
  }
  return t;
}

const gradCases: [string, Fn, Tensor[], number?, number?][] = [
  ["addB [2,3,4]+[3,1]", (a, b) => readout(E.addB(a, b), 1), [rnd([2, 3, 4], 1), rnd([3, 1], 2)]],
  ["addB [4]+[2,3,4]", (a, b) => readout(E.addB(a, b), 2), [rnd([4], 3), rnd([2, 3, 4], 4)]],
  ["addB [1]+[2,3]", (a, b) => readout(E.addB(a, b), 3), [rnd([1], 5), rnd([2, 3], 6)]],
  ["addB []+[2,3]", (a, b) => readout(E.addB(a, b), 3), [rnd([], 5), rnd([2, 3], 6)]],
  ["subB [2,1,4]-[3,1]", (a, b) => readout(E.subB(a, b), 4), [rnd([2, 1, 4], 7), rnd([3, 1], 8)]],
  ["mulB [2,3,4]*[3,1]", (a, b) => readout(E.mulB(a, b), 5), [rnd([2, 3, 4], 9), rnd([3, 1], 10)]],
  ["mulB same operand", (a) => readout(E.mulB(a, a), 5), [rnd([3, 2], 9)]],
  ["mulB [1,4]*[3,1]", (a, b) => readout(E.mulB(a, b), 6), [rnd([1, 4], 11), rnd([3, 1], 12)]],
  ["divB [2,3,4]/[3,1]", (a, b) => readout(E.divB(a, b), 7), [rnd([2, 3, 4], 13), awayFromZero([3, 1], 14)]],
  ["divB [4]/[2,3,4]", (a, b) => readout(E.divB(a, b), 8), [rnd([4], 15), awayFromZero([2, 3, 4], 16)]],
  ["broadcastTo", (a) => readout(E.broadcastTo(a, [2, 3, 4]), 9), [rnd([3, 1], 17)]],
  ["sumTo", (a) => readout(E.sumTo(a, [1, 4]), 10), [rnd([2, 3, 4], 18)]],
  ["reduceSum", (a) => readout(E.reduceSum(a, [0, -1], false), 11), [rnd([2, 3, 4], 19)]],
  ["reduceMean keepdims", (a) => readout(E.reduceMean(a, [1], true), 12), [rnd([2, 3, 4], 20)]],
  ["powScalar 3", (a) => readout(E.powScalar(a, 3), 13), [rnd([2, 3], 21)]],
  ["powScalar -0.5", (a) => readout(E.powScalar(a, -0.5), 14), [awayFromZero([2, 3], 22, true)]],
  ["powScalar 1.5", (a) => readout(E.powScalar(a, 1.5), 15), [awayFromZero([2, 3], 23, true)]],
  ["powScalar 2", (a) => readout(E.powScalar(a, 2), 16), [rnd([2, 3], 24)]],
  ["sqrt", (a) => readout(E.sqrt(a), 17), [awayFromZero([2, 3], 25, true)]],
  ["neg", (a) => readout(E.neg(a), 18), [rnd([4], 26)]],
  ["erf", (a) => readout(E.erf(a), 19), [rnd([2, 4], 27, 1.5)]],
  ["leakyRelu", (a) => readout(E.leakyRelu(a, 0.1), 20), [awayFromZero([2, 4], 28)]],
  ["gelu none", (a) => readout(E.gelu(a, "none"), 21), [rnd([2, 4], 29, 1.5)]],
  ["gelu tanh", (a) => readout(E.gelu(a, "tanh"), 22), [rnd([2, 4], 30, 1.5)]],
  ["silu", (a) => readout(E.silu(a), 23), [rnd([2, 4], 31, 2)]],
  ["sigmoid", (a) => readout(E.sigmoid(a), 24), [rnd([2, 4], 32, 2)]],
  ["softplus", (a) => readout(E.softplus(a), 25), [rnd([2, 4], 33, 2)]],
  [
    "softplus beta 2 threshold 1 (both branches)",
    (a) => readout(E.softplus(a, 2, 1), 26),
    [t64([-1.3, -0.2, 0.1, 0.3, 0.7, 1.2, 2.5, -2], [8])],
  ],
  [
    "channelMoments",
    (a) => {
      const m = E.channelMoments(a);
      return op.add(readout(m.mean, 27), readout(m.variance, 28));
    },
    [rnd([2, 3, 2, 3], 34)],
  ],
  [
    "batchNorm (all five inputs)",
    (x, m, v, g, b) => readout(E.batchNorm(x, m, v, g, b, 1e-3), 29),
    [rnd([2, 2, 2, 3], 35), rnd([3], 36), awayFromZero([3], 37, true), rnd([3], 38), rnd([3], 39)],
  ],
  [
    "batchNorm [N,F]",
    (x, m, v, g, b) => readout(E.batchNorm(x, m, v, g, b, 1e-5), 30),
    [rnd([4, 3], 40), rnd([3], 41), awayFromZero([3], 42, true), rnd([3], 43), rnd([3], 44)],
  ],
  [
    "batchNorm training (batch statistics)",
    (x, g, b) => {
      const m = E.channelMoments(x);
      return readout(E.batchNorm(x, m.mean, m.variance, g, b, 1e-5), 31);
    },
    [rnd([3, 2, 2, 2], 45), rnd([2], 46), rnd([2], 47)],
  ],
  ["layerNorm", (x, g, b) => readout(E.layerNorm(x, g, b, 1e-5), 32), [rnd([2, 3, 4], 48), rnd([4], 49), rnd([4], 50)]],
];

for (const [name, f, xs, tol1 = 1e-7, tol2 = 1e-6] of gradCases) {
  test(`gradient of ${name} matches float64 finite differences`, () => checkFirstOrder(name, f, xs, tol1));
  test(`second-order gradient of ${name} matches finite differences`, () => checkSecondOrder(name, f, xs, tol2));
}

test("stopGradient: first and second derivatives equal those with the stopped value frozen as a constant", () => {
  const a0 = rnd([3], 51);
  const frozen = op.tanh(a0); // tanh(a0) as a plain constant
  const stopped = (a: Tensor) => readout(E.mulB(E.stopGradient(op.tanh(a)), a), 33);
  const constant = (a: Tensor) => readout(E.mulB(frozen, a), 33);
  const v1 = a0.variable(),
    v2 = a0.variable();
  const [g1] = grad(stopped(v1), [v1], { createGraph: true });
  const [g2] = grad(constant(v2), [v2], { createGraph: true });
  close(g1.data, g2.data, 1e-15, "first order");
  const fd = finiteDifferenceGrad((d) => constant(new Tensor(d, [3])).item(), a0.data as Float64Array);
  assert.ok(relativeError(g1.data, fd) < 1e-7);
  const [h1] = grad(op.sumSquares(g1), [v1]),
    [h2] = grad(op.sumSquares(g2), [v2]);
  close(h1.data, h2.data, 1e-15, "second order");
});
