/**
 * Max pooling by the backend's kernels (spatial.ts maxPool2dGeneral and ops.maxPool2d on wasm: the maxPool kernel's
 * values, the maxPoolBackward kernel as the backward) against the path it replaces (argmax, then ops.gather /
 * ops.scatterAdd): the same bits
 * for values, first and second derivatives, on overlapping, padded and non-overlapping windows, with ties, inside a
 * storage scope (tensors resident in wasm memory) as training runs it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Tensor } from "../src/engine/tensor.js";
import * as op from "../src/engine/ops.js";
import * as S from "../src/engine/spatial.js";
import * as K from "../src/engine/kernels.js";
import { grad } from "../src/engine/autograd.js";
import { availableBackends, scope, withBackend } from "../src/engine/backend.js";
import { Rng } from "../src/util/rng.js";

const hasWasm = availableBackends().includes("wasm");

function bits(a: ArrayLike<number>): Uint32Array {
  return new Uint32Array(Float32Array.from(a).buffer);
}

function sameBits(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  assert.equal(a.length, b.length, `${what}: lengths`);
  const x = bits(a),
    y = bits(b);
  for (let i = 0; i < x.length; i++)
    if (x[i] !== y[i]) assert.fail(`${what}: element ${i} differs: ${a[i]} vs ${b[i]}`);
}

/** Values rounded to a few levels so windows have ties. */
function image(shape: number[], seed: number): Tensor {
  const rng = new Rng(seed);
  const n = shape.reduce((p, q) => p * q, 1);
  return new Tensor(
    Float32Array.from({ length: n }, () => Math.round(rng.normal() * 3) / 3),
    shape,
  );
}

const CASES: { name: string; shape: number[]; k: [number, number]; s: [number, number]; p: S.Pad4 }[] = [
  { name: "2x2/2 valid (the CNN's)", shape: [3, 8, 8, 5], k: [2, 2], s: [2, 2], p: [0, 0, 0, 0] },
  { name: "3x3/2 padded, overlapping", shape: [2, 7, 9, 6], k: [3, 3], s: [2, 2], p: [1, 1, 1, 1] },
  { name: "2x3/1 asymmetric padding, overlapping", shape: [2, 6, 5, 4], k: [2, 3], s: [1, 2], p: [0, 1, 1, 0] },
];

for (const c of CASES) {
  test(`native max pooling = argmax + gather, to second order: ${c.name}`, { skip: !hasWasm && "no wasm" }, () => {
    const x0 = image(c.shape, 1);
    const run = (native: boolean) =>
      withBackend("wasm", () =>
        scope(() => {
          const x = x0.variable();
          const geom = K.convGeometry(x.shape, c.k, c.s, c.p);
          const shape = [geom.n, geom.outH, geom.outW, geom.c];
          assert.ok(op.poolsByKernel(x), "the wasm backend pools by its kernels");
          const pooled = native
            ? S.maxPool2dGeneral(x, { kernel: c.k, stride: c.s, padding: c.p })
            : op.gather(x, K.maxPoolArgmaxGeneral(x.data, geom), shape);
          const w = image(shape, 2).variable();
          const [gx] = grad(op.sum(op.mul(pooled, w)), [x], { createGraph: true });
          const v = image(c.shape, 3);
          const [gw] = grad(op.sum(op.mul(gx, v)), [w]);
          return { y: pooled.data, gx: gx.data, gw: gw.data };
        }),
      );
    const a = run(true),
      b = run(false);
    sameBits(a.y, b.y, "values");
    sameBits(a.gx, b.gx, "input gradient");
    sameBits(a.gw, b.gw, "second order (gradient of the gradient)");
    assert.ok(a.gx.some((g) => g !== 0) && a.gw.some((g) => g !== 0), "non-trivial gradients");
  });
}

test(
  "ops.maxPool2d by the kernels = argmax + gather, to second order (the CNN's 2x2/2 and 3x3/2)",
  { skip: !hasWasm && "no wasm" },
  () => {
    for (const [size, stride] of [
      [2, 2],
      [3, 2],
    ]) {
      const x0 = image([3, 9, 8, 5], 4);
      const run = (native: boolean) =>
        withBackend("wasm", () =>
          scope(() => {
            const x = x0.variable();
            const geom = K.windowGeometry(x.shape, size, size, stride, "valid");
            const shape = [geom.n, geom.outH, geom.outW, geom.c];
            const pooled = native ? op.maxPool2d(x, size, stride) : op.gather(x, K.maxPoolArgmax(x.data, geom), shape);
            const w = image(shape, 5).variable();
            const [gx] = grad(op.sum(op.mul(pooled, w)), [x], { createGraph: true });
            const [gw] = grad(op.sum(op.mul(gx, image(x0.shape as number[], 6))), [w]);
            return { y: pooled.data, gx: gx.data, gw: gw.data };
          }),
        );
      const a = run(true),
        b = run(false);
      sameBits(a.y, b.y, `${size}/${stride} values`);
      sameBits(a.gx, b.gx, `${size}/${stride} input gradient`);
      sameBits(a.gw, b.gw, `${size}/${stride} second order`);
    }
  },
);
