/**
 * Spatial ops (src/engine/spatial.ts) against independent truth: naive float64 loops over PyTorch's definitions
 * (written per NCHW index, read from NHWC storage) and float64 finite differences of first and second order.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Tensor, cast } from "../src/engine/tensor.js";
import * as op from "../src/engine/ops.js";
import * as S from "../src/engine/spatial.js";
import { grad } from "../src/engine/autograd.js";
import { Rng } from "../src/util/rng.js";
import { finiteDifferenceGrad, randomTensor, relativeError, checkGrad } from "./helpers.js";

type Pad4 = S.Pad4;

// ---------------------------------------------------------------------------------------------------------------
// Naive references. Images are read as x[n][c][y][x] (PyTorch) from NHWC data; weights as w[o][i][ky][kx] from
// [out, kh, kw, in/groups] data. Results are returned in NHWC order.

function nhwc(shape: readonly number[]) {
  const [, H, W, C] = shape;
  return (n: number, c: number, y: number, x: number) => ((n * H + y) * W + x) * C + c;
}

interface ConvCase {
  x: number[]; // [N, H, W, Cin]
  cout: number;
  k: [number, number];
  stride: [number, number];
  padding: Pad4;
  dilation: [number, number];
  groups: number;
}

function refConv(
  xd: ArrayLike<number>,
  xs: number[],
  wd: ArrayLike<number>,
  ws: number[],
  c: ConvCase,
): { data: Float64Array; shape: number[] } {
  const [N, H, W, Cin] = xs;
  const [Cout, kh, kw, cg] = ws;
  const [t, l, b, r] = c.padding;
  const [sh, sw] = c.stride,
    [dh, dw] = c.dilation;
  const Ho = Math.floor((H + t + b - dh * (kh - 1) - 1) / sh) + 1;
  const Wo = Math.floor((W + l + r - dw * (kw - 1) - 1) / sw) + 1;
  const og = Cout / c.groups;
  assert.equal(cg * c.groups, Cin);
  const xi = nhwc(xs),
    yi = nhwc([N, Ho, Wo, Cout]);
  const wi = (o: number, i: number, ky: number, kx: number) => ((o * kh + ky) * kw + kx) * cg + i;
  const out = new Float64Array(N * Ho * Wo * Cout);
  for (let n = 0; n < N; n++)
    for (let o = 0; o < Cout; o++) {
      const grp = Math.floor(o / og);
      for (let oy = 0; oy < Ho; oy++)
        for (let ox = 0; ox < Wo; ox++) {
          let s = 0;
          for (let i = 0; i < cg; i++)
            for (let ky = 0; ky < kh; ky++)
              for (let kx = 0; kx < kw; kx++) {
                const iy = oy * sh - t + ky * dh,
                  ix = ox * sw - l + kx * dw;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue; // zero padding
                s += xd[xi(n, grp * cg + i, iy, ix)] * wd[wi(o, i, ky, kx)];
              }
          out[yi(n, o, oy, ox)] = s;
        }
    }
  return { data: out, shape: [N, Ho, Wo, Cout] };
}

function refPool(
  xd: ArrayLike<number>,
  xs: number[],
  k: [number, number],
  stride: [number, number],
  padding: Pad4,
  mode: "max" | "avg-include" | "avg-exclude",
): { data: Float64Array; shape: number[] } {
  const [N, H, W, C] = xs;
  const [t, l, b, r] = padding;
  const Ho = Math.floor((H + t + b - k[0]) / stride[0]) + 1;
  const Wo = Math.floor((W + l + r - k[1]) / stride[1]) + 1;
  const xi = nhwc(xs),
    yi = nhwc([N, Ho, Wo, C]);
  const out = new Float64Array(N * Ho * Wo * C);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let oy = 0; oy < Ho; oy++)
        for (let ox = 0; ox < Wo; ox++) {
          let mx = -Infinity,
            s = 0,
            count = 0;
          for (let ky = 0; ky < k[0]; ky++)
            for (let kx = 0; kx < k[1]; kx++) {
              const iy = oy * stride[0] - t + ky,
                ix = ox * stride[1] - l + kx;
              if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue; // −∞ for max, 0 for average
              const v = xd[xi(n, c, iy, ix)];
              mx = Math.max(mx, v);
              s += v;
              count++;
            }
          out[yi(n, c, oy, ox)] = mode === "max" ? mx : mode === "avg-include" ? s / (k[0] * k[1]) : s / count;
        }
  return { data: out, shape: [N, Ho, Wo, C] };
}

function assertClose(
  actual: Tensor,
  expected: { data: ArrayLike<number>; shape: number[] },
  tol: number,
  name: string,
): void {
  assert.deepEqual([...actual.shape], expected.shape, `${name}: shape`);
  const err = relativeError(actual.data, expected.data);
  assert.ok(err <= tol, `${name}: relative error ${err}`);
}

const optsOf = (c: ConvCase): S.Conv2dOptions => ({
  stride: c.stride,
  padding: c.padding,
  dilation: c.dilation,
  groups: c.groups,
});

// ---------------------------------------------------------------------------------------------------------------
// Forward

const convCases: [string, ConvCase][] = [];
{
  const pads: Pad4[] = [
    [0, 0, 0, 0],
    [1, 1, 1, 1],
    [0, 1, 1, 0],
    [2, 0, 1, 3],
  ];
  const kernels: [number, number][] = [
    [1, 1],
    [3, 3],
    [3, 2],
  ];
  const groupings: [number, number, number][] = [
    [2, 3, 1],
    [4, 6, 2],
    [3, 3, 3],
    [3, 6, 3],
  ]; // cin, cout, groups
  for (const s of [1, 2])
    for (const d of [1, 2])
      for (const padding of pads)
        for (const k of kernels)
          for (const [cin, cout, groups] of groupings) {
            const c: ConvCase = { x: [2, 7, 6, cin], cout, k, stride: [s, s], padding, dilation: [d, d], groups };
            convCases.push([`k${k} s${s} p[${padding}] d${d} g${groups} ${cin}->${cout}`, c]);
          }
  // Non-square strides and dilations, a 1-wide image, a kernel equal to the padded input.
  convCases.push([
    "s[2,1] d[1,2]",
    { x: [1, 9, 5, 2], cout: 3, k: [3, 2], stride: [2, 1], padding: [1, 0, 0, 1], dilation: [1, 2], groups: 1 },
  ]);
  convCases.push([
    "depthwise 8 channels",
    { x: [2, 6, 5, 8], cout: 8, k: [3, 3], stride: [2, 1], padding: [1, 1, 1, 1], dilation: [1, 1], groups: 8 },
  ]);
  convCases.push([
    "groups 4 of 8, 12 out",
    { x: [1, 6, 5, 8], cout: 12, k: [2, 3], stride: [1, 2], padding: [0, 1, 1, 0], dilation: [2, 1], groups: 4 },
  ]);
  convCases.push([
    "1-wide image",
    { x: [2, 5, 1, 2], cout: 2, k: [3, 1], stride: [1, 1], padding: [1, 0, 1, 0], dilation: [1, 1], groups: 2 },
  ]);
  convCases.push([
    "kernel = padded input",
    { x: [1, 3, 4, 1], cout: 2, k: [5, 4], stride: [1, 1], padding: [1, 0, 1, 0], dilation: [1, 1], groups: 1 },
  ]);
}

test(`conv2dGeneral matches the naive PyTorch definition (${convCases.length} cases, float64 and float32)`, () => {
  let seed = 100;
  for (const [name, c] of convCases) {
    const rng = new Rng(seed++);
    const x = randomTensor(c.x, rng);
    const w = randomTensor([c.cout, c.k[0], c.k[1], c.x[3] / c.groups], rng);
    const ref = refConv(x.data, c.x, w.data, [...w.shape], c);
    const y = S.conv2dGeneral(x, w, optsOf(c));
    assert.equal(y.dtype, "float64");
    assertClose(y, ref, 1e-12, name);
    const y32 = S.conv2dGeneral(cast(x, "float32"), cast(w, "float32"), optsOf(c));
    assert.equal(y32.dtype, "float32");
    assertClose(y32, ref, 1e-5, `${name} float32`);
  }
});

test("PyTorch Conv2d(kernel 3, stride 2, padding 1) on 28x28 gives 14x14 with padding on all four sides", () => {
  const x = new Tensor(new Float64Array(28 * 28).fill(1), [1, 28, 28, 1]);
  const w = new Tensor(new Float64Array(9).fill(1), [1, 3, 3, 1]);
  const y = S.conv2dGeneral(x, w, { stride: [2, 2], padding: [1, 1, 1, 1], dilation: [1, 1], groups: 1 });
  assert.deepEqual([...y.shape], [1, 14, 14, 1]);
  const at = (t: Tensor, i: number, j: number) => t.data[i * 14 + j];
  // Window (0,0) covers rows/cols −1..1: 2x2 real pixels; window (13,13) covers 25..27: 3x3.
  assert.equal(at(y, 0, 0), 4);
  assert.equal(at(y, 0, 13), 6);
  assert.equal(at(y, 13, 0), 6);
  assert.equal(at(y, 13, 13), 9);
  // TF-style "same" pads bottom/right only (windows 0..2 and 26..28): another function.
  const same = op.conv2d(x, w, 2, "same");
  assert.deepEqual([...same.shape], [1, 14, 14, 1]);
  assert.equal(at(same, 0, 0), 9);
  assert.equal(at(same, 13, 13), 4);
  // And on random data it equals the reference with symmetric padding.
  const rng = new Rng(28);
  const xr = randomTensor([2, 28, 28, 3], rng),
    wr = randomTensor([4, 3, 3, 3], rng);
  const c: ConvCase = {
    x: [2, 28, 28, 3],
    cout: 4,
    k: [3, 3],
    stride: [2, 2],
    padding: [1, 1, 1, 1],
    dilation: [1, 1],
    groups: 1,
  };
  assertClose(
    S.conv2dGeneral(xr, wr, optsOf(c)),
    refConv(xr.data, c.x, wr.data, [4, 3, 3, 3], c),
    1e-12,
    "28x28 random",
  );
});

test("pooling matches the naive PyTorch definitions (max with −∞ padding, average with/without counting padding)", () => {
  const cases: [number[], [number, number], [number, number], Pad4][] = [
    [
      [2, 6, 6, 3],
      [2, 2],
      [2, 2],
      [0, 0, 0, 0],
    ],
    [
      [2, 7, 5, 2],
      [3, 3],
      [2, 2],
      [1, 1, 1, 1],
    ],
    [
      [1, 7, 6, 2],
      [3, 3],
      [1, 1],
      [1, 1, 1, 1],
    ],
    [
      [1, 5, 8, 2],
      [3, 2],
      [2, 3],
      [0, 1, 1, 0],
    ],
    [
      [2, 5, 5, 1],
      [2, 3],
      [1, 2],
      [1, 0, 0, 1],
    ],
    [
      [1, 4, 4, 3],
      [4, 4],
      [4, 4],
      [0, 0, 0, 0],
    ],
  ];
  let seed = 300;
  for (const [xs, kernel, stride, padding] of cases) {
    const x = randomTensor(xs, new Rng(seed++));
    const name = `x[${xs}] k${kernel} s${stride} p[${padding}]`;
    assertClose(
      S.maxPool2dGeneral(x, { kernel, stride, padding }),
      refPool(x.data, xs, kernel, stride, padding, "max"),
      0,
      `max ${name}`,
    );
    for (const countIncludePad of [true, false]) {
      const mode = countIncludePad ? "avg-include" : "avg-exclude";
      const y = S.avgPool2dGeneral(x, { kernel, stride, padding, countIncludePad });
      assertClose(y, refPool(x.data, xs, kernel, stride, padding, mode), 1e-14, `${mode} ${name}`);
      const y32 = S.avgPool2dGeneral(cast(x, "float32"), { kernel, stride, padding, countIncludePad });
      assert.equal(y32.dtype, "float32");
      assertClose(y32, refPool(x.data, xs, kernel, stride, padding, mode), 1e-6, `${mode} ${name} float32`);
    }
  }
  // Max pooling of all-negative data: padding must never win (it is −∞, not 0).
  const neg = new Tensor(new Float64Array(16).fill(-5), [1, 4, 4, 1]);
  const m = S.maxPool2dGeneral(neg, { kernel: [3, 3], stride: [2, 2], padding: [1, 1, 1, 1] });
  assert.deepEqual(Array.from(m.data), [-5, -5, -5, -5]);
  // Ties go to the first element in scan order, so the gradient lands there.
  const tie = new Tensor(Float64Array.from([1, 1, 1, 1]), [1, 2, 2, 1]).variable();
  const [gt] = grad(op.sum(S.maxPool2dGeneral(tie, { kernel: [2, 2], stride: [2, 2], padding: [0, 0, 0, 0] })), [tie]);
  assert.deepEqual(Array.from(gt.data), [1, 0, 0, 0]);
});

test("pad2d, globalAvgPool, concatChannels and permute compute the definitions", () => {
  const rng = new Rng(400);
  const x = randomTensor([2, 3, 5, 2], rng);
  const xi = nhwc(x.shape);
  for (const padding of [
    [0, 0, 0, 0],
    [1, 2, 3, 0],
    [2, 1, 1, 2],
  ] as Pad4[]) {
    for (const value of [0, -1.5]) {
      const y = S.pad2d(x, padding, value);
      const [t, l, b, r] = padding;
      const ys = [2, 3 + t + b, 5 + l + r, 2];
      assert.deepEqual([...y.shape], ys);
      const yi = nhwc(ys);
      for (let n = 0; n < 2; n++)
        for (let c = 0; c < 2; c++)
          for (let i = 0; i < ys[1]; i++)
            for (let j = 0; j < ys[2]; j++) {
              const inside = i >= t && i < t + 3 && j >= l && j < l + 5;
              assert.equal(y.data[yi(n, c, i, j)], inside ? x.data[xi(n, c, i - t, j - l)] : value);
            }
    }
  }
  const g = S.globalAvgPool(x);
  assert.deepEqual([...g.shape], [2, 1, 1, 2]);
  for (let n = 0; n < 2; n++)
    for (let c = 0; c < 2; c++) {
      let s = 0;
      for (let i = 0; i < 3; i++) for (let j = 0; j < 5; j++) s += x.data[xi(n, c, i, j)];
      assert.ok(Math.abs(g.data[n * 2 + c] - s / 15) < 1e-15);
    }
  const a = randomTensor([2, 2, 3, 1], rng),
    b = randomTensor([2, 2, 3, 4], rng),
    c = randomTensor([2, 2, 3, 2], rng);
  const cat = S.concatChannels([a, b, c]);
  assert.deepEqual([...cat.shape], [2, 2, 3, 7]);
  for (let p = 0; p < 12; p++) {
    assert.deepEqual(Array.from(cat.data.subarray(p * 7, p * 7 + 7)), [
      ...a.data.subarray(p, p + 1),
      ...b.data.subarray(p * 4, p * 4 + 4),
      ...c.data.subarray(p * 2, p * 2 + 2),
    ]);
  }
  const f = S.concatChannels([randomTensor([3, 2], rng), randomTensor([3, 1], rng)]);
  assert.deepEqual([...f.shape], [3, 3]);
  // NHWC → NCHW and a general 3-axis permutation.
  const nchw = S.permute(x, [0, 3, 1, 2]);
  assert.deepEqual([...nchw.shape], [2, 2, 3, 5]);
  for (let n = 0; n < 2; n++)
    for (let ch = 0; ch < 2; ch++)
      for (let i = 0; i < 3; i++)
        for (let j = 0; j < 5; j++) assert.equal(nchw.data[((n * 2 + ch) * 3 + i) * 5 + j], x.data[xi(n, ch, i, j)]);
  const z = randomTensor([2, 3, 4], rng);
  const zp = S.permute(z, [2, 0, 1]);
  assert.deepEqual([...zp.shape], [4, 2, 3]);
  for (let i = 0; i < 2; i++)
    for (let j = 0; j < 3; j++)
      for (let k = 0; k < 4; k++) assert.equal(zp.data[(k * 2 + i) * 3 + j], z.data[(i * 3 + j) * 4 + k]);
  assert.deepEqual(Array.from(S.permute(zp, [1, 2, 0]).data), Array.from(z.data));
});

test("impossible shapes and bad attributes throw RangeError with a clear message", () => {
  const rng = new Rng(500);
  const x = randomTensor([1, 4, 4, 4], rng);
  const o = (p: Partial<S.Conv2dOptions>): S.Conv2dOptions => ({
    stride: [1, 1],
    padding: [0, 0, 0, 0],
    dilation: [1, 1],
    groups: 1,
    ...p,
  });
  assert.throws(
    () => S.conv2dGeneral(x, randomTensor([2, 5, 5, 4], rng), o({})),
    (e) => e instanceof RangeError && e.message.includes("larger than the padded input 4x4"),
  );
  assert.throws(
    () => S.conv2dGeneral(x, randomTensor([2, 3, 3, 4], rng), o({ dilation: [2, 2] })),
    (e) => e instanceof RangeError && e.message.includes("dilation 2x2, spans 5x5"),
  );
  assert.throws(
    () => S.conv2dGeneral(x, randomTensor([2, 3, 3, 1], rng), o({ groups: 3 })),
    (e) => e instanceof RangeError && e.message.includes("4 are not divisible by groups 3"),
  );
  assert.throws(
    () => S.conv2dGeneral(x, randomTensor([3, 3, 3, 2], rng), o({ groups: 2 })),
    (e) => e instanceof RangeError && e.message.includes("output channels 3 are not divisible"),
  );
  assert.throws(
    () => S.conv2dGeneral(x, randomTensor([2, 3, 3, 3], rng), o({})),
    (e) => e instanceof RangeError && e.message.includes("expects 3 input channels per group"),
  );
  assert.throws(
    () => S.conv2dGeneral(x, randomTensor([2, 3, 3, 4], rng), o({ stride: [0, 1] })),
    (e) => e instanceof RangeError && e.message.includes("stride must be positive"),
  );
  assert.throws(
    () => S.conv2dGeneral(x, randomTensor([2, 3, 3, 4], rng), o({ padding: [-1, 0, 0, 0] })),
    (e) => e instanceof RangeError && e.message.includes("padding must be four non-negative"),
  );
  assert.throws(
    () => S.conv2dGeneral(randomTensor([4, 4], rng), randomTensor([2, 3, 3, 4], rng), o({})),
    (e) => e instanceof RangeError && e.message.includes("NHWC"),
  );
  assert.throws(
    () => S.maxPool2dGeneral(x, { kernel: [5, 2], stride: [1, 1], padding: [0, 0, 0, 0] }),
    (e) => e instanceof RangeError && e.message.includes("larger than the padded input"),
  );
  assert.throws(
    () => S.maxPool2dGeneral(x, { kernel: [2, 2], stride: [1, 1], padding: [2, 0, 0, 0] }),
    (e) => e instanceof RangeError && e.message.includes("wholly in the padding"),
  );
  assert.throws(
    () => S.avgPool2dGeneral(x, { kernel: [2, 2], stride: [1, 1], padding: [2, 0, 0, 0], countIncludePad: false }),
    (e) => e instanceof RangeError && e.message.includes("wholly in the padding"),
  );
  assert.throws(() => S.pad2d(x, [0, 1.5, 0, 0]), RangeError);
  assert.throws(
    () => S.concatChannels([x, randomTensor([1, 4, 3, 4], rng)]),
    (e) => e instanceof RangeError && e.message.includes("differ outside the last axis"),
  );
  assert.throws(
    () => S.permute(x, [0, 1, 1, 2]),
    (e) => e instanceof RangeError && e.message.includes("not a permutation"),
  );
});

// ---------------------------------------------------------------------------------------------------------------
// Derivatives

/**
 * Second order, as a GC penalty uses it: P(x, θ) = Σ (∂(Σ y(x,θ)·r)/∂x)², differentiated with respect to `wrt`
 * (x itself, or a parameter) through the recorded first-order gradient, against finite differences of P computed
 * from the engine's first-order gradient.
 */
function checkSecondOrder(
  name: string,
  y: (x: Tensor, p: Tensor) => Tensor,
  x: Tensor,
  p: Tensor,
  wrt: "x" | "p",
  r: Tensor,
  tol = 1e-6,
): void {
  const P = (xx: Tensor, pp: Tensor, create: boolean) => {
    const xv = xx.requiresGrad ? xx : xx.variable(); // x itself when differentiating in x, so P stays connected to it
    const [g] = grad(op.sum(op.mul(y(xv, pp), r)), [xv], { createGraph: create });
    return op.sumSquares(g);
  };
  const target = wrt === "x" ? x : p;
  const tv = target.variable();
  const [gg] = grad(wrt === "x" ? P(tv, p, true) : P(x, tv, true), [tv]);
  const fd = finiteDifferenceGrad(
    (d) => {
      const t = new Tensor(d, target.shape);
      return (wrt === "x" ? P(t, p, false) : P(x, t, false)).item();
    },
    target.data as Float64Array,
    1e-5,
  );
  const err = relativeError(gg.data, fd);
  assert.ok(err < tol, `${name} (second order in ${wrt}): relative error ${err}`);
}

const gradConvCases: [string, ConvCase][] = [
  [
    "plain 3x3",
    { x: [2, 5, 4, 2], cout: 3, k: [3, 3], stride: [1, 1], padding: [1, 1, 1, 1], dilation: [1, 1], groups: 1 },
  ],
  [
    "stride 2 asym pad dilation 2",
    { x: [1, 7, 6, 2], cout: 2, k: [3, 2], stride: [2, 2], padding: [0, 1, 1, 0], dilation: [2, 2], groups: 1 },
  ],
  [
    "groups 2",
    { x: [1, 5, 5, 4], cout: 4, k: [3, 3], stride: [2, 1], padding: [1, 0, 1, 2], dilation: [1, 1], groups: 2 },
  ],
  [
    "depthwise x2",
    { x: [2, 4, 5, 3], cout: 6, k: [3, 3], stride: [1, 1], padding: [1, 1, 1, 1], dilation: [1, 2], groups: 3 },
  ],
];

for (const [name, c] of gradConvCases) {
  const rng = new Rng(name.length * 7 + 1);
  const x = randomTensor(c.x, rng);
  const w = randomTensor([c.cout, c.k[0], c.k[1], c.x[3] / c.groups], rng, 0.5);
  const conv = (xx: Tensor, ww: Tensor) => op.tanh(S.conv2dGeneral(xx, ww, optsOf(c)));
  const yShape = [...conv(x, w).shape];
  const r = randomTensor(yShape, rng);
  test(`conv2dGeneral ${name}: input/weight gradients and second order match finite differences`, () => {
    checkGrad(`${name} input`, (xx) => op.sum(op.mul(conv(xx, w), r)), x);
    checkGrad(`${name} weight`, (ww) => op.sum(op.mul(conv(x, ww), r)), w);
    checkSecondOrder(name, conv, x, w, "x", r);
    checkSecondOrder(name, conv, x, w, "p", r);
  });
}

test("pooling, padding and layout ops: gradients and second order match finite differences", () => {
  const rng = new Rng(600);
  const x = randomTensor([1, 5, 6, 2], rng);
  const w = randomTensor([2, 2, 2, 2], rng, 0.5);
  // Each op sits between two nonlinear stages so its (linear or piecewise linear) map is exercised to second order.
  const around = (mid: (t: Tensor) => Tensor) => (xx: Tensor, ww: Tensor) =>
    op.tanh(
      mid(op.tanh(S.conv2dGeneral(xx, ww, { stride: [1, 1], padding: [1, 0, 0, 1], dilation: [1, 1], groups: 1 }))),
    );
  const cases: [string, (t: Tensor) => Tensor][] = [
    ["maxpool padded", (t) => S.maxPool2dGeneral(t, { kernel: [3, 3], stride: [2, 2], padding: [1, 1, 1, 1] })],
    ["maxpool asym", (t) => S.maxPool2dGeneral(t, { kernel: [2, 3], stride: [1, 2], padding: [0, 1, 1, 0] })],
    [
      "avgpool include pad",
      (t) => S.avgPool2dGeneral(t, { kernel: [3, 3], stride: [2, 2], padding: [1, 1, 1, 1], countIncludePad: true }),
    ],
    [
      "avgpool exclude pad",
      (t) => S.avgPool2dGeneral(t, { kernel: [3, 2], stride: [2, 1], padding: [1, 0, 1, 1], countIncludePad: false }),
    ],
    ["pad2d", (t) => S.pad2d(t, [1, 0, 2, 3], 0.5)],
    ["globalAvgPool", (t) => S.globalAvgPool(t)],
    ["concat", (t) => S.concatChannels([t, op.scale(t, 2), S.permute(S.permute(t, [0, 2, 1, 3]), [0, 2, 1, 3])])],
    ["permute to NCHW", (t) => S.permute(t, [0, 3, 1, 2])],
  ];
  for (const [name, mid] of cases) {
    const f = around(mid);
    const r = randomTensor([...f(x, w).shape], rng);
    checkGrad(`${name} input`, (xx) => op.sum(op.mul(f(xx, w), r)), x);
    checkGrad(`${name} weight`, (ww) => op.sum(op.mul(f(x, ww), r)), w);
    checkSecondOrder(name, f, x, w, "x", r);
    checkSecondOrder(name, f, x, w, "p", r);
  }
});

test("concatChannels of [N,F] features is differentiable in every input", () => {
  const rng = new Rng(700);
  const a = randomTensor([3, 2], rng),
    b = randomTensor([3, 4], rng);
  const M = randomTensor([6, 2], rng);
  checkGrad("concat a", (aa) => op.sumSquares(op.tanh(op.matmul(S.concatChannels([aa, b]), M))), a);
  checkGrad("concat b", (bb) => op.sumSquares(op.tanh(op.matmul(S.concatChannels([a, bb]), M))), b);
});

test("float32 gradients flow through every op and stay float32", () => {
  const rng = new Rng(800);
  const x = cast(randomTensor([1, 6, 6, 4], rng), "float32").variable();
  const w = cast(randomTensor([4, 3, 3, 2], rng), "float32").variable();
  let y = S.conv2dGeneral(x, w, { stride: [1, 1], padding: [1, 1, 1, 1], dilation: [1, 1], groups: 2 });
  y = S.maxPool2dGeneral(op.tanh(S.pad2d(y, [1, 1, 0, 0])), { kernel: [2, 2], stride: [2, 2], padding: [0, 0, 0, 0] });
  y = S.concatChannels([
    S.avgPool2dGeneral(y, { kernel: [2, 2], stride: [1, 1], padding: [1, 1, 1, 1], countIncludePad: false }),
    S.pad2d(y, [0, 0, 1, 1]),
  ]); // 4x4 and 4x4
  const out = op.sumSquares(S.permute(S.globalAvgPool(y), [0, 3, 1, 2]));
  const [gx, gw] = grad(out, [x, w], { createGraph: true });
  assert.equal(gx.dtype, "float32");
  assert.equal(gw.dtype, "float32");
  const [ggw] = grad(op.sumSquares(gx), [w]);
  assert.equal(ggw.dtype, "float32");
  assert.ok([...gx.data, ...gw.data, ...ggw.data].every(Number.isFinite));
});
