/**
 * BatchNorm with fixed statistics (elementwise.ts batchNorm with constant statistics and affine parameters: one
 * bnApply kernel) against the broadcast-op chain it replaces (sub, mul, add): the same bits for values, input
 * gradients and second derivatives, inside a storage scope on the wasm backend (as inference, gcx measure and the
 * exact GC run graph models) and on the js backend (the reference loop).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Tensor } from "../src/engine/tensor.js";
import * as op from "../src/engine/ops.js";
import * as E from "../src/engine/elementwise.js";
import { grad } from "../src/engine/autograd.js";
import { availableBackends, kernels, scope, withBackend } from "../src/engine/backend.js";
import { Rng } from "../src/util/rng.js";

const hasWasm = availableBackends().includes("wasm");

/** The chain batchNorm ran before the bnApply kernel: (x − mean)·k + β by three broadcast ops. */
function chain(x: Tensor, mean: Tensor, variance: Tensor, gamma: Tensor, beta: Tensor, eps: number): Tensor {
  const k = E.mulB(gamma, E.powScalar(op.affine(variance, 1, eps), -0.5));
  return E.addB(E.mulB(E.subB(x, mean), k), beta);
}

/** Counts the active backend's bnApply kernel calls while fn runs (0 on js, which has no native entry). */
function bnApplyCalls<T>(fn: () => T): { value: T; calls: number } {
  const table = kernels() as { bnApply?: (...a: unknown[]) => boolean };
  const original = table.bnApply;
  let calls = 0;
  if (original)
    table.bnApply = (...a: unknown[]) => {
      calls++;
      return original(...a);
    };
  try {
    return { value: fn(), calls };
  } finally {
    if (original) table.bnApply = original;
  }
}

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

for (const [backend, shape] of [
  ["wasm", [4, 5, 6, 16]],
  ["wasm", [3, 7, 5, 13]],
  ["wasm", [100, 3]],
  ["js", [3, 7, 5, 13]],
] as [string, number[]][]) {
  test(
    `batchNorm with fixed statistics = the broadcast chain to second order, ${backend}, x [${shape.join(",")}]`,
    { skip: backend === "wasm" && !hasWasm && "no wasm" },
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
        withBackend(backend, () =>
          scope(() => {
            const x = x0.variable(),
              w = w0.variable();
            const { value: y, calls } = bnApplyCalls(() =>
              (fused ? E.batchNorm : chain)(x, mean, variance, gamma, beta, 1e-5),
            );
            if (fused && backend === "wasm" && x0.size >= 256) assert.equal(calls, 1, "the wasm bnApply kernel ran");
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

test(
  "batchNorm with a differentiated parameter runs the chain (gradients in γ)",
  { skip: !hasWasm && "no wasm" },
  () => {
    const rng = new Rng(8);
    const x = rand([8, 40], rng),
      s = rand([40], rng, (v) => v * v + 0.1);
    withBackend("wasm", () =>
      scope(() => {
        const g = s.variable();
        const { value: y, calls } = bnApplyCalls(() => E.batchNorm(x, s, s, g, s, 1e-5));
        assert.equal(calls, 0);
        const [dg] = grad(op.sum(y), [g]);
        assert.ok(dg.data.some((v) => v !== 0));
        assert.equal(bnApplyCalls(() => E.batchNorm(x, s, s, s, s, 1e-5)).calls, 1);
      }),
    );
  },
);
