/**
 * Differentiable ops. Each computes its result with a kernel and records a backward rule made of these same
 * ops, which is what makes every derivative differentiable again.
 */
import { Tensor, allocLike, sizeOf, type Data } from "./tensor.js";
import { record } from "./graph.js";
import * as K from "./kernels.js";
import { kernels, unscoped } from "./backend.js";
import { conv, directConvAvailable } from "./conv.js";

function sameShape(a: Tensor, b: Tensor, op: string): void {
  if (a.shape.length !== b.shape.length || a.shape.some((s, i) => s !== b.shape[i])) {
    throw new RangeError(`${op}: shapes [${a.shape}] and [${b.shape}] differ`);
  }
}

function mapTanh(a: Tensor): Data {
  const out = allocLike(a.data, a.size),
    d = a.data;
  if (kernels().unary?.("tanh", d, out)) return out;
  for (let i = 0; i < d.length; i++) out[i] = Math.tanh(d[i]);
  return out;
}

/** Zeros with the shape and dtype of `a` (not differentiable: a constant). */
export function zerosLike(a: Tensor): Tensor {
  return new Tensor(allocLike(a.data, a.size), a.shape);
}

/** Ones with the shape and dtype of `a` (a constant). */
export function onesLike(a: Tensor): Tensor {
  const d = allocLike(a.data, a.size);
  d.fill(1);
  return new Tensor(d, a.shape);
}

/** a + b, where b has a's shape or is a vector broadcast along a's last axis (a bias). */
export function add(a: Tensor, b: Tensor): Tensor {
  const out = allocLike(a.data, a.size);
  const ad = a.data,
    bd = b.data;
  if (b.shape.length === a.shape.length) {
    sameShape(a, b, "add");
    if (!kernels().binary?.("add", ad, bd, out)) for (let i = 0; i < out.length; i++) out[i] = ad[i] + bd[i];
    return record(out, a.shape, [a, b], (g) => [g, g]);
  }
  const n = a.shape[a.shape.length - 1];
  if (b.shape.length !== 1 || b.shape[0] !== n)
    throw new RangeError(`add: cannot broadcast [${b.shape}] to [${a.shape}]`);
  if (!kernels().addRowVector?.(ad, bd, out, out.length / n, n))
    for (let i = 0; i < out.length; i += n) for (let j = 0; j < n; j++) out[i + j] = ad[i + j] + bd[j];
  return record(out, a.shape, [a, b], (g) => [g, b.requiresGrad ? sumToLastAxis(g) : null]);
}

/** Elementwise a − b of two tensors of the same shape. */
export function sub(a: Tensor, b: Tensor): Tensor {
  sameShape(a, b, "sub");
  const out = allocLike(a.data, a.size);
  if (!kernels().binary?.("sub", a.data, b.data, out))
    for (let i = 0; i < out.length; i++) out[i] = a.data[i] - b.data[i];
  return record(out, a.shape, [a, b], (g) => [g, b.requiresGrad ? scale(g, -1) : null]);
}

/** Elementwise product. */
export function mul(a: Tensor, b: Tensor): Tensor {
  sameShape(a, b, "mul");
  const out = allocLike(a.data, a.size);
  if (!kernels().binary?.("mul", a.data, b.data, out))
    for (let i = 0; i < out.length; i++) out[i] = a.data[i] * b.data[i];
  return record(out, a.shape, [a, b], (g) => [a.requiresGrad ? mul(g, b) : null, b.requiresGrad ? mul(g, a) : null]);
}

/** alpha·a + beta, elementwise. */
export function affine(a: Tensor, alpha: number, beta = 0): Tensor {
  // Plain loops rather than a per-element callback: these run on every activation of every batch.
  const out = allocLike(a.data, a.size),
    d = a.data;
  if (!kernels().affine?.(d, out, alpha, beta)) for (let i = 0; i < d.length; i++) out[i] = alpha * d[i] + beta;
  return record(out, a.shape, [a], (g) => [scale(g, alpha)]);
}

/** α·a for a number α. */
export function scale(a: Tensor, alpha: number): Tensor {
  return affine(a, alpha, 0);
}

/** a · s where s is a one-element tensor (differentiable in both). */
export function mulScalar(a: Tensor, s: Tensor): Tensor {
  const v = s.item();
  const out = allocLike(a.data, a.size),
    d = a.data;
  if (!kernels().scale?.(d, out, v)) for (let i = 0; i < d.length; i++) out[i] = d[i] * v;
  return record(out, a.shape, [a, s], (g) => [
    a.requiresGrad ? mulScalar(g, s) : null,
    s.requiresGrad ? sum(mul(g, a)) : null,
  ]);
}

/** Sum of all elements, as a scalar tensor. Accumulated in float64 for accuracy. */
export function sum(a: Tensor): Tensor {
  const out = allocLike(a.data, 1);
  if (!kernels().sum?.(a.data, out)) {
    let s = 0;
    for (let i = 0; i < a.data.length; i++) s += a.data[i];
    out[0] = s;
  }
  return record(out, [], [a], (g) => [expandScalar(g, a.shape)]);
}

/** The scalar g repeated over `shape`. */
export function expandScalar(g: Tensor, shape: readonly number[]): Tensor {
  const out = allocLike(g.data, sizeOf(shape));
  out.fill(g.item());
  return record(out, shape, [g], (gg) => [sum(gg)]);
}

/** Sums over all axes but the last: [..., n] → [n] (the gradient of a broadcast bias). */
export function sumToLastAxis(a: Tensor): Tensor {
  const n = a.shape[a.shape.length - 1];
  const out = allocLike(a.data, n);
  const d = a.data;
  if (!kernels().sumColumns?.(d, out, d.length / n, n))
    for (let i = 0; i < d.length; i += n) for (let j = 0; j < n; j++) out[j] += d[i + j];
  return record(out, [n], [a], (g) => [broadcastRows(g, a.shape)]);
}

/** Repeats a vector [n] over leading axes to `shape` [..., n]. */
export function broadcastRows(v: Tensor, shape: readonly number[]): Tensor {
  const n = v.size;
  const out = allocLike(v.data, sizeOf(shape));
  for (let i = 0; i < out.length; i += n) out.set(v.data, i);
  return record(out, shape, [v], (g) => [sumToLastAxis(g)]);
}

/** Sums each row of a [m, n] matrix: → [m]. */
export function sumRows(a: Tensor): Tensor {
  const [m, n] = a.shape;
  const out = allocLike(a.data, m);
  if (!kernels().sumRows?.(a.data, out, m, n)) {
    for (let i = 0; i < m; i++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += a.data[i * n + j];
      out[i] = s;
    }
  }
  return record(out, [m], [a], (g) => [broadcastCols(g, n)]);
}

/** Repeats each entry of v [m] across n columns: → [m, n]. */
export function broadcastCols(v: Tensor, n: number): Tensor {
  const m = v.size;
  const out = allocLike(v.data, m * n);
  for (let i = 0; i < m; i++) out.fill(v.data[i], i * n, i * n + n);
  return record(out, [m, n], [v], (g) => [sumRows(g)]);
}

/** The same values with another shape of the same size (a view: no copy). */
export function reshape(a: Tensor, shape: readonly number[]): Tensor {
  if (sizeOf(shape) !== a.size)
    throw new RangeError(`reshape: [${a.shape}] has ${a.size} values, [${shape}] needs ${sizeOf(shape)}`);
  return record(a.data, shape, [a], (g) => [reshape(g, a.shape)]);
}

/**
 * Matrix product of 2-D tensors with optional transposes: op(a) · op(b).
 * Backward rules for each transpose combination are again matmuls.
 */
export function matmul(a: Tensor, b: Tensor, transA = false, transB = false): Tensor {
  if (a.shape.length !== 2 || b.shape.length !== 2)
    throw new RangeError(`matmul needs 2-D tensors, got [${a.shape}] and [${b.shape}]`);
  const [M, Ka] = transA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  const [Kb, N] = transB ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
  if (Ka !== Kb)
    throw new RangeError(
      `matmul: inner sizes differ, [${a.shape}]${transA ? "ᵀ" : ""} · [${b.shape}]${transB ? "ᵀ" : ""}`,
    );
  const out = allocLike(a.data, M * N);
  // Backends with transposed-operand kernels read op(A), op(B) in place; else transpose (leaf transposes are cached).
  const gemm = M * Ka * N >= 4096 ? kernels().gemm : undefined;
  if (!gemm?.(a.data, b.data, out, M, Ka, N, transA, transB)) {
    K.matmul(transA ? transposedOf(a) : a.data, transB ? transposedOf(b) : b.data, out, M, Ka, N);
  }
  return record(out, [M, N], [a, b], (g) => {
    let ga: Tensor | null = null,
      gb: Tensor | null = null;
    if (!transA && !transB) {
      if (a.requiresGrad) ga = matmul(g, b, false, true);
      if (b.requiresGrad) gb = matmul(a, g, true, false);
    } else if (transA && !transB) {
      if (a.requiresGrad) ga = matmul(b, g, false, true);
      if (b.requiresGrad) gb = matmul(a, g, false, false);
    } else if (!transA && transB) {
      if (a.requiresGrad) ga = matmul(g, b, false, false);
      if (b.requiresGrad) gb = matmul(g, a, true, false);
    } else {
      if (a.requiresGrad) ga = matmul(b, g, true, true);
      if (b.requiresGrad) gb = matmul(g, a, true, true);
    }
    return [ga, gb];
  });
}

/**
 * Transposes of leaf tensors (parameters, inputs) are cached: tensors are immutable, and a weight used as xWᵀ in
 * many forward passes (evaluation over a dataset) is then transposed once. Op results are not cached, so
 * intermediate memory is not doubled.
 */
const transposeCache = new WeakMap<Tensor, Data>();

function transposedOf(t: Tensor): Data {
  if (t.node) return transposed(t.data, t.shape[0], t.shape[1]);
  let d = transposeCache.get(t);
  if (!d) {
    d = unscoped(() => transposed(t.data, t.shape[0], t.shape[1])); // outlives the scope that asked for it
    transposeCache.set(t, d);
  }
  return d;
}

function transposed(d: Data, m: number, n: number): Data {
  const out = allocLike(d, m * n);
  K.transpose(d, out, m, n);
  return out;
}

/**
 * A dense layer, act(x·Wᵀ + b) for x [M, K], W [N, K] (PyTorch's Linear layout), b [N], act relu or none: one fused
 * kernel on backends that have it (the bias and the clamp ride on the product), else matmul, add and relu. The
 * backward rule is the composite's (a constant ReLU mask, then matmuls and a column sum), so it is differentiable
 * again exactly as the composite is.
 */
export function linear(x: Tensor, W: Tensor, b: Tensor, act: "relu" | "none"): Tensor {
  const [M, K] = x.shape,
    N = W.shape[0];
  if (x.shape.length !== 2 || W.shape.length !== 2 || W.shape[1] !== K || b.size !== N) {
    throw new RangeError(`linear: x [${x.shape}], W [${W.shape}] and b [${b.shape}] do not make a dense layer`);
  }
  const out = allocLike(x.data, M * N);
  const fused = M * K * N >= 4096 && kernels().linear?.(x.data, W.data, b.data, out, M, K, N, act === "relu");
  if (!fused) {
    const z = add(matmul(x, W, false, true), b);
    return act === "relu" ? relu(z) : z;
  }
  const y: Tensor = record(out, [M, N], [x, W, b], (g) => {
    const gz = act === "relu" ? mulConst(g, reluMask(y)) : g; // y > 0 exactly where x·Wᵀ + b > 0
    return [
      x.requiresGrad ? matmul(gz, W) : null,
      W.requiresGrad ? matmul(gz, x, true, false) : null,
      b.requiresGrad ? sumToLastAxis(gz) : null,
    ];
  });
  return y;
}

/** Elementwise product with a constant (never differentiated) array, e.g. an activation mask. */
export function mulConst(a: Tensor, c: Data): Tensor {
  const out = allocLike(a.data, a.size);
  if (!kernels().binary?.("mul", a.data, c, out)) for (let i = 0; i < out.length; i++) out[i] = a.data[i] * c[i];
  return record(out, a.shape, [a], (g) => [mulConst(g, c)]);
}

/** max(a, 0), i.e. a ⊙ mask with a constant mask, so its backward (and every higher derivative) is mulConst. */
export function relu(a: Tensor): Tensor {
  const d = a.data,
    out = allocLike(d, d.length),
    mask = allocLike(d, d.length);
  if (!kernels().relu?.(d, out, mask)) {
    for (let i = 0; i < d.length; i++) {
      if (d[i] > 0) {
        out[i] = d[i];
        mask[i] = 1;
      }
    }
  }
  return record(out, a.shape, [a], (g) => [mulConst(g, mask)]);
}

/** ReLU's derivative at each element of a: 1 where a > 0, else 0 (PyTorch's convention at 0). */
export function reluMask(a: Tensor): Data {
  const d = a.data,
    mask = allocLike(d, d.length);
  if (kernels().reluMask?.(d, mask)) return mask;
  for (let i = 0; i < d.length; i++) if (d[i] > 0) mask[i] = 1;
  return mask;
}

/** Elementwise hyperbolic tangent. */
export function tanh(a: Tensor): Tensor {
  const out = mapTanh(a);
  const y: Tensor = record(out, a.shape, [a], (g) => [mul(g, tanhDerivativeOf(y))]);
  return y;
}

/** 1 − y², the derivative of tanh written in terms of its output y (differentiable in y). */
export function tanhDerivativeOf(y: Tensor): Tensor {
  return affine(mul(y, y), -1, 1);
}

/** Elementwise exponential. */
export function exp(a: Tensor): Tensor {
  const out = allocLike(a.data, a.size);
  if (!kernels().unary?.("exp", a.data, out)) for (let i = 0; i < out.length; i++) out[i] = Math.exp(a.data[i]);
  const y: Tensor = record(out, a.shape, [a], (g) => [mul(g, y)]);
  return y;
}

/** Row-wise softmax of a [m, n] matrix. */
export function softmax(a: Tensor): Tensor {
  const [m, n] = a.shape;
  const out = allocLike(a.data, a.size);
  const d = a.data;
  if (!kernels().softmaxRows?.(d, out, m, n)) {
    for (let i = 0; i < m; i++) {
      let mx = -Infinity;
      for (let j = 0; j < n; j++) mx = Math.max(mx, d[i * n + j]);
      let s = 0;
      for (let j = 0; j < n; j++) s += out[i * n + j] = Math.exp(d[i * n + j] - mx);
      for (let j = 0; j < n; j++) out[i * n + j] /= s;
    }
  }
  const y: Tensor = record(out, a.shape, [a], (g) => {
    // ∂softmax: y ⊙ (g − Σ_j g_j y_j)
    const dot = sumRows(mul(g, y));
    return [mul(y, sub(g, broadcastCols(dot, n)))];
  });
  return y;
}

/** Row-wise log Σ exp of a [m, n] matrix → [m]; its gradient is softmax, so it is smooth to any order. */
export function logSumExpRows(a: Tensor): Tensor {
  const [m, n] = a.shape;
  const out = allocLike(a.data, m);
  const d = a.data;
  if (!kernels().logSumExpRows?.(d, out, m, n)) {
    for (let i = 0; i < m; i++) {
      let mx = -Infinity;
      for (let j = 0; j < n; j++) mx = Math.max(mx, d[i * n + j]);
      let s = 0;
      for (let j = 0; j < n; j++) s += Math.exp(d[i * n + j] - mx);
      out[i] = mx + Math.log(s);
    }
  }
  return record(out, [m], [a], (g) => [mul(broadcastCols(g, n), softmax(a))]);
}

/** Picks x.data[idx[i]] into a tensor of `shape` (max pooling, any fixed selection). Linear in x. */
export function gather(x: Tensor, idx: Int32Array, shape: readonly number[]): Tensor {
  const out = allocLike(x.data, idx.length);
  for (let i = 0; i < idx.length; i++) out[i] = x.data[idx[i]];
  return record(out, shape, [x], (g) => [scatterAdd(g, idx, x.shape)]);
}

/** Adjoint of gather: adds g[i] at position idx[i] of a zero tensor of `shape`. */
export function scatterAdd(g: Tensor, idx: Int32Array, shape: readonly number[]): Tensor {
  const out = allocLike(g.data, sizeOf(shape));
  for (let i = 0; i < idx.length; i++) out[idx[i]] += g.data[i];
  return record(out, shape, [g], (gg) => [gather(gg, idx, g.shape)]);
}

/** Unfolds the sliding windows of an NHWC image batch into rows (one row per output pixel), for convolution as matmul. */
export function im2col(x: Tensor, geom: K.WindowGeometry): Tensor {
  const rows = geom.n * geom.outH * geom.outW;
  const cols = geom.kh * geom.kw * geom.c;
  const out = allocLike(x.data, rows * cols);
  K.im2col(x.data, out, geom);
  return record(out, [rows, cols], [x], (g) => [col2im(g, geom, x.shape)]);
}

/** The adjoint of {@link im2col}: adds window rows back into an image batch of the given shape. */
export function col2im(cols: Tensor, geom: K.WindowGeometry, shape: readonly number[]): Tensor {
  const out = allocLike(cols.data, sizeOf(shape));
  K.col2im(cols.data, out, geom);
  return record(out, shape, [cols], (g) => [im2col(g, geom)]);
}

/**
 * 2-D convolution of x [n,h,w,c] with weight [cout, kh, kw, c] (no bias) → [n, outH, outW, cout],
 * as im2col followed by a matmul, so its derivatives of every order come from those two ops.
 */
export function conv2d(x: Tensor, weight: Tensor, stride: number, padding: "same" | "valid"): Tensor {
  const [cout, kh, kw, cin] = weight.shape;
  if (x.shape.length !== 4 || x.shape[3] !== cin)
    throw new RangeError(
      `conv2d: input [${x.shape}] does not match weight [${weight.shape}] (NHWC input, [out,kh,kw,in] weight)`,
    );
  const geom = K.windowGeometry(x.shape, kh, kw, stride, padding);
  if (directConvAvailable(x, 1)) {
    const pad: [number, number, number, number] = [geom.padTop, geom.padLeft, 0, 0];
    // Bottom/right padding as "same" needs it: whatever makes the output outH×outW.
    pad[2] = Math.max(0, (geom.outH - 1) * stride + kh - geom.h - geom.padTop);
    pad[3] = Math.max(0, (geom.outW - 1) * stride + kw - geom.w - geom.padLeft);
    return conv(x, weight, K.convGeometry(x.shape, [kh, kw], [stride, stride], pad));
  }
  const cols = im2col(x, geom);
  const y = matmul(cols, reshape(weight, [cout, kh * kw * cin]), false, true);
  return reshape(y, [geom.n, geom.outH, geom.outW, cout]);
}

/** Max pooling of NHWC data, size×size windows, no padding. */
export function maxPool2d(x: Tensor, size: number, stride: number): Tensor {
  const geom = K.windowGeometry(x.shape, size, size, stride, "valid");
  const idx = K.maxPoolArgmax(x.data, geom);
  return gather(x, idx, [geom.n, geom.outH, geom.outW, geom.c]);
}

/** Average pooling of NHWC data, size×size windows, no padding. */
export function avgPool2d(x: Tensor, size: number, stride: number): Tensor {
  const geom = K.windowGeometry(x.shape, size, size, stride, "valid");
  const shape = [geom.n, geom.outH, geom.outW, geom.c];
  const parts = K.poolWindowIndices(geom).map((idx) => gather(x, idx, shape));
  return scale(
    parts.reduce((s, p) => add(s, p)),
    1 / (size * size),
  );
}

/** Σ a², as a scalar. */
export function sumSquares(a: Tensor): Tensor {
  return sum(mul(a, a));
}
