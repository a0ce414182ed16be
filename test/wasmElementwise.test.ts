// The elementwise, reduction and softmax wasm kernels (assembly/elementwise.ts, assembly/reduce.ts) against the JS
// engine on random float32 data of odd sizes: bit for bit where the kernel claims it, else within stated ulps of
// the float64 reference.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Tensor } from "../src/engine/tensor.js";
import * as op from "../src/engine/ops.js";
import * as E from "../src/engine/elementwise.js";
import * as K from "../src/engine/kernels.js";
import { grad } from "../src/engine/autograd.js";
import { softmaxCrossEntropy } from "../src/training/losses.js";
import { Rng } from "../src/util/rng.js";
import { loadHarness, type WasmHarness } from "./wasmHarness.js";
import { setBackend } from "../src/engine/backend.js";

// The references are the JS kernels: run the engine on its JS backend whatever the default backend is.
setBackend("js");

const SIZES = [1, 3, 4, 7, 33, 130, 1027];

function randF32(n: number, rng: Rng, std = 1): Float32Array {
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = std * rng.normal();
  return d;
}

const t32 = (d: Float32Array, shape: number[] = [d.length]): Tensor => new Tensor(d, shape);

/** Distance in float32 units in the last place (0 when both are NaN or equal, Infinity when one is NaN). */
function ulps(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b) ? 0 : Infinity;
  if (a === b) return 0;
  const ord = (v: number): number => {
    const i = new Int32Array(new Float32Array([v]).buffer)[0];
    return i < 0 ? -(i & 0x7fffffff) : i;
  };
  return Math.abs(ord(a) - ord(b));
}

const MIN_NORMAL = 2 ** -126;

/**
 * Largest ulp distance over normal float32 results; a subnormal expected value (which carries fewer than 24 bits)
 * only needs an absolute error below 2⁻¹²⁶.
 */
function maxUlps(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < want.length; i++) {
    const w = Math.fround(want[i]);
    if (Math.abs(w) < MIN_NORMAL) assert.ok(Math.abs(got[i] - w) < MIN_NORMAL, `subnormal result ${got[i]} vs ${w}`);
    else m = Math.max(m, ulps(got[i], w));
  }
  return m;
}

function assertBitEqual(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const g = got[i],
      w = Math.fround(want[i]);
    assert.ok(Object.is(g, w) || (Number.isNaN(g) && Number.isNaN(w)), `${what}[${i}]: ${g} vs ${w}`);
  }
}

function harness(t: { skip(msg: string): void }): WasmHarness | null {
  const h = loadHarness();
  if (!h) t.skip("dist/wasm/kernels.wasm not built");
  return h;
}

/** Inputs with the special values every unary kernel must handle. */
function unaryInputs(n: number, rng: Rng, std: number): Float32Array {
  const d = randF32(n, rng, std);
  const special = [
    0,
    -0,
    1e-8,
    -1e-8,
    0.6249,
    0.6251,
    -0.625,
    20,
    -20,
    88.5,
    -88.5,
    -95,
    -103,
    89,
    200,
    -200,
    1e20,
    -1e20,
    3e38,
    -3e38,
    Infinity,
    -Infinity,
    NaN,
  ];
  for (let i = 0; i < special.length && i < n; i++) d[(i * 7919) % n] = special[i];
  return d;
}

test("wasm binary ops, row-vector and general broadcasting equal the JS ops bit for bit", (t) => {
  const h = harness(t);
  if (!h) return;
  const rng = new Rng(1);
  const x = h.exports;
  for (const n of SIZES) {
    h.reset();
    const A = randF32(n, rng),
      B = randF32(n, rng, 2);
    const a = h.put(A),
      b = h.put(B),
      o = h.alloc(n);
    x.ew_add(a, b, o, n);
    assertBitEqual(h.get(o, n), op.add(t32(A), t32(B)).data, `add n=${n}`);
    x.ew_sub(a, b, o, n);
    assertBitEqual(h.get(o, n), op.sub(t32(A), t32(B)).data, `sub n=${n}`);
    x.ew_mul(a, b, o, n);
    assertBitEqual(h.get(o, n), op.mul(t32(A), t32(B)).data, `mul n=${n}`);
    assertBitEqual(h.get(o, n), op.mulConst(t32(A), B).data, `mulConst n=${n}`);
    x.ew_div(a, b, o, n);
    assertBitEqual(h.get(o, n), E.divB(t32(A), t32(B)).data, `div n=${n}`);
    x.ew_add(a, b, a, n); // in place
    assertBitEqual(h.get(a, n), op.add(t32(A), t32(B)).data, `add in place n=${n}`);
  }
  for (const [rows, cols] of [
    [1, 1],
    [3, 5],
    [17, 4],
    [128, 257],
  ]) {
    h.reset();
    const X = randF32(rows * cols, rng),
      V = randF32(cols, rng);
    const xp = h.put(X),
      vp = h.put(V),
      o = h.alloc(rows * cols);
    const split = rows >> 1; // two row ranges, as two threads would run them
    x.add_row_vector(xp, vp, o, cols, 0, split);
    x.add_row_vector(xp, vp, o, cols, split, rows);
    assertBitEqual(h.get(o, rows * cols), op.add(t32(X, [rows, cols]), t32(V)).data, `bias add ${rows}x${cols}`);
    x.mul_row_vector(xp, vp, o, cols, 0, rows);
    assertBitEqual(h.get(o, rows * cols), E.mulB(t32(X, [rows, cols]), t32(V)).data, `row scale ${rows}x${cols}`);
  }
  const shapes: [number[], number[]][] = [
    [
      [2, 1, 5],
      [3, 1],
    ],
    [[4, 3], [3]],
    [[1], [2, 3, 7]],
    [
      [6, 1, 1, 3],
      [1, 5, 2, 1],
    ],
    [[5], [5]],
  ];
  const ops = [E.addB, E.subB, E.mulB, E.divB];
  for (const [sa, sb] of shapes) {
    const out = E.broadcastShapes(sa, sb);
    const na = sa.reduce((p, q) => p * q, 1),
      nb = sb.reduce((p, q) => p * q, 1),
      no = out.reduce((p, q) => p * q, 1);
    const A = randF32(na, rng),
      B = randF32(nb, rng);
    for (let code = 0; code < 4; code++) {
      h.reset();
      const ints = (v: number[]): number => {
        const p = h.alloc(v.length);
        new Int32Array(h.memory.buffer, p, v.length).set(v);
        return p;
      };
      const o = h.alloc(no);
      x.broadcast_binary(
        code,
        h.put(A),
        ints(K.broadcastStrides(sa, out)),
        h.put(B),
        ints(K.broadcastStrides(sb, out)),
        o,
        ints(out),
        out.length,
        h.alloc(out.length),
      );
      assertBitEqual(h.get(o, no), ops[code](t32(A, sa), t32(B, sb)).data, `broadcast op ${code} [${sa}]∘[${sb}]`);
    }
  }
});

test("wasm affine, scalar products, relu family equal the JS ops bit for bit", (t) => {
  const h = harness(t);
  if (!h) return;
  const rng = new Rng(2);
  const x = h.exports;
  for (const n of SIZES) {
    h.reset();
    const A = unaryInputs(n, rng, 3);
    const a = h.put(A),
      o = h.alloc(n),
      m = h.alloc(n);
    for (const [alpha, beta] of [
      [0.1, -0.3],
      [-1, 0],
      [1 / 128, 0],
      [-0.01, 1e-5],
    ]) {
      x.ew_affine(a, o, n, alpha, beta);
      assertBitEqual(h.get(o, n), op.affine(t32(A), alpha, beta).data, `affine(${alpha}, ${beta}) n=${n}`);
    }
    const s = Math.fround(0.7310586);
    x.ew_mul_scalar(a, o, n, s);
    assertBitEqual(h.get(o, n), op.mulScalar(t32(A), t32(new Float32Array([s]), [])).data, `mulScalar n=${n}`);
    x.ew_one_minus_square(a, o, n);
    assertBitEqual(h.get(o, n), op.tanhDerivativeOf(t32(A)).data, `1 − y² n=${n}`);
    x.ew_relu(a, o, m, n);
    assertBitEqual(h.get(o, n), op.relu(t32(A)).data, `relu n=${n}`);
    assertBitEqual(h.get(m, n), op.reluMask(t32(A)), `relu mask n=${n}`);
    x.ew_fill(m, n, 5);
    x.ew_relu_mask(a, m, n);
    assertBitEqual(h.get(m, n), op.reluMask(t32(A)), `reluMask n=${n}`);
    x.ew_leaky_relu(a, o, m, n, 0.01);
    assertBitEqual(h.get(o, n), E.leakyRelu(t32(A), 0.01).data, `leakyRelu n=${n}`);
    assertBitEqual(
      h.get(m, n),
      Array.from(A, (v) => (v > 0 ? 1 : 0.01)),
      `leakyRelu mask n=${n}`,
    );
    const G = unaryInputs(n, rng, 1);
    const Y = Float32Array.from(A, (v) => Math.tanh(v)),
      S = Float32Array.from(A, (v) => 1 / (1 + Math.exp(-v)));
    const gp = h.put(G),
      yp = h.put(Y),
      sp = h.put(S);
    x.ew_tanh_backward(gp, yp, o, n);
    assertBitEqual(h.get(o, n), op.mul(t32(G), op.tanhDerivativeOf(t32(Y))).data, `tanh backward n=${n}`);
    x.ew_sigmoid_backward(gp, sp, o, n);
    assertBitEqual(
      h.get(o, n),
      E.mulB(t32(G), E.mulB(t32(S), op.affine(t32(S), -1, 1))).data,
      `sigmoid backward n=${n}`,
    );
    x.ew_fill(o, n, -2.5);
    assert.ok(
      h.get(o, n).every((v) => v === -2.5),
      "fill",
    );
    // +0 takes the bulk-memory fill, −0 the store loop: both exact to the bit, and neither writes past n.
    const f = h.alloc(n + 1);
    x.ew_fill(f, n + 1, -2.5);
    x.ew_fill(f, n, 0);
    assert.ok(h.get(f, n).every((v) => Object.is(v, 0)) && h.get(f, n + 1)[n] === -2.5, "fill +0");
    x.ew_fill(f, n, -0);
    assert.ok(h.get(f, n).every((v) => Object.is(v, -0)) && h.get(f, n + 1)[n] === -2.5, "fill −0");
  }
});

test("wasm transcendentals are within a few float32 ulps of float64 Math (and of the JS ops)", (t) => {
  const h = harness(t);
  if (!h) return;
  const rng = new Rng(3);
  const x = h.exports;
  const erf = (v: number) => K.erfScalar(v);
  const sig = (v: number) => (v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v)));
  const k = Math.sqrt(2 / Math.PI);
  const cases: [string, (v: number) => number, number, number][] = [
    // name, float64 reference, input std, ulps allowed
    ["ew_exp", Math.exp, 10, 2],
    ["ew_tanh", Math.tanh, 2, 2],
    ["ew_sigmoid", sig, 6, 3],
    ["ew_silu", (v) => v * sig(v), 4, 3], // below x ≈ −87 σ(x) is subnormal and x·σ(x) loses bits with it
    // ½x(1 + tanh u) = x·σ(2u): the same function without the float64 cancellation of the JS form in the tail
    ["ew_gelu_tanh", (v) => v * sig(2 * k * (v + 0.044715 * v * v * v)), 3, 8],
    ["ew_erf", erf, 2, 1],
    ["ew_gelu_erf", (v) => 0.5 * v * (1 + erf(v * Math.SQRT1_2)), 3, 1],
  ];
  const worst: Record<string, number> = {};
  for (const [name, ref, std, tol] of cases) {
    for (const n of SIZES) {
      h.reset();
      const A = unaryInputs(n, rng, std);
      const a = h.put(A),
        o = h.alloc(n);
      x[name](a, o, n);
      const got = h.get(o, n);
      const want = Array.from(A, ref);
      const u = maxUlps(got, want);
      worst[name] = Math.max(worst[name] ?? 0, u);
      assert.ok(u <= tol, `${name} n=${n}: ${u} ulps (allowed ${tol})`);
    }
  }
  // A dense sweep over each function's whole float32 range, for the measured maximum.
  const sweeps: [string, number, number][] = [
    ["ew_exp", -104, 89],
    ["ew_tanh", -10, 10],
    ["ew_sigmoid", -104, 30],
    ["ew_silu", -87, 30],
    ["ew_gelu_tanh", -12, 12],
  ];
  for (const [name, lo, hi] of sweeps) {
    h.reset();
    const n = 200003;
    const A = new Float32Array(n).map((_, i) => lo + ((hi - lo) * i) / (n - 1));
    const a = h.put(A),
      o = h.alloc(n);
    x[name](a, o, n);
    const ref = cases.find((c) => c[0] === name)!;
    const u = maxUlps(h.get(o, n), Array.from(A, ref[1]));
    worst[name] = Math.max(worst[name], u);
    assert.ok(u <= ref[3], `${name} sweep [${lo}, ${hi}]: ${u} ulps`);
  }
  // The derivative pair and the JS ops themselves.
  h.reset();
  const A = unaryInputs(1027, rng, 2);
  const a = h.put(A),
    o = h.alloc(A.length),
    d = h.alloc(A.length);
  x.ew_tanh_with_derivative(a, o, d, A.length);
  const T = h.get(o, A.length);
  assert.ok(maxUlps(T, op.tanh(t32(A)).data) <= 4, "tanh vs op.tanh");
  assertBitEqual(
    h.get(d, A.length),
    Array.from(T, (v) => Math.fround(1 - Math.fround(v * v))),
    "tanh derivative",
  );
  x.ew_exp(a, o, A.length);
  assert.ok(maxUlps(h.get(o, A.length), op.exp(t32(A)).data) <= 4, "exp vs op.exp");
  x.ew_sigmoid(a, o, A.length);
  assert.ok(maxUlps(h.get(o, A.length), E.sigmoid(t32(A)).data) <= 4, "sigmoid vs E.sigmoid");
  x.ew_gelu_erf(a, o, A.length);
  assert.ok(maxUlps(h.get(o, A.length), E.gelu(t32(A)).data) <= 1, "gelu vs E.gelu");
  x.ew_gelu_tanh(a, o, A.length);
  const gt = h.get(o, A.length),
    jt = E.gelu(t32(A), "tanh").data;
  for (let i = 0; i < A.length; i++) {
    if (!Number.isFinite(A[i])) continue;
    assert.ok(
      Math.abs(gt[i] - jt[i]) <= 1e-6 * Math.max(1, Math.abs(A[i])),
      `gelu tanh at ${A[i]}: ${gt[i]} vs ${jt[i]}`,
    );
  }
  t.diagnostic(`max ulps vs float64 reference: ${JSON.stringify(worst)}`);
});

test("wasm softplus equals the JS kernel (f64 path) including the mask", (t) => {
  const h = harness(t);
  if (!h) return;
  const rng = new Rng(4);
  for (const n of SIZES) {
    for (const [beta, threshold] of [
      [1, 20],
      [2.5, 10],
    ]) {
      h.reset();
      const A = unaryInputs(n, rng, 8);
      const a = h.put(A),
        o = h.alloc(n),
        m = h.alloc(n);
      h.exports.ew_softplus(a, o, m, n, beta, threshold);
      const out = new Float32Array(n),
        mask = new Float32Array(n);
      K.softplus(A, out, mask, beta, threshold);
      assert.ok(maxUlps(h.get(o, n), out) <= 1, `softplus n=${n}`);
      assertBitEqual(h.get(m, n), mask, `softplus mask n=${n}`);
    }
  }
});

test("wasm sums: whole, sequential, squares, rows, columns and channel moments", (t) => {
  const h = harness(t);
  if (!h) return;
  const rng = new Rng(5);
  const x = h.exports;
  for (const n of SIZES) {
    h.reset();
    const A = randF32(n, rng, 3);
    const a = h.put(A);
    let s = 0,
      sq = 0;
    for (const v of A) {
      s += v;
      sq += Math.fround(v * v);
    }
    assert.equal(x.sum_sequential(a, n), s, "sum_sequential is the JS loop");
    assert.equal(Math.fround(x.sum_sequential(a, n) as number), op.sum(t32(A)).data[0], "sum_sequential vs op.sum");
    let abs = 0;
    for (const v of A) abs += Math.abs(v);
    assert.ok(Math.abs((x.sum(a, n) as number) - s) <= 1e-15 * abs * 8, `sum n=${n}`);
    assert.ok(Math.abs((x.sum_squares(a, n) as number) - sq) <= 1e-15 * sq * 8, `sum_squares n=${n}`);
    assert.equal(Math.fround(x.sum_squares(a, n) as number), op.sumSquares(t32(A)).data[0], `sum_squares vs op n=${n}`);
  }
  for (const [rows, cols] of [
    [1, 1],
    [5, 3],
    [9, 17],
    [130, 33],
    [64, 100],
  ]) {
    h.reset();
    const X = randF32(rows * cols, rng, 2),
      xp = h.put(X),
      T = t32(X, [rows, cols]);
    const o = h.alloc(rows),
      oc = h.alloc(cols),
      om = h.alloc(cols),
      ov = h.alloc(cols);
    x.sum_rows(xp, o, cols, 0, 1);
    x.sum_rows(xp, o, cols, 1, rows);
    assertBitEqual(h.get(o, rows), op.sumRows(T).data, `sumRows ${rows}x${cols}`);
    const half = cols >> 1;
    x.sum_columns(xp, oc, rows, cols, 0, half);
    x.sum_columns(xp, oc, rows, cols, half, cols);
    assertBitEqual(h.get(oc, cols), op.sumToLastAxis(T).data, `sumToLastAxis ${rows}x${cols}`);
    x.sum_columns_f64(xp, oc, rows, cols, 0, cols);
    assertBitEqual(h.get(oc, cols), E.sumTo(T, [cols]).data, `sumTo ${rows}x${cols}`);
    x.channel_moments(xp, om, ov, rows, cols, 0, half);
    x.channel_moments(xp, om, ov, rows, cols, half, cols);
    const { mean, variance } = E.channelMoments(T);
    assertBitEqual(h.get(om, cols), mean.data, `channel mean ${rows}x${cols}`);
    assertBitEqual(h.get(ov, cols), variance.data, `channel variance ${rows}x${cols}`);
  }
});

test("wasm softmax, logsumexp and softmax cross-entropy (loss and gradient) against the JS engine", (t) => {
  const h = harness(t);
  if (!h) return;
  const rng = new Rng(6);
  const x = h.exports;
  let worstSoftmax = 0,
    worstLse = 0,
    worstLoss = 0,
    worstGrad = 0;
  for (const [rows, cols] of [
    [1, 1],
    [1, 10],
    [7, 3],
    [128, 10],
    [33, 257],
  ]) {
    h.reset();
    const Z = randF32(rows * cols, rng, 4);
    Z[0] = 30; // a large logit
    const labels = new Int32Array(rows).map(() => Math.floor(rng.uniform() * cols));
    const zp = h.put(Z),
      lp = h.alloc(rows),
      o = h.alloc(rows * cols),
      ol = h.alloc(rows);
    new Int32Array(h.memory.buffer, lp, rows).set(labels);
    const T = t32(Z, [rows, cols]);
    const split = rows >> 1;
    x.softmax_rows(zp, o, cols, 0, split);
    x.softmax_rows(zp, o, cols, split, rows);
    const sm = h.get(o, rows * cols);
    worstSoftmax = Math.max(worstSoftmax, maxUlps(sm, op.softmax(T).data));
    x.logsumexp_rows(zp, ol, cols, 0, rows);
    const lse = op.logSumExpRows(T).data;
    worstLse = Math.max(worstLse, maxUlps(h.get(ol, rows), lse));
    // loss: mean(logsumexp − z_y)
    const loss = softmaxCrossEntropy(T, labels).data[0];
    const got = x.softmax_ce_mean(zp, lp, rows, cols) as number;
    worstLoss = Math.max(worstLoss, Math.abs(got - loss) / Math.max(1, Math.abs(loss)));
    x.softmax_ce_rows(zp, lp, ol, cols, 0, rows);
    const rowLoss = h.get(ol, rows);
    for (let r = 0; r < rows; r++) {
      assert.ok(Math.abs(rowLoss[r] - (lse[r] - Z[r * cols + labels[r]])) <= 1e-6 * (1 + Math.abs(lse[r])), "row loss");
    }
    // gradient against the engine's autograd of the same loss
    const zv = new Tensor(Float32Array.from(Z), [rows, cols], true);
    const [g] = grad(softmaxCrossEntropy(zv, labels), [zv]);
    x.softmax_ce_grad(zp, lp, o, cols, 1 / rows, 0, split);
    x.softmax_ce_grad(zp, lp, o, cols, 1 / rows, split, rows);
    const G = h.get(o, rows * cols);
    for (let i = 0; i < G.length; i++) worstGrad = Math.max(worstGrad, Math.abs(G[i] - g.data[i]) * rows);
    // in place (grad aliasing logits) gives the same numbers
    x.softmax_ce_grad(zp, lp, zp, cols, 1 / rows, 0, rows);
    assertBitEqual(h.get(zp, rows * cols), G, "softmax_ce_grad in place");
  }
  // Huge finite logits (weights at init scale 1e10): exact zeros, ones and no NaN, as in the JS engine.
  for (const row of [
    [1e20, -1e20, 0, 5],
    [3e38, -3e38, 1e30, 2],
    [-1e25, -1e25 * 1.5, -2e25, -1e25],
    [1, 2, 3, -Infinity],
  ]) {
    h.reset();
    const Z = Float32Array.from(row),
      zp = h.put(Z),
      o = h.alloc(4),
      lp = h.alloc(1),
      ol = h.alloc(1);
    x.softmax_rows(zp, o, 4, 0, 1);
    assertBitEqual(h.get(o, 4), op.softmax(t32(Z, [1, 4])).data, `softmax of [${row}]`);
    x.logsumexp_rows(zp, ol, 4, 0, 1);
    assertBitEqual(h.get(ol, 1), op.logSumExpRows(t32(Z, [1, 4])).data, `logsumexp of [${row}]`);
    x.softmax_ce_grad(zp, lp, o, 4, 1, 0, 1);
    const p = op.softmax(t32(Z, [1, 4])).data;
    assertBitEqual(h.get(o, 4), [p[0] - 1, p[1], p[2], p[3]], `CE gradient of [${row}]`);
  }
  t.diagnostic(
    `softmax ${worstSoftmax} ulps, logsumexp ${worstLse} ulps, mean loss rel ${worstLoss.toExponential(2)}, ` +
      `grad·m abs ${worstGrad.toExponential(2)}`,
  );
  assert.ok(worstSoftmax <= 6, `softmax: ${worstSoftmax} ulps`);
  assert.ok(worstLse <= 2, `logsumexp: ${worstLse} ulps`);
  assert.ok(worstLoss <= 2e-6, `loss: ${worstLoss}`);
  assert.ok(worstGrad <= 2e-6, `grad: ${worstGrad}`);
});

test("wasm pieces of the closed-form Jacobian: row squares, per-example row groups, repeated-row masks", (t) => {
  const h = harness(t);
  if (!h) return;
  const rng = new Rng(7);
  const x = h.exports;
  for (const [batch, k, cols] of [
    [1, 1, 1],
    [3, 2, 5],
    [17, 10, 33],
    [8, 3, 256],
  ]) {
    h.reset();
    const rows = batch * k;
    const X = randF32(rows * cols, rng),
      Y = randF32(rows * cols, rng),
      Mk = randF32(batch * cols, rng);
    const xp = h.put(X),
      yp = h.put(Y),
      mp = h.put(Mk),
      o = h.alloc(rows * cols),
      o64 = h.alloc(2 * batch);
    x.sum_rows_squares(xp, o, cols, 0, rows >> 1);
    x.sum_rows_squares(xp, o, cols, rows >> 1, rows);
    const T = new Tensor(X, [rows, cols]);
    assertBitEqual(h.get(o, rows), op.sumRows(op.mul(T, T)).data, `row squares ${rows}x${cols}`);
    // the JS loops of denseJacobianSqNorms
    const want = new Float64Array(batch),
      wantDot = new Float64Array(batch);
    for (let r = 0; r < rows; r++) {
      let s = 0,
        sd = 0;
      for (let j = 0; j < cols; j++) {
        s += X[r * cols + j] ** 2;
        sd += X[r * cols + j] * Y[r * cols + j];
      }
      want[Math.floor(r / k)] += s;
      wantDot[Math.floor(r / k)] += sd;
    }
    x.group_dots(xp, xp, o64, k, cols, 0, batch);
    const readOut = (): number[] => Array.from(new Float64Array(h.memory.buffer.slice(o64, o64 + 8 * batch)));
    assert.deepEqual(readOut(), Array.from(want), "group squares");
    x.group_dots(xp, yp, o64, k, cols, 0, 1);
    x.group_dots(xp, yp, o64, k, cols, 1, batch);
    assert.deepEqual(readOut(), Array.from(wantDot), "group dots");
    x.mul_repeated_rows(xp, mp, o, k, cols, 0, batch);
    const rep = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < cols; j++) rep[r * cols + j] = X[r * cols + j] * Mk[Math.floor(r / k) * cols + j];
    }
    assertBitEqual(h.get(o, rows * cols), rep, `repeated rows ${batch}x${k}x${cols}`);
  }
});
