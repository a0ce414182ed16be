/**
 * Differentiable ops. Each computes its result with a kernel and records a backward rule made of these same
 * ops, which is what makes every derivative differentiable again.
 */
import { Tensor, newStorageLike, sizeOf } from "./tensor.js";
import { type Data, type IndexStorage, type Storage } from "./storage.js";
import { record } from "./graph.js";
import * as K from "./kernels.js";
import { allocIndices, kernels, onDevice, onHost, unscoped } from "./backend.js";
import { run } from "./dispatch.js";
import { conv, directConvAvailable } from "./conv.js";
import { emptyPoolWindow } from "./wasmKernels.js";

function sameShape(a: Tensor, b: Tensor, op: string): void {
  if (a.shape.length !== b.shape.length || a.shape.some((s, i) => s !== b.shape[i])) {
    throw new RangeError(`${op}: shapes [${a.shape}] and [${b.shape}] differ`);
  }
}

/** Zeros with the shape and dtype of `a` (not differentiable: a constant). */
export function zerosLike(a: Tensor): Tensor {
  return new Tensor(newStorageLike(a.storage, a.size), a.shape);
}

/** Ones with the shape and dtype of `a` (a constant). */
export function onesLike(a: Tensor): Tensor {
  const d = newStorageLike(a.storage, a.size);
  run("onesLike", "fill", d, 1);
  return new Tensor(d, a.shape);
}

/** a + b, where b has a's shape or is a vector broadcast along a's last axis (a bias). */
export function add(a: Tensor, b: Tensor): Tensor {
  const out = newStorageLike(a.storage, a.size);
  if (b.shape.length === a.shape.length) {
    sameShape(a, b, "add");
    run("add", "binary", "add", a.storage, b.storage, out);
    return record(out, a.shape, [a, b], (g) => [g, g]);
  }
  const n = a.shape[a.shape.length - 1];
  if (b.shape.length !== 1 || b.shape[0] !== n)
    throw new RangeError(`add: cannot broadcast [${b.shape}] to [${a.shape}]`);
  run("add", "addRowVector", a.storage, b.storage, out, out.length / n, n);
  return record(out, a.shape, [a, b], (g) => [g, b.requiresGrad ? sumToLastAxis(g) : null]);
}

/** Elementwise a − b of two tensors of the same shape. */
export function sub(a: Tensor, b: Tensor): Tensor {
  sameShape(a, b, "sub");
  const out = newStorageLike(a.storage, a.size);
  run("sub", "binary", "sub", a.storage, b.storage, out);
  return record(out, a.shape, [a, b], (g) => [g, b.requiresGrad ? scale(g, -1) : null]);
}

/** Elementwise product. */
export function mul(a: Tensor, b: Tensor): Tensor {
  sameShape(a, b, "mul");
  const out = newStorageLike(a.storage, a.size);
  run("mul", "binary", "mul", a.storage, b.storage, out);
  return record(out, a.shape, [a, b], (g) => [a.requiresGrad ? mul(g, b) : null, b.requiresGrad ? mul(g, a) : null]);
}

/** alpha·a + beta, elementwise. */
export function affine(a: Tensor, alpha: number, beta = 0): Tensor {
  const out = newStorageLike(a.storage, a.size);
  run("affine", "affine", a.storage, out, alpha, beta);
  return record(out, a.shape, [a], (g) => [scale(g, alpha)]);
}

/** α·a for a number α. */
export function scale(a: Tensor, alpha: number): Tensor {
  return affine(a, alpha, 0);
}

/** a · s where s is a one-element tensor (differentiable in both). */
export function mulScalar(a: Tensor, s: Tensor): Tensor {
  const out = newStorageLike(a.storage, a.size);
  // On a device the scalar is not read back: a multiply with s broadcast (the same products as x·v).
  if (onDevice()) run("mulScalar", "broadcastBinary", K.BIN_MUL, a.storage, [1], s.storage, [0], out, [a.size]);
  else run("mulScalar", "scale", a.storage, out, s.item());
  return record(out, a.shape, [a, s], (g) => [
    a.requiresGrad ? mulScalar(g, s) : null,
    s.requiresGrad ? sum(mul(g, a)) : null,
  ]);
}

/** Sum of all elements, as a scalar tensor. Accumulated in float64 for accuracy. */
export function sum(a: Tensor): Tensor {
  const out = newStorageLike(a.storage, 1);
  run("sum", "sum", a.storage, out);
  return record(out, [], [a], (g) => [expandScalar(g, a.shape)]);
}

/** The scalar g repeated over `shape`. */
export function expandScalar(g: Tensor, shape: readonly number[]): Tensor {
  const n = sizeOf(shape);
  const out = newStorageLike(g.storage, n);
  if (onDevice()) run("expandScalar", "broadcastCopy", g.storage, [0], out, [n]);
  else onHost("expandScalar", out)[0].fill(g.item());
  return record(out, shape, [g], (gg) => [sum(gg)]);
}

/** Sums over all axes but the last: [..., n] → [n] (the gradient of a broadcast bias). */
export function sumToLastAxis(a: Tensor): Tensor {
  const n = a.shape[a.shape.length - 1];
  const out = newStorageLike(a.storage, n);
  run("sumToLastAxis", "sumColumns", a.storage, out, a.size / n, n);
  return record(out, [n], [a], (g) => [broadcastRows(g, a.shape)]);
}

/** Repeats a vector [n] over leading axes to `shape` [..., n]. */
export function broadcastRows(v: Tensor, shape: readonly number[]): Tensor {
  const n = v.size;
  const size = sizeOf(shape);
  const out = newStorageLike(v.storage, size);
  if (onDevice()) run("broadcastRows", "broadcastCopy", v.storage, [0, 1], out, [size / n, n]);
  else {
    const [o, d] = onHost("broadcastRows", out, v.storage);
    for (let i = 0; i < o.length; i += n) o.set(d, i);
  }
  return record(out, shape, [v], (g) => [sumToLastAxis(g)]);
}

/** Sums each row of a [m, n] matrix: → [m]. */
export function sumRows(a: Tensor): Tensor {
  const [m, n] = a.shape;
  const out = newStorageLike(a.storage, m);
  run("sumRows", "sumRows", a.storage, out, m, n);
  return record(out, [m], [a], (g) => [broadcastCols(g, n)]);
}

/** Repeats each entry of v [m] across n columns: → [m, n]. */
export function broadcastCols(v: Tensor, n: number): Tensor {
  const m = v.size;
  const out = newStorageLike(v.storage, m * n);
  if (onDevice()) run("broadcastCols", "broadcastCopy", v.storage, [1, 0], out, [m, n]);
  else {
    const [o, d] = onHost("broadcastCols", out, v.storage);
    for (let i = 0; i < m; i++) o.fill(d[i], i * n, i * n + n);
  }
  return record(out, [m, n], [v], (g) => [sumRows(g)]);
}

/** The same values with another shape of the same size (a view: no copy). */
export function reshape(a: Tensor, shape: readonly number[]): Tensor {
  if (sizeOf(shape) !== a.size)
    throw new RangeError(`reshape: [${a.shape}] has ${a.size} values, [${shape}] needs ${sizeOf(shape)}`);
  return record(a.storage, shape, [a], (g) => [reshape(g, a.shape)]);
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
  const out = newStorageLike(a.storage, M * N);
  // Backends with transposed-operand kernels read op(A), op(B) in place; else transpose (leaf transposes are cached).
  // Device backends always take the kernel (small products too: there is no host loop to run them).
  if (onDevice()) run("matmul", "gemm", a.storage, b.storage, out, M, Ka, N, transA, transB);
  else {
    const gemm = M * Ka * N >= 4096 ? kernels().gemm : undefined;
    if (!gemm?.(a.storage, b.storage, out, M, Ka, N, transA, transB)) {
      const [o, ad, bd] = onHost("matmul", out, a.storage, b.storage);
      K.matmul(transA ? transposedOf(a, ad) : ad, transB ? transposedOf(b, bd) : bd, o, M, Ka, N);
    }
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

function transposedOf(t: Tensor, data: Data): Data {
  if (t.node) return transposed(data, t.shape[0], t.shape[1]);
  let d = transposeCache.get(t);
  if (!d) {
    d = unscoped(() => transposed(data, t.shape[0], t.shape[1])); // outlives the scope that asked for it
    transposeCache.set(t, d);
  }
  return d;
}

function transposed(d: Data, m: number, n: number): Data {
  const out = newStorageLike(d, m * n) as Data; // host backends only (callers hold host arrays)
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
  const out = newStorageLike(x.storage, M * N);
  // Device backends fuse at every size when they have the kernel, else run the composite (matmul, add, relu).
  const big = M * K * N >= 4096 || onDevice();
  const fused = big && kernels().linear?.(x.storage, W.storage, b.storage, out, M, K, N, act === "relu");
  if (!fused) {
    const z = add(matmul(x, W, false, true), b);
    return act === "relu" ? relu(z) : z;
  }
  const y: Tensor = record(out, [M, N], [x, W, b], (g) => {
    const gz = act === "relu" ? mulConst(g, reluMaskStorage(y)) : g; // y > 0 exactly where x·Wᵀ + b > 0
    return [
      x.requiresGrad ? matmul(gz, W) : null,
      W.requiresGrad ? matmul(gz, x, true, false) : null,
      b.requiresGrad ? sumToLastAxis(gz) : null,
    ];
  });
  return y;
}

/** Elementwise product with a constant (never differentiated) array, e.g. an activation mask. */
export function mulConst(a: Tensor, c: Storage): Tensor {
  const out = newStorageLike(a.storage, a.size);
  run("mulConst", "binary", "mul", a.storage, c, out);
  return record(out, a.shape, [a], (g) => [mulConst(g, c)]);
}

/** max(a, 0), i.e. a ⊙ mask with a constant mask, so its backward (and every higher derivative) is mulConst. */
export function relu(a: Tensor): Tensor {
  const out = newStorageLike(a.storage, a.size),
    mask = newStorageLike(a.storage, a.size);
  run("relu", "relu", a.storage, out, mask);
  return record(out, a.shape, [a], (g) => [mulConst(g, mask)]);
}

/** ReLU's derivative at each element of a: 1 where a > 0, else 0 (PyTorch's convention at 0). */
export function reluMask(a: Tensor): Data {
  return onHost("reluMask (host array)", reluMaskStorage(a))[0];
}

/** {@link reluMask} as storage of the active backend (device backends keep it on the device). */
export function reluMaskStorage(a: Tensor): Storage {
  const mask = newStorageLike(a.storage, a.size);
  run("reluMask", "reluMask", a.storage, mask);
  return mask;
}

/** Elementwise hyperbolic tangent. */
export function tanh(a: Tensor): Tensor {
  const out = newStorageLike(a.storage, a.size);
  run("tanh", "unary", "tanh", a.storage, out);
  const y: Tensor = record(out, a.shape, [a], (g) => [mul(g, tanhDerivativeOf(y))]);
  return y;
}

/** 1 − y², the derivative of tanh written in terms of its output y (differentiable in y). */
export function tanhDerivativeOf(y: Tensor): Tensor {
  return affine(mul(y, y), -1, 1);
}

/** Elementwise exponential. */
export function exp(a: Tensor): Tensor {
  const out = newStorageLike(a.storage, a.size);
  run("exp", "unary", "exp", a.storage, out);
  const y: Tensor = record(out, a.shape, [a], (g) => [mul(g, y)]);
  return y;
}

/** Row-wise softmax of a [m, n] matrix. */
export function softmax(a: Tensor): Tensor {
  const [m, n] = a.shape;
  const out = newStorageLike(a.storage, a.size);
  run("softmax", "softmaxRows", a.storage, out, m, n);
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
  const out = newStorageLike(a.storage, m);
  run("logSumExpRows", "logSumExpRows", a.storage, out, m, n);
  return record(out, [m], [a], (g) => [mul(broadcastCols(g, n), softmax(a))]);
}

/**
 * Picks x's values at idx[i] into a tensor of `shape` (max pooling, any fixed selection). Linear in x. idx is a
 * host Int32Array (uploaded by device backends) or indices a device computed (max-pooling argmax).
 */
export function gather(x: Tensor, idx: IndexStorage, shape: readonly number[]): Tensor {
  const out = newStorageLike(x.storage, idx.length);
  run("gather", "gather", x.storage, idx, out);
  return record(out, shape, [x], (g) => [scatterAdd(g, idx, x.shape)]);
}

/** Adjoint of gather: adds g[i] at position idx[i] of a zero tensor of `shape`. */
export function scatterAdd(g: Tensor, idx: IndexStorage, shape: readonly number[]): Tensor {
  const out = newStorageLike(g.storage, sizeOf(shape));
  run("scatterAdd", "scatterAdd", g.storage, idx, out);
  return record(out, shape, [g], (gg) => [gather(gg, idx, g.shape)]);
}

/** Unfolds the sliding windows of an NHWC image batch into rows (one row per output pixel), for convolution as matmul. */
export function im2col(x: Tensor, geom: K.WindowGeometry): Tensor {
  const rows = geom.n * geom.outH * geom.outW;
  const cols = geom.kh * geom.kw * geom.c;
  const out = newStorageLike(x.storage, rows * cols);
  if (onDevice()) run("im2col", "im2col", x.storage, out, convWindowOf(geom));
  else K.im2col(...onHost("im2col", x.storage, out), geom);
  return record(out, [rows, cols], [x], (g) => [col2im(g, geom, x.shape)]);
}

/** The adjoint of {@link im2col}: adds window rows back into an image batch of the given shape. */
export function col2im(cols: Tensor, geom: K.WindowGeometry, shape: readonly number[]): Tensor {
  const out = newStorageLike(cols.storage, sizeOf(shape));
  if (onDevice()) run("col2im", "col2im", cols.storage, out, convWindowOf(geom));
  else K.col2im(...onHost("col2im", cols.storage, out), geom);
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
  const shape = [geom.n, geom.outH, geom.outW, geom.c];
  if (!onDevice()) return gather(x, K.maxPoolArgmax(onHost("maxPool2d", x.storage)[0], geom), shape);
  return maxPoolOnDevice(x, convWindowOf(geom), shape, "maxPool2d");
}

/**
 * Max pooling on a device backend: the argmax stays on the device (the backend's maxPool kernel), then a gather,
 * whose adjoint (scatter by argmax) is the backward rule. Windows wholly in the padding are refused up front.
 */
export function maxPoolOnDevice(x: Tensor, win: K.ConvGeometry, shape: readonly number[], op: string): Tensor {
  const empty = emptyPoolWindow(win);
  if (empty) throw new RangeError(`max pooling window at (${empty[0]}, ${empty[1]}) lies wholly in the padding`);
  const idx = allocIndices(sizeOf(shape));
  run(op, "maxPool", x.storage, newStorageLike(x.storage, sizeOf(shape)), idx, win);
  return gather(x, idx, shape);
}

/** The general window geometry of a legacy (square, "same"/"valid") window. */
function convWindowOf(g: K.WindowGeometry): K.ConvGeometry {
  const padBottom = Math.max(0, (g.outH - 1) * g.stride + g.kh - g.h - g.padTop);
  const padRight = Math.max(0, (g.outW - 1) * g.stride + g.kw - g.w - g.padLeft);
  return K.convGeometry(
    [g.n, g.h, g.w, g.c],
    [g.kh, g.kw],
    [g.stride, g.stride],
    [g.padTop, g.padLeft, padBottom, padRight],
  );
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
