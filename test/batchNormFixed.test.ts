/**
 * BatchNorm with fixed statistics by one kernel (engine/norm.ts batchNormFixed) against the broadcast-op chain it
 * replaces (elementwise.ts batchNorm): the same bits for values, input gradients and second derivatives, inside a
 * storage scope on the wasm backend (as inference, gcx measure and the exact GC run graph models).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Tensor } from "../src/engine/tensor.js";
import * as op from "../src/engine/ops.js";
import * as E from "../src/engine/elementwise.js";
import { batchNormFixed } from "../src/engine/norm.js";
import { grad } from "../src/engine/autograd.js";
import { availableBackends, scope, withBackend } from "../src/engine/backend.js";
import { Rng } from "../src/util/rng.js";

const hasWasm = availableBackends().includes("wasm");

function rand(shape: number[], rng: Rng, f: (v: number) => number = (v) => v): Tensor {
  const n = shape.reduce((p, q) => p * q, 1);
  return new Tensor(
    Float32Array.from({ length: n }, () => f(rng.normal())),
    shape,
  );
}

function sameBits(a: Float32Array | Float64Array, b: Float32Array | Float64Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: lengths`);
  const x = new Uint32Array(Float32Array.from(a).buffer),
    y = new Uint32Array(Float32Array.from(b).buffer);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) assert.fail(`${what}: element ${i}: ${a[i]} vs ${b[i]}`);
}

for (const shape of [
  [4, 5, 6, 16],
  [3, 7, 5, 13],
  [100, 3],
]) {
  test(
    `batchNormFixed = elementwise batchNorm to second order, x [${shape.join(",")}]`,
    { skip: !hasWasm && "no wasm" },
    () => {
      const rng = new Rng(7);
      const C = shape[shape.length - 1];
      const x0 = rand(shape, rng),
        mean = rand([C], rng),
        variance = rand([C], rng, (v) => v * v + 0.1),
        gamma = rand([C], rng),
        beta = rand([C], rng),
        w0 = rand(shape, rng),
        v = rand(shape, rng);
      const run = (fused: boolean) =>
        withBackend("wasm", () =>
          scope(() => {
            const x = x0.variable(),
              w = w0.variable();
            const y = fused
              ? batchNormFixed(x, mean, variance, gamma, beta, 1e-5)
              : E.batchNorm(x, mean, variance, gamma, beta, 1e-5);
            assert.ok(y, "the wasm backend takes the fused path");
            const [gx] = grad(op.sum(op.mul(y, w)), [x], { createGraph: true });
            const [gw] = grad(op.sum(op.mul(gx, v)), [w]);
            return { y: y.data, gx: gx.data, gw: gw.data };
          }),
        );
      const a = run(true),
        b = run(false);
      sameBits(a.y, b.y, "values");
      sameBits(a.gx, b.gx, "input gradient");
      sameBits(a.gw, b.gw, "second order");
    },
  );
}

test("batchNormFixed declines when a statistic or parameter is differentiated", { skip: !hasWasm && "no wasm" }, () => {
  const rng = new Rng(8);
  const x = rand([8, 40], rng),
    s = rand([40], rng, (v) => v * v + 0.1);
  withBackend("wasm", () =>
    scope(() => {
      assert.equal(batchNormFixed(x, s, s, s.variable(), s, 1e-5), null);
      assert.ok(batchNormFixed(x, s, s, s, s, 1e-5));
    }),
  );
});
