import { test } from "node:test";
import assert from "node:assert/strict";
import { Tensor } from "../src/engine/tensor.js";
import * as op from "../src/engine/ops.js";
import { grad } from "../src/engine/autograd.js";
import { Rng } from "../src/util/rng.js";
import { finiteDifferenceGrad, randomTensor, relativeError, checkGrad } from "./helpers.js";

/**
 * Checks a second derivative: the gradient of P(x) = Σ (∂f/∂x ⊙ r)² (built with createGraph) against finite
 * differences of P evaluated through the engine's first-order gradient.
 */
function checkSecondOrder(name: string, f: (x: Tensor) => Tensor, x: Tensor, rng: Rng, tol = 1e-6): void {
  const r = randomTensor([...x.shape], rng);
  const P = (xx: Tensor, create: boolean) => {
    const [g] = grad(f(xx), [xx], { createGraph: create });
    return op.sumSquares(op.mul(g, r));
  };
  const xv = x.variable();
  const [gg] = grad(P(xv, true), [xv]);
  const fd = finiteDifferenceGrad(
    (d) => P(new Tensor(d, x.shape).variable(), false).item(),
    x.data as Float64Array,
    1e-5,
  );
  const err = relativeError(gg.data, fd);
  assert.ok(err < tol, `${name} (second order): relative error ${err}`);
}

const rng = new Rng(1);
const B = randomTensor([4, 3], rng);
const C = randomTensor([3, 5], rng);

const cases: [string, (x: Tensor) => Tensor, number[]][] = [
  ["matmul", (x) => op.sumSquares(op.matmul(x, C)), [4, 3]],
  ["matmul transA", (x) => op.sumSquares(op.matmul(x, C, true)), [3, 4]],
  ["matmul transB", (x) => op.sumSquares(op.matmul(x, B, false, true)), [2, 3]],
  ["matmul transA transB", (x) => op.sumSquares(op.matmul(B, x, true, true)), [5, 4]],
  ["bias add", (x) => op.sumSquares(op.tanh(op.add(op.matmul(B, C), x))), [5]],
  ["tanh", (x) => op.sum(op.mul(op.tanh(x), op.tanh(op.scale(x, 0.7)))), [3, 4]],
  ["exp", (x) => op.sum(op.exp(op.scale(x, 0.5))), [6]],
  ["relu", (x) => op.sumSquares(op.relu(op.matmul(x, C))), [4, 3]],
  ["softmax", (x) => op.sumSquares(op.mul(op.softmax(x), op.tanh(x))), [3, 4]],
  ["logsumexp", (x) => op.sumSquares(op.logSumExpRows(x)), [3, 4]],
  ["sumRows/broadcastCols", (x) => op.sumSquares(op.broadcastCols(op.sumRows(op.tanh(x)), 3)), [2, 5]],
  [
    "conv same",
    (x) => op.sumSquares(op.tanh(op.conv2d(x, randomTensor([2, 3, 3, 2], new Rng(5)), 1, "same"))),
    [2, 5, 4, 2],
  ],
  [
    "conv valid stride 2",
    (x) => op.sumSquares(op.tanh(op.conv2d(x, randomTensor([3, 3, 3, 1], new Rng(6)), 2, "valid"))),
    [1, 7, 6, 1],
  ],
  [
    "conv weight",
    (w) => op.sumSquares(op.tanh(op.conv2d(randomTensor([2, 5, 5, 2], new Rng(7)), w, 1, "same"))),
    [3, 3, 3, 2],
  ],
  ["maxpool", (x) => op.sumSquares(op.tanh(op.maxPool2d(x, 2, 2))), [2, 4, 4, 3]],
  ["maxpool overlapping", (x) => op.sumSquares(op.tanh(op.maxPool2d(x, 3, 2))), [1, 5, 5, 2]],
  ["avgpool", (x) => op.sumSquares(op.tanh(op.avgPool2d(x, 2, 2))), [2, 4, 4, 3]],
];

for (const [name, f, shape] of cases) {
  test(`gradient of ${name} matches float64 finite differences`, () => {
    checkGrad(name, f, randomTensor(shape, new Rng(shape.length * 31 + name.length)));
  });
  // ReLU and max are piecewise linear: their second derivative is zero almost everywhere, checked the same way.
  test(`second-order gradient of ${name} matches finite differences`, () => {
    checkSecondOrder(name, f, randomTensor(shape, new Rng(name.length)), new Rng(3));
  });
}

test("grad of a function that does not use the input is zero, and constants do not record a graph", () => {
  const x = randomTensor([3], rng).variable();
  const y = op.sumSquares(randomTensor([3], rng));
  assert.equal(y.requiresGrad, false);
  const [g] = grad(op.add(y, op.scale(op.sum(x), 0)), [x]);
  assert.deepEqual(Array.from(g.data), [0, 0, 0]);
});

test("gradients accumulate over every use of a tensor", () => {
  const x = new Tensor(Float64Array.from([1.5, -2]), [2]).variable();
  const [g] = grad(op.sum(op.add(op.mul(x, x), op.scale(x, 3))), [x]);
  assert.deepEqual(Array.from(g.data), [2 * 1.5 + 3, 2 * -2 + 3]);
});

test("matmul kernel matches a naive triple loop including odd sizes and zero rows", () => {
  const r = new Rng(9);
  for (const [m, k, n] of [
    [1, 1, 1],
    [5, 7, 3],
    [9, 4, 6],
  ]) {
    const a = randomTensor([m, k], r),
      b = randomTensor([k, n], r);
    a.data.fill(0, 0, k); // an all-zero row exercises the sparsity skip
    const c = op.matmul(a, b);
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let q = 0; q < k; q++) s += a.data[i * k + q] * b.data[q * n + j];
        assert.ok(Math.abs(c.data[i * n + j] - s) < 1e-12);
      }
  }
});

test("shape errors are reported", () => {
  assert.throws(() => op.matmul(randomTensor([2, 3], rng), randomTensor([2, 3], rng)), /inner sizes differ/);
  assert.throws(() => op.add(randomTensor([2, 3], rng), randomTensor([2], rng)), /cannot broadcast/);
});

test("wasm and JS matmul kernels agree on float32 data of many shapes", async () => {
  const { matmulJs, matmul } = await import("../src/engine/kernels.js");
  const { wasmAvailable } = await import("../src/engine/wasmKernels.js");
  assert.ok(wasmAvailable() || process.env.GCX_NO_WASM === "1", "the wasm kernels are built by npm run build");
  const r = new Rng(10);
  // The last two are big enough to be split across the two-thread kernel (src/engine/wasmThreads.ts).
  for (const [m, k, n] of [
    [16, 16, 16],
    [17, 33, 9],
    [130, 70, 65],
    [3, 500, 7],
    [130, 300, 70],
    [257, 100, 50],
  ]) {
    const a = Float32Array.from({ length: m * k }, () => (r.uniform() < 0.3 ? 0 : r.normal()));
    const b = Float32Array.from({ length: k * n }, () => r.normal());
    const c1 = new Float32Array(m * n),
      c2 = new Float32Array(m * n);
    matmul(a, b, c1, m, k, n);
    matmulJs(a, b, c2, m, k, n);
    assert.ok(relativeError(c1, c2) < 1e-5, `${m}x${k}x${n}`);
  }
});
