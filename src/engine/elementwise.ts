/**
 * Broadcasting elementwise ops, reductions, normalization and activations (PyTorch/ONNX semantics).
 *
 * Like ops.ts, each op computes its values with a kernel and records a backward rule written with differentiable
 * ops (from ops.ts or this file), so derivatives of every order work (double backprop for gradient penalties).
 * Broadcasting is numpy's: shapes are right-aligned and size-1 or missing axes repeat. Normalization treats the
 * LAST axis as the channel/feature axis (engine images are NHWC, vectors [N, F]).
 */
import { Tensor, newOutput, newOutputLike, sizeOf } from "./tensor.js";
import type { Storage } from "./storage.js";
import { isRecording, noGrad, record } from "./graph.js";
import * as K from "./kernels.js";
import { kernels, onDevice, onHost } from "./backend.js";
import { run, runOnDevice } from "./dispatch.js";
import { affine, exp, mulConst, reshape, scale, tanh } from "./ops.js";

const fmt = (s: readonly number[]): string => `[${s.join(",")}]`;

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((s, i) => s === b[i]);
}

/** Output storage for a binary op: float64 when either operand is float64 (numpy's promotion), else float32. */
function allocFor(a: Tensor, b: Tensor, n: number): Storage {
  return newOutput(a.dtype === "float64" || b.dtype === "float64" ? "float64" : "float32", n);
}

/** The broadcast shape of two shapes (numpy rules); throws RangeError when they are incompatible. */
export function broadcastShapes(a: readonly number[], b: readonly number[], op = "broadcast"): number[] {
  const r = Math.max(a.length, b.length);
  const out = new Array<number>(r);
  for (let i = 1; i <= r; i++) {
    const da = i <= a.length ? a[a.length - i] : 1;
    const db = i <= b.length ? b[b.length - i] : 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new RangeError(
        `${op}: shapes ${fmt(a)} and ${fmt(b)} cannot be broadcast together (axis -${i}: ${da} vs ${db})`,
      );
    }
    out[r - i] = da === 1 ? db : da;
  }
  return out;
}

/** x repeated along size-1 or missing (leading) axes to `shape`. Its backward is sumTo. */
export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  const target = [...shape];
  if (x.shape.length > target.length || !sameShape(broadcastShapes(x.shape, target, "broadcastTo"), target)) {
    throw new RangeError(`broadcastTo: cannot broadcast ${fmt(x.shape)} to ${fmt(target)}`);
  }
  if (sameShape(x.shape, target)) return x;
  const out = newOutputLike(x.storage, sizeOf(target));
  const strides = K.broadcastStrides(x.shape, target);
  if (onDevice()) run("broadcastTo", "broadcastCopy", x.storage, strides, out, target);
  else K.broadcastCopy(...onHost("broadcastTo", x.storage), strides, ...onHost("broadcastTo", out), target);
  return record(out, target, [x], (g) => [sumTo(g, x.shape)]);
}

/** Sums x over the axes along which `shape` would be broadcast to x's shape: the adjoint of broadcastTo. */
export function sumTo(x: Tensor, shape: readonly number[]): Tensor {
  const target = [...shape];
  if (target.length > x.shape.length || !sameShape(broadcastShapes(target, x.shape, "sumTo"), x.shape)) {
    throw new RangeError(
      `sumTo: ${fmt(target)} does not broadcast to ${fmt(x.shape)}, so ${fmt(x.shape)} cannot be summed to it`,
    );
  }
  if (sameShape(x.shape, target)) return x;
  const out = newOutputLike(x.storage, sizeOf(target));
  const strides = K.broadcastStrides(target, x.shape);
  if (onDevice()) run("sumTo", "sumToShape", x.storage, x.shape, out, strides);
  else K.sumToShape(...onHost("sumTo", x.storage), x.shape, ...onHost("sumTo", out), strides);
  return record(out, target, [x], (g) => [broadcastTo(g, x.shape)]);
}

function binary(code: number, name: string, a: Tensor, b: Tensor): Storage {
  const shape = broadcastShapes(a.shape, b.shape, name);
  const out = allocFor(a, b, sizeOf(shape));
  if (out.length === 0) return out;
  // Same shapes: one flat loop.
  const same = sameShape(a.shape, b.shape);
  const [aStrides, bStrides, outShape] = same
    ? [[1], [1], [out.length]]
    : [K.broadcastStrides(a.shape, shape), K.broadcastStrides(b.shape, shape), shape];
  run(name, "broadcastBinary", code, a.storage, aStrides, b.storage, bStrides, out, outShape);
  return out;
}

/** a + b with broadcasting. */
export function addB(a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShapes(a.shape, b.shape, "addB");
  return record(binary(K.BIN_ADD, "addB", a, b), shape, [a, b], (g) => [
    a.requiresGrad ? sumTo(g, a.shape) : null,
    b.requiresGrad ? sumTo(g, b.shape) : null,
  ]);
}

/** a − b with broadcasting. */
export function subB(a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShapes(a.shape, b.shape, "subB");
  return record(binary(K.BIN_SUB, "subB", a, b), shape, [a, b], (g) => [
    a.requiresGrad ? sumTo(g, a.shape) : null,
    b.requiresGrad ? sumTo(neg(g), b.shape) : null,
  ]);
}

/** a ⊙ b with broadcasting. */
export function mulB(a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShapes(a.shape, b.shape, "mulB");
  return record(binary(K.BIN_MUL, "mulB", a, b), shape, [a, b], (g) => [
    a.requiresGrad ? sumTo(mulB(g, b), a.shape) : null,
    b.requiresGrad ? sumTo(mulB(g, a), b.shape) : null,
  ]);
}

/** a / b with broadcasting. */
export function divB(a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShapes(a.shape, b.shape, "divB");
  const y: Tensor = record(binary(K.BIN_DIV, "divB", a, b), shape, [a, b], (g) => {
    const ga = divB(g, b); // ∂/∂a = g/b; ∂/∂b = −g·a/b² = −(g/b)·y
    return [a.requiresGrad ? sumTo(ga, a.shape) : null, b.requiresGrad ? sumTo(neg(mulB(ga, y)), b.shape) : null];
  });
  return y;
}

export function neg(x: Tensor): Tensor {
  return scale(x, -1);
}

/** x^p for a constant p (NaN for negative x with non-integer p, as Math.pow). */
export function powScalar(x: Tensor, p: number): Tensor {
  if (!Number.isFinite(p)) throw new RangeError(`powScalar: exponent must be finite, got ${p}`);
  if (p === 1) return x;
  const out = newOutputLike(x.storage, x.size);
  if (p === 0) {
    run("powScalar", "fill", out, 1);
    return new Tensor(out, x.shape); // constant: no dependence on x
  }
  run("powScalar", "powScalar", x.storage, out, p);
  return record(out, x.shape, [x], (g) => [mulB(g, scale(powScalar(x, p - 1), p))]);
}

export function sqrt(x: Tensor): Tensor {
  const out = newOutputLike(x.storage, x.size);
  run("sqrt", "powScalar", x.storage, out, 0.5);
  const y: Tensor = record(out, x.shape, [x], (g) => [divB(g, scale(y, 2))]);
  return y;
}

/** The error function; its derivative 2/√π·e^{−x²} is built from differentiable ops. */
export function erf(x: Tensor): Tensor {
  const out = newOutputLike(x.storage, x.size);
  runOnDevice("erf", "unary", "erf", x.storage, out);
  return record(out, x.shape, [x], (g) => [mulB(g, erfDerivative(x))]);
}

function erfDerivative(x: Tensor): Tensor {
  return scale(exp(neg(mulB(x, x))), 2 / Math.sqrt(Math.PI));
}

/** A constant with x's values: no gradient flows through it. */
export function stopGradient(x: Tensor): Tensor {
  return x.detach();
}

/** Axes normalized to 0..rank−1 (negative axes count from the end), sorted; RangeError when out of range or repeated. */
function normalizeAxes(axes: readonly number[], rank: number, op: string): number[] {
  const out = axes.map((a) => {
    if (!Number.isInteger(a) || a < -rank || a >= rank)
      throw new RangeError(`${op}: axis ${a} is out of range for a rank-${rank} tensor`);
    return a < 0 ? a + rank : a;
  });
  if (new Set(out).size !== out.length) throw new RangeError(`${op}: repeated axis in [${axes.join(",")}]`);
  return out.sort((a, b) => a - b);
}

function reduceShapes(
  x: Tensor,
  axes: readonly number[],
  op: string,
): { kept: number[]; dropped: number[]; count: number } {
  // ONNX semantics: an empty axes list reduces over every axis.
  const ax = axes.length === 0 ? x.shape.map((_, i) => i) : normalizeAxes(axes, x.shape.length, op);
  const kept = x.shape.map((s, i) => (ax.includes(i) ? 1 : s));
  const dropped = x.shape.filter((_, i) => !ax.includes(i));
  let count = 1;
  for (const a of ax) count *= x.shape[a];
  return { kept, dropped, count };
}

/** Sum over `axes` (negative axes allowed; an empty list means all axes, as in ONNX). */
export function reduceSum(x: Tensor, axes: readonly number[], keepdims: boolean): Tensor {
  const { kept, dropped } = reduceShapes(x, axes, "reduceSum");
  const s = sumTo(x, kept);
  return keepdims ? s : reshape(s, dropped);
}

/** Mean over `axes` (negative axes allowed; an empty list means all axes, as in ONNX). */
export function reduceMean(x: Tensor, axes: readonly number[], keepdims: boolean): Tensor {
  const { count } = reduceShapes(x, axes, "reduceMean");
  return scale(reduceSum(x, axes, keepdims), 1 / count);
}

function channelCount(x: Tensor, op: string): number {
  if (x.shape.length < 2)
    throw new RangeError(`${op}: needs a tensor of rank ≥ 2 with channels last, got ${fmt(x.shape)}`);
  return x.shape[x.shape.length - 1];
}

function checkVector(t: Tensor, n: number, what: string, op: string): void {
  if (t.shape.length !== 1 || t.shape[0] !== n)
    throw new RangeError(`${op}: ${what} must have shape [${n}], got ${fmt(t.shape)}`);
}

function checkEps(eps: number, op: string): void {
  if (!(eps >= 0) || !Number.isFinite(eps)) throw new RangeError(`${op}: eps must be a finite number ≥ 0, got ${eps}`);
}

/**
 * Per-channel mean and biased variance over all axes but the last (what BatchNorm normalizes with in training).
 * Both are [C] and differentiable in x.
 */
export function channelMoments(x: Tensor): { mean: Tensor; variance: Tensor } {
  channelCount(x, "channelMoments");
  if (x.size === 0) throw new RangeError(`channelMoments: empty tensor ${fmt(x.shape)}`);
  const axes = x.shape.slice(0, -1).map((_, i) => i);
  const mean = reduceMean(x, axes, false);
  const xc = subB(x, mean);
  const variance = reduceMean(mulB(xc, xc), axes, false);
  return { mean, variance };
}

/** variance·n/(n−1): the unbiased estimate PyTorch puts in running_var. A constant (no gradient). */
export function unbiasedVariance(variance: Tensor, count: number): Tensor {
  if (!Number.isInteger(count) || count < 2) {
    throw new RangeError(`unbiasedVariance: need at least 2 values per channel, got ${count}`);
  }
  return noGrad(() => scale(variance, count / (count - 1)));
}

/**
 * (x − mean)/√(variance + eps)·gamma + beta per last-axis channel; mean, variance, gamma, beta are [C].
 * Differentiable in all five (in training, pass channelMoments(x) so the gradient flows through the statistics).
 */
export function batchNorm(x: Tensor, mean: Tensor, variance: Tensor, gamma: Tensor, beta: Tensor, eps: number): Tensor {
  const c = channelCount(x, "batchNorm");
  checkEps(eps, "batchNorm");
  checkVector(mean, c, "mean", "batchNorm");
  checkVector(variance, c, "variance", "batchNorm");
  checkVector(gamma, c, "gamma", "batchNorm");
  checkVector(beta, c, "beta", "batchNorm");
  const k = mulB(gamma, powScalar(affine(variance, 1, eps), -0.5)); // gamma/√(var+eps), [C]
  const fixed = [mean, variance, gamma, beta].every((t) => !t.requiresGrad && t.dtype === x.dtype);
  // Fixed statistics and affine parameters (inference): one pass of the bnApply kernel, the same bits as the chain
  // below, and the chain's derivative in x, g·k. (A device backend without the entry runs the chain.)
  if (fixed && (!onDevice() || kernels().bnApply)) {
    const out = newOutputLike(x.storage, x.size);
    run("batchNorm", "bnApply", x.storage, mean.storage, k.storage, beta.storage, out, x.size / c, c);
    return record(out, x.shape, [x], (g) => [mulB(g, k)]);
  }
  return addB(mulB(subB(x, mean), k), beta);
}

/** BatchNorm in training mode: the normalized output and the batch statistics it used. */
export interface BatchNormTraining {
  /** (x − mean)/√(variance + eps)·gamma + beta, differentiable in x, gamma and beta (through the statistics too). */
  y: Tensor;
  /** Per-channel mean of x over all axes but the last, [C]: a constant (no gradient), for running statistics. */
  mean: Tensor;
  /** Per-channel biased variance, [C]: a constant (no gradient). */
  variance: Tensor;
}

/**
 * BatchNorm with the batch's own statistics (training mode): channelMoments(x), then batchNorm, with the gradient
 * flowing through the statistics. Float32 x, gamma, beta on a backend with the batchNormForward/Backward entries
 * (and on host backends) run it as one recorded op: two passes forward; a first-order backward (no graph being
 * recorded: an SGD step) in the closed form, one kernel call; a recorded backward (double backprop) in
 * differentiable broadcast ops, so every order of derivative stays exact. Its values can differ from the
 * composite's in the last float32 bits. Otherwise (float64, a device backend without the entries) the composite.
 */
export function batchNormTraining(x: Tensor, gamma: Tensor, beta: Tensor, eps: number): BatchNormTraining {
  const c = channelCount(x, "batchNorm");
  checkEps(eps, "batchNorm");
  checkVector(gamma, c, "gamma", "batchNorm");
  checkVector(beta, c, "beta", "batchNorm");
  if (x.size === 0) throw new RangeError(`batchNorm: empty tensor ${fmt(x.shape)}`);
  const k = kernels();
  const fused =
    [x, gamma, beta].every((t) => t.dtype === "float32") &&
    (!onDevice() || (k.batchNormForward !== undefined && k.batchNormBackward !== undefined));
  if (!fused) {
    const m = channelMoments(x);
    return { y: batchNorm(x, m.mean, m.variance, gamma, beta, eps), mean: m.mean, variance: m.variance };
  }
  const rows = x.size / c;
  const mean = newOutputLike(x.storage, c),
    variance = newOutputLike(x.storage, c),
    out = newOutputLike(x.storage, x.size);
  run("batchNorm", "batchNormForward", x.storage, gamma.storage, beta.storage, mean, variance, out, rows, c, eps);
  const y = record(out, x.shape, [x, gamma, beta], (g) => {
    if (isRecording()) return batchNormBackwardOps(g, x, gamma, eps);
    const dx = newOutputLike(x.storage, x.size),
      dgamma = newOutputLike(x.storage, c),
      dbeta = newOutputLike(x.storage, c);
    run(
      "batchNorm",
      "batchNormBackward",
      g.storage,
      x.storage,
      mean,
      variance,
      gamma.storage,
      dx,
      dgamma,
      dbeta,
      rows,
      c,
      eps,
    );
    return [
      x.requiresGrad ? new Tensor(dx, x.shape) : null,
      gamma.requiresGrad ? new Tensor(dgamma, [c]) : null,
      beta.requiresGrad ? new Tensor(dbeta, [c]) : null,
    ];
  });
  return { y, mean: new Tensor(mean, [c]), variance: new Tensor(variance, [c]) };
}

/**
 * The vector-Jacobian product of training-mode BatchNorm in differentiable ops, with x̂ = (x − μ)·s, s = 1/√(var + eps):
 * dβ = Σg, dγ = Σg·x̂, dx = γ·s·(g − dβ/n − x̂·dγ/n) (n values per channel), the statistics recomputed from x.
 */
function batchNormBackwardOps(g: Tensor, x: Tensor, gamma: Tensor, eps: number): Tensor[] {
  const c = x.shape[x.shape.length - 1],
    n = x.size / c;
  const { mean, variance } = channelMoments(x);
  const s = powScalar(affine(variance, 1, eps), -0.5);
  const xhat = mulB(subB(x, mean), s);
  const dbeta = sumTo(g, [c]);
  const dgamma = sumTo(mulB(g, xhat), [c]);
  const centered = subB(subB(g, scale(dbeta, 1 / n)), mulB(xhat, scale(dgamma, 1 / n)));
  return [mulB(centered, mulB(gamma, s)), dgamma, dbeta];
}

/** PyTorch LayerNorm over the last axis: (x − mean)/√(var + eps)·gamma + beta with biased per-row statistics. */
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps: number): Tensor {
  if (x.shape.length < 1) throw new RangeError(`layerNorm: needs a tensor of rank ≥ 1, got ${fmt(x.shape)}`);
  checkEps(eps, "layerNorm");
  const d = x.shape[x.shape.length - 1];
  checkVector(gamma, d, "gamma", "layerNorm");
  checkVector(beta, d, "beta", "layerNorm");
  const xc = subB(x, reduceMean(x, [-1], true));
  const variance = reduceMean(mulB(xc, xc), [-1], true);
  const normalized = mulB(xc, powScalar(affine(variance, 1, eps), -0.5));
  return addB(mulB(normalized, gamma), beta);
}

/** An op whose derivative is given as a differentiable function of its input (and output). */
function unary(x: Tensor, out: Storage, derivative: (y: Tensor) => Tensor): Tensor {
  const y: Tensor = record(out, x.shape, [x], (g) => [mulB(g, derivative(y))]);
  return y;
}

/** x where x > 0, else alpha·x (PyTorch's derivative convention at 0: alpha). */
export function leakyRelu(x: Tensor, alpha: number): Tensor {
  if (!Number.isFinite(alpha)) throw new RangeError(`leakyRelu: alpha must be a finite number, got ${alpha}`);
  const out = newOutputLike(x.storage, x.size),
    mask = newOutputLike(x.storage, x.size);
  run("leakyRelu", "leakyRelu", x.storage, out, mask, alpha);
  return record(out, x.shape, [x], (g) => [mulConst(g, mask)]);
}

export function sigmoid(x: Tensor): Tensor {
  const out = newOutputLike(x.storage, x.size);
  runOnDevice("sigmoid", "unary", "sigmoid", x.storage, out);
  return unary(x, out, (y) => mulB(y, affine(y, -1, 1))); // σ' = σ(1 − σ)
}

/** x·σ(x); derivative σ(x)·(1 + x(1 − σ(x))). */
export function silu(x: Tensor): Tensor {
  const out = newOutputLike(x.storage, x.size);
  runOnDevice("silu", "unary", "silu", x.storage, out);
  return unary(x, out, () => {
    const s = sigmoid(x);
    return mulB(s, affine(mulB(x, affine(s, -1, 1)), 1, 1));
  });
}

/** PyTorch Softplus: log(1 + e^{βx})/β, reverting to x where βx > threshold (derivative 1 there). */
export function softplus(x: Tensor, beta = 1, threshold = 20): Tensor {
  if (!(beta > 0) || !Number.isFinite(beta))
    throw new RangeError(`softplus: beta must be a positive number, got ${beta}`);
  const out = newOutputLike(x.storage, x.size),
    mask = newOutputLike(x.storage, x.size);
  run("softplus", "softplus", x.storage, out, mask, beta, threshold);
  // derivative: σ(βx) on the log branch, 1 on the linear branch = mask⊙(σ(βx) − 1) + 1
  return unary(x, out, () => affine(mulConst(affine(sigmoid(scale(x, beta)), 1, -1), mask), 1, 1));
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_C = 0.044715;

/** GELU: x·Φ(x) with erf ("none") or PyTorch's tanh approximation ("tanh"). */
export function gelu(x: Tensor, approximate: "none" | "tanh" = "none"): Tensor {
  if (approximate !== "none" && approximate !== "tanh")
    throw new RangeError(`gelu: approximate must be "none" or "tanh", got ${String(approximate)}`);
  const out = newOutputLike(x.storage, x.size);
  runOnDevice("gelu", "unary", approximate === "none" ? "geluErf" : "geluTanh", x.storage, out);
  if (approximate === "none") {
    // Φ(x) + x·φ(x), Φ(x) = (1 + erf(x/√2))/2, φ(x) = e^{−x²/2}/√(2π)
    return unary(x, out, () => {
      const cdf = affine(erf(scale(x, Math.SQRT1_2)), 0.5, 0.5);
      const pdf = scale(exp(scale(mulB(x, x), -0.5)), 1 / Math.sqrt(2 * Math.PI));
      return addB(cdf, mulB(x, pdf));
    });
  }
  // y = ½x(1 + t), t = tanh(u), u = √(2/π)(x + c·x³): y' = ½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3c·x²)
  return unary(x, out, () => {
    const x2 = mulB(x, x);
    const t = tanh(scale(addB(x, scale(mulB(x2, x), GELU_C)), SQRT_2_OVER_PI));
    const du = affine(x2, 3 * GELU_C * SQRT_2_OVER_PI, SQRT_2_OVER_PI);
    return addB(affine(t, 0.5, 0.5), mulB(scale(x, 0.5), mulB(affine(mulB(t, t), -1, 1), du)));
  });
}
