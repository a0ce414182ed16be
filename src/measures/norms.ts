/**
 * Weight norms and the GC upper bounds they give (PAPER.md T1, T2): for a ReLU (1-Lipschitz) network
 * GC ≤ ∏‖W_l‖_F² and GC ≤ min(d,k)·∏‖W_l‖_op².
 */
import { Tensor } from "../engine/tensor.js";
import type { Network, Params } from "../models/network.js";
import { Rng } from "../util/rng.js";
import { resolveNow, type Deferred } from "./readback.js";

/** ‖W‖_F²: the sum of squares of a weight tensor's entries (host values: a measure's final arithmetic). */
export function frobeniusSq(w: Tensor): number {
  let s = 0;
  for (let i = 0; i < w.data.length; i++) s += w.data[i] * w.data[i];
  return s;
}

/** v ← v/‖v‖ in place (left alone when zero). Host arithmetic for measures; training steps use ops (spectral.ts). */
export function normalize(v: Float64Array): Float64Array {
  const n = Math.sqrt(v.reduce((a, b) => a + b * b, 0)) || 1;
  for (let i = 0; i < v.length; i++) v[i] /= n;
  return v;
}

/** out = W v for W [rows, cols] row-major. */
export function matVec(w: ArrayLike<number>, v: Float64Array, out: Float64Array, rows: number, cols: number): void {
  for (let i = 0; i < rows; i++) {
    let s = 0;
    for (let j = 0; j < cols; j++) s += w[i * cols + j] * v[j];
    out[i] = s;
  }
}

/** out = Wᵀ u for W [rows, cols] row-major. */
export function matTVec(w: ArrayLike<number>, u: Float64Array, out: Float64Array, rows: number, cols: number): void {
  out.fill(0);
  for (let i = 0; i < rows; i++) {
    const ui = u[i];
    if (ui !== 0) for (let j = 0; j < cols; j++) out[j] += w[i * cols + j] * ui;
  }
}

/**
 * Largest singular value of w viewed as a [rows, size/rows] matrix, by power iteration on wᵀw, stopped when the
 * estimate changes by less than `tol` (relative) between iterations or after `iterations` iterations. A power
 * iteration can only under-estimate σ_max (it converges slowly when the top two singular values are close), so it
 * is not a bound: use `spectralNormUpper` where an upper bound must hold.
 * `init` (length cols) warm-starts the iteration and is updated in place, so repeated calls converge fast.
 */
export function spectralNorm(w: Tensor, iterations = 1000, init?: Float64Array, seed = 0, tol = 1e-9): number {
  const rows = w.shape[0],
    cols = w.size / rows;
  const v = init ? Float64Array.from(init) : new Float64Array(cols);
  if (!init) {
    const rng = new Rng(seed);
    for (let j = 0; j < cols; j++) v[j] = rng.normal();
  }
  const u = new Float64Array(rows);
  let sigma = 0;
  for (let it = 0; it < iterations; it++) {
    normalize(v);
    matVec(w.data, v, u, rows, cols);
    const next = Math.sqrt(u.reduce((a, b) => a + b * b, 0));
    if (next === 0) return 0;
    const change = Math.abs(next - sigma);
    sigma = next;
    matTVec(w.data, u, v, rows, cols);
    if (change <= tol * sigma) break;
  }
  if (init) init.set(normalize(v));
  return sigma;
}

/** Gram matrix of the smaller side of w [rows, cols]: wᵀw ([cols, cols]) or wwᵀ ([rows, rows]), in float64. */
function smallGram(w: ArrayLike<number>, rows: number, cols: number): { g: Float64Array; n: number } {
  const n = Math.min(rows, cols);
  const g = new Float64Array(n * n);
  if (cols <= rows) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      for (let i = 0; i < cols; i++) {
        const wi = w[o + i];
        if (wi === 0) continue;
        for (let j = i; j < cols; j++) g[i * n + j] += wi * w[o + j];
      }
    }
  } else {
    for (let i = 0; i < rows; i++)
      for (let j = i; j < rows; j++) {
        let s = 0;
        for (let c = 0; c < cols; c++) s += w[i * cols + c] * w[j * cols + c];
        g[i * n + j] = s;
      }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) g[i * n + j] = g[j * n + i];
  return { g, n };
}

/**
 * Eigenvalues of a symmetric n×n matrix (row-major, overwritten) by the cyclic Jacobi method, in float64. Jacobi is
 * backward stable: each computed eigenvalue is within a small multiple of n·ε·‖A‖_F of an exact one.
 */
export function symmetricEigenvalues(a: Float64Array, n: number, maxSweeps = 60): Float64Array {
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0,
      total = 0;
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        const x = a[i * n + j] * a[i * n + j];
        total += x;
        if (i !== j) off += x;
      }
    if (off <= 1e-30 * total || off === 0) break;
    for (let p = 0; p < n - 1; p++)
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (apq === 0) continue;
        const app = a[p * n + p],
          aqq = a[q * n + q];
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1),
          s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p],
            akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k],
            aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
      }
  }
  return Float64Array.from({ length: n }, (_, i) => a[i * n + i]);
}

/**
 * A certified upper bound on σ_max(w): the exact largest eigenvalue of the smaller Gram matrix (wᵀw or wwᵀ, formed
 * in float64 from the float32 weights, which are exact in float64) by Jacobi, plus an allowance for float64
 * rounding in forming the Gram matrix and in Jacobi (4·(n+m)·ε·‖W‖_F², far above the actual error), square-rooted.
 * The relative slack is about 1e-12, so this is σ_max for every practical purpose, and it never falls below it.
 */
export function spectralNormUpper(w: Tensor): number {
  const rows = w.shape[0],
    cols = w.size / rows;
  if (w.size === 0) return 0;
  const { g, n } = smallGram(w.data, rows, cols);
  let fro = 0;
  for (let i = 0; i < n; i++) fro += g[i * n + i];
  if (fro === 0) return 0;
  const eig = symmetricEigenvalues(g, n);
  const top = eig.reduce((a, b) => Math.max(a, b), 0);
  const allowance = 4 * (rows + cols) * Number.EPSILON * fro;
  return Math.sqrt(top + allowance);
}

/** Weight norms of a network and the bounds on GC they give (theorems T1 and T2 of the paper). */
export interface NormReport {
  /** Σ_l ‖W_l‖_F² (the L2 penalty without its λ). */
  sum_frobenius_sq: number;
  /** ∏_l ‖W_l‖_F²: the T1 bound on GC (null for CNNs). */
  prod_frobenius_sq: number | null;
  /** ‖W_l‖_op per weight matrix, in layer order: certified upper bounds (spectralNormUpper), so the bounds hold. */
  spectral_norms: number[];
  /** ∏_l ‖W_l‖_op². */
  prod_spectral_sq: number;
  /** min(d, k)·∏_l ‖W_l‖_op²: the T2 (Lipschitz) bound on GC (null for CNNs). */
  lipschitz_bound: number | null;
}

/**
 * Norms of every weight tensor. The bounds assume dense layers (a conv weight's matrix norms are not the
 * norms of the convolution operator), so for CNNs they are reported as null.
 */
export function weightNorms(net: Network, params: Params): NormReport {
  return resolveNow(weightNormsDeferred(net, params));
}

/**
 * {@link weightNorms} as a deferred read: a log-point measure that reads each weight tensor once, at the end, and
 * computes the norms on the host in float64 (the certified Jacobi bound has no op form).
 */
export function weightNormsDeferred(net: Network, params: Params): Deferred<NormReport> {
  const weights = net.params.filter((p) => p.kind === "weight").map((p) => params[p.name]);
  return {
    tensors: weights,
    finish: (values) =>
      normsOf(
        net,
        values.map((v, i) => new Tensor(v, weights[i].shape)),
      ),
  };
}

function normsOf(net: Network, weights: Tensor[]): NormReport {
  const fro = weights.map(frobeniusSq);
  const spec = weights.map((w) => spectralNormUpper(w));
  const prodSpec = spec.reduce((a, s) => a * s * s, 1);
  // The bounds hold for plain chains of dense layers; conv operators, residual branches and normalization break them.
  const dense = net.spec.kind === "mlp";
  return {
    sum_frobenius_sq: fro.reduce((a, b) => a + b, 0),
    prod_frobenius_sq: dense ? fro.reduce((a, b) => a * b, 1) : null,
    spectral_norms: spec,
    prod_spectral_sq: prodSpec,
    lipschitz_bound: dense ? Math.min(net.inputSize, net.outputSize) * prodSpec : null,
  };
}
