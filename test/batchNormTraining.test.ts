/**
 * Training-mode BatchNorm as one op (elementwise.ts batchNormTraining: the batchNormForward/Backward kernel entries)
 * against independent truth: the float64 broadcast composite (channelMoments + batchNorm, whose derivatives the
 * elementwise tests check against finite differences) within float32 tolerance for values, batch statistics, the
 * first-order gradients in x, γ, β (closed form) and the second derivative (recorded backward); and the wasm kernels
 * against the reference loops (js backend) bit for bit.
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
const EPS = 1e-5;

function values(n: number, rng: Rng, f: (v: number) => number = (v) => v): number[] {
  return Array.from({ length: n }, () => f(rng.normal()));
}

const f32 = (v: number[], shape: number[]) => new Tensor(Float32Array.from(v), shape);
const f64 = (v: number[], shape: number[]) => new Tensor(Float64Array.from(v), shape);

/** |a − b| ≤ tol·(1 + |b|) elementwise; reports the worst element. */
function close(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: lengths`);
  let worst = 0,
    at = -1;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]) / (1 + Math.abs(b[i]));
    if (!(e <= worst)) [worst, at] = [e, i];
  }
  assert.ok(worst <= tol, `${what}: element ${at}: ${a[at]} vs ${b[at]} (relative error ${worst})`);
}

function sameBits(a: Float32Array | Float64Array, b: Float32Array | Float64Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: lengths`);
  const x = new Uint32Array(Float32Array.from(a).buffer),
    y = new Uint32Array(Float32Array.from(b).buffer);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) assert.fail(`${what}: element ${i}: ${a[i]} vs ${b[i]}`);
}

/** Counts calls of kernel entry `name` of the active backend while fn runs (0 where it has no native entry). */
function calls<T>(name: string, fn: () => T): { value: T; calls: number } {
  const table = kernels() as Record<string, ((...a: unknown[]) => boolean) | undefined>;
  const original = table[name];
  let n = 0;
  if (original)
    table[name] = (...a: unknown[]) => {
      n++;
      return original(...a);
    };
  try {
    return { value: fn(), calls: n };
  } finally {
    if (original) table[name] = original;
  }
}

interface Case {
  x: number[];
  gamma: number[];
  beta: number[];
  w: number[];
  v: number[];
  shape: number[];
}

function makeCase(shape: number[], seed: number): Case {
  const rng = new Rng(seed);
  const n = shape.reduce((p, q) => p * q, 1),
    C = shape[shape.length - 1];
  // Channel offsets and scales differ, as activations do, so the statistics matter.
  const x = values(n, rng).map((v, i) => 0.5 + (i % C) * 0.3 + v * (1 + (i % C) * 0.2));
  return { x, gamma: values(C, rng), beta: values(C, rng), w: values(n, rng), v: values(n, rng), shape };
}

/**
 * y, mean, variance, the first-order gradients of Σ y⊙w in (x, γ, β) without a recorded graph, and the second-order
 * gradient in w of Σ (∂Σy⊙w/∂x)⊙v (through the recorded backward), with `make` building the tensors.
 */
function evaluate(c: Case, make: (v: number[], s: number[]) => Tensor, fused: boolean) {
  const C = c.shape[c.shape.length - 1];
  const bn = (x: Tensor, g: Tensor, b: Tensor) => {
    if (fused) return E.batchNormTraining(x, g, b, EPS);
    const m = E.channelMoments(x);
    return { y: E.batchNorm(x, m.mean, m.variance, g, b, EPS), mean: m.mean, variance: m.variance };
  };
  const x = make(c.x, c.shape).variable(),
    gamma = make(c.gamma, [C]).variable(),
    beta = make(c.beta, [C]).variable(),
    w = make(c.w, c.shape).variable();
  const out = bn(x, gamma, beta);
  const first = grad(op.sum(op.mul(out.y, w)), [x, gamma, beta]);
  const [gx] = grad(op.sum(op.mul(bn(x, gamma, beta).y, w)), [x], { createGraph: true });
  const [gw] = grad(op.sum(op.mul(gx, make(c.v, c.shape))), [w]);
  return {
    y: out.y.data,
    mean: out.mean.data,
    variance: out.variance.data,
    dx: first[0].data,
    dgamma: first[1].data,
    dbeta: first[2].data,
    gw: gw.data,
  };
}

const SHAPES = [
  [4, 5, 6, 16],
  [3, 7, 5, 13],
  [100, 3],
  [16, 9, 9, 32],
];

for (const backend of ["js", "wasm"]) {
  for (const shape of SHAPES) {
    test(
      `batchNormTraining (${backend}) = the float64 composite within float32 tolerance, x [${shape.join(",")}]`,
      { skip: backend === "wasm" && !hasWasm && "no wasm" },
      () => {
        const c = makeCase(shape, 11 + shape.length);
        const truth = withBackend("js", () => evaluate(c, f64, false));
        const got = withBackend(backend, () => scope(() => evaluate(c, f32, true)));
        for (const [k, tol] of [
          ["y", 2e-6],
          ["mean", 2e-6],
          ["variance", 2e-6],
          ["dx", 2e-5],
          ["dgamma", 2e-5],
          ["dbeta", 2e-5],
          ["gw", 2e-5],
        ] as const)
          close(got[k], truth[k], tol, `${k}`);
      },
    );
  }
}

for (const shape of SHAPES) {
  test(
    `batchNormTraining: the wasm kernels give the reference loops' bits, x [${shape.join(",")}]`,
    { skip: !hasWasm && "no wasm" },
    () => {
      const c = makeCase(shape, 23 + shape.length);
      const ref = withBackend("js", () => evaluate(c, f32, true));
      const got = withBackend("wasm", () =>
        scope(() => {
          const f = calls("batchNormForward", () => calls("batchNormBackward", () => evaluate(c, f32, true)));
          // Forward twice (first and second order), closed-form backward once; the smallest case runs the reference.
          const big = c.x.length >= 256;
          assert.equal(f.calls, big ? 2 : 0, "batchNormForward calls");
          assert.equal(f.value.calls, big ? 1 : 0, "batchNormBackward calls");
          return f.value.value;
        }),
      );
      for (const k of ["y", "mean", "variance", "dx", "dgamma", "dbeta", "gw"] as const) sameBits(got[k], ref[k], k);
    },
  );
}

test("batchNormTraining runs the composite for float64 (the same bits) and checks its arguments", () => {
  const c = makeCase([6, 5, 4], 3);
  const a = evaluate(c, f64, true),
    b = evaluate(c, f64, false);
  for (const k of ["y", "mean", "variance", "dx", "dgamma", "dbeta", "gw"] as const) assert.deepEqual(a[k], b[k], k);
  assert.throws(() => E.batchNormTraining(f32([1, 2, 3], [3]), f32([1], [1]), f32([1], [1]), EPS), /rank ≥ 2/);
  assert.throws(() => E.batchNormTraining(f32([1, 2], [1, 2]), f32([1], [1]), f32([1, 1], [2]), EPS), /gamma/);
  assert.throws(() => E.batchNormTraining(f32([1, 2], [1, 2]), f32([1, 1], [2]), f32([1, 1], [2]), -1), /eps/);
});
