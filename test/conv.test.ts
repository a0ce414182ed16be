/**
 * Direct convolution (engine/conv.ts): three ops that are each other's derivatives. Their JS fallbacks are checked
 * in float64 against finite differences to second order, and the wasm kernels against the im2col path (the js
 * backend) in float32, values and first and second derivatives.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Tensor } from "../src/engine/tensor.js";
import * as op from "../src/engine/ops.js";
import { grad } from "../src/engine/autograd.js";
import { conv, convFilter, convInput } from "../src/engine/conv.js";
import { conv2dGeneral } from "../src/engine/spatial.js";
import { convGeometry } from "../src/engine/kernels.js";
import { getBackend, scope, withBackend } from "../src/engine/backend.js";
import { Rng } from "../src/util/rng.js";
import { checkGrad, randomTensor, relativeError } from "./helpers.js";

const geom = (x: Tensor, k: number, s: number, pad: [number, number, number, number], d = 1) =>
  convGeometry(x.shape, [k, k], [s, s], pad, [d, d]);
const CASES: [string, number, number, [number, number, number, number], number][] = [
  ["3x3 stride 1 pad 1", 3, 1, [1, 1, 1, 1], 1],
  ["3x3 stride 2 pad 1,0,0,1", 3, 2, [1, 0, 0, 1], 1],
  ["2x2 dilation 2", 2, 1, [0, 0, 1, 1], 2],
];

test("conv ops (JS fallback, float64): values equal the im2col convolution", () =>
  withBackend("js", () => {
    const rng = new Rng(1);
    for (const [name, k, s, pad, d] of CASES) {
      const x = randomTensor([2, 6, 5, 3], rng),
        w = randomTensor([4, k, k, 3], rng);
      const g = geom(x, k, s, pad, d);
      const ref = conv2dGeneral(x, w, { stride: [s, s], padding: pad, dilation: [d, d], groups: 1 });
      assert.ok(relativeError(conv(x, w, g).data, ref.data) < 1e-14, name);
    }
  }));

test("conv ops (JS fallback, float64): first and second derivatives of all three ops match finite differences", () =>
  withBackend("js", () => {
    const rng = new Rng(2);
    for (const [name, k, s, pad, d] of CASES) {
      const x = randomTensor([2, 5, 5, 2], rng),
        w = randomTensor([3, k, k, 2], rng);
      const g = geom(x, k, s, pad, d);
      const dy = randomTensor([2, g.outH, g.outW, 3], rng),
        r = randomTensor([2, g.outH, g.outW, 3], rng);
      const dot = (a: Tensor, b: Tensor) => op.sum(op.mul(a, b));
      checkGrad(`${name} conv ∂x`, (v) => op.sumSquares(conv(v, w, g)), x, 1e-6);
      checkGrad(`${name} conv ∂w`, (v) => op.sumSquares(conv(x, v, g)), w, 1e-6);
      checkGrad(`${name} convInput ∂dy`, (v) => op.sumSquares(convInput(v, w, g)), dy, 1e-6);
      checkGrad(`${name} convInput ∂w`, (v) => op.sumSquares(convInput(dy, v, g)), w, 1e-6);
      checkGrad(`${name} convFilter ∂x`, (v) => op.sumSquares(convFilter(v, dy, g, w.shape)), x, 1e-6);
      checkGrad(`${name} convFilter ∂dy`, (v) => op.sumSquares(convFilter(x, v, g, w.shape)), dy, 1e-6);
      // Second order: the gradient (a convInput/convFilter) differentiated again, as the GC penalty does.
      checkGrad(
        `${name} ∂/∂w ‖∂⟨conv, r⟩/∂x‖²`,
        (v) => {
          const xv = x.variable();
          const [gx] = grad(dot(op.tanh(conv(xv, v, g)), r), [xv], { createGraph: true });
          return op.sumSquares(gx);
        },
        w,
        1e-6,
      );
    }
  }));

test("conv ops (wasm kernels, float32): values, gradients and double backprop agree with the im2col path", (t) => {
  if (getBackend().name !== "wasm") return t.skip("the wasm backend is not active");
  const rng = new Rng(3);
  const f32 = (shape: number[]) => new Tensor(Float32Array.from(randomTensor(shape, rng).data), shape);
  for (const [name, k, s, pad, d] of CASES) {
    const x = f32([3, 9, 8, 5]),
      w = f32([6, k, k, 5]),
      r = f32([3, 9, 8, 6]);
    const run = () =>
      scope(() => {
        const [xv, wv] = [x.variable(), w.variable()];
        const y = conv2dGeneral(xv, wv, { stride: [s, s], padding: pad, dilation: [d, d], groups: 1 });
        const rr = new Tensor(r.data.subarray(0, y.size), y.shape);
        const f = op.sum(op.mul(op.tanh(y), rr));
        const [gx, gw] = grad(f, [xv, wv], { createGraph: true });
        const [hw] = grad(op.add(op.sumSquares(gx), op.sumSquares(gw)), [wv]);
        return { y: Array.from(y.data), gx: Array.from(gx.data), gw: Array.from(gw.data), hw: Array.from(hw.data) };
      });
    const direct = run(),
      im2col = withBackend("js", run);
    for (const key of ["y", "gx", "gw", "hw"] as const) {
      const err = relativeError(direct[key], im2col[key]);
      assert.ok(err < 1e-5, `${name} ${key}: relative error ${err}`);
    }
  }
});
