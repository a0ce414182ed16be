/**
 * Weight norms and the GC upper bounds they give (PAPER.md T1, T2): for a ReLU (1-Lipschitz) network
 * GC ≤ ∏‖W_l‖_F² and GC ≤ min(d,k)·∏‖W_l‖_op².
 */
import type { Tensor } from "../engine/tensor.js";
import type { Network, Params } from "../models/network.js";
import { Rng } from "../util/rng.js";

/** ‖W‖_F²: the sum of squares of a weight tensor's entries. */
export function frobeniusSq(w: Tensor): number {
  let s = 0;
  for (let i = 0; i < w.data.length; i++) s += w.data[i] * w.data[i];
  return s;
}

/** v ← v/‖v‖ in place (left alone when zero). */
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
 * Largest singular value of w viewed as a [rows, size/rows] matrix, by power iteration on wᵀw.
 * `init` (length cols) warm-starts the iteration and is updated in place, so repeated calls converge fast.
 */
export function spectralNorm(w: Tensor, iterations = 50, init?: Float64Array, seed = 0): number {
  const rows = w.shape[0], cols = w.size / rows;
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
    sigma = Math.sqrt(u.reduce((a, b) => a + b * b, 0));
    if (sigma === 0) return 0;
    matTVec(w.data, u, v, rows, cols);
  }
  if (init) init.set(normalize(v));
  return sigma;
}

/** Weight norms of a network and the bounds on GC they give (theorems T1 and T2 of the paper). */
export interface NormReport {
  /** Σ_l ‖W_l‖_F² (the L2 penalty without its λ). */
  sum_frobenius_sq: number;
  /** ∏_l ‖W_l‖_F²: the T1 bound on GC (null for CNNs). */
  prod_frobenius_sq: number | null;
  /** ‖W_l‖_op per weight matrix, in layer order. */
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
  const weights = net.params.filter((p) => p.kind === "weight").map((p) => params[p.name]);
  const fro = weights.map(frobeniusSq);
  const spec = weights.map((w) => spectralNorm(w));
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
