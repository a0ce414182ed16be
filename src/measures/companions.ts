/**
 * Companion measures logged beside GC during training (PAPER.md T1–T3): parameter-gradient norms of the outputs,
 * the first-layer transfer bound, the loss-gradient norm, and Hessian trace / top eigenvalue of the loss.
 */
import { Tensor, alloc } from "../engine/tensor.js";
import * as op from "../engine/ops.js";
import { grad } from "../engine/autograd.js";
import { forward, type Network, type Params } from "../models/network.js";
import { Rng } from "../util/rng.js";
import { spectralNormUpper } from "./norms.js";

/** A data loss on fixed data, as a function of (differentiable) parameters. */
export type LossOf = (params: Params) => Tensor;

function variables(params: Params): Params {
  return Object.fromEntries(Object.entries(params).map(([k, v]) => [k, v.variable()]));
}

function rowSqNorms(t: Tensor): Float64Array {
  const [b, n] = [t.shape[0], t.size / t.shape[0]];
  const out = new Float64Array(b);
  for (let i = 0; i < b; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += t.data[i * n + j] ** 2;
    out[i] = s;
  }
  return out;
}

export interface OutputGradientReport {
  /** mean_x ‖∇_θ g(x)‖_F² (all parameters, all outputs). */
  param_grad_sq: number;
  /** T3: mean_x ‖W₁‖_op²·Σ_c‖δ₁,c(x)‖² = mean_x ‖W₁‖_op²/(1+‖x‖²)·‖∇_{W₁,b₁} g(x)‖_F², an upper bound on GC. */
  t3_bound: number;
}

/**
 * Exact per-example parameter-gradient norms of the outputs for dense networks, from the backpropagated signals δ at
 * each dense layer: ‖∇_{W,b} g_c‖² = ‖δ_c‖²(‖a‖²+1) with a the layer's input. Null for CNNs.
 */
export function outputGradients(net: Network, params: Params, x: Tensor): OutputGradientReport | null {
  if (net.spec.kind !== "mlp") return null;
  const inputs: Tensor[] = [],
    outputs: Tensor[] = [];
  const y = forward(net, params, x.variable(), (layer, input, output) => {
    if (layer.type === "dense") {
      inputs.push(input);
      outputs.push(output);
    }
  });
  const [b, k] = y.shape;
  const inSq = inputs.map((a) => rowSqNorms(a).map((v) => v + 1));
  const paramSq = new Float64Array(b),
    firstSq = new Float64Array(b);
  for (let c = 0; c < k; c++) {
    const onehot = alloc(y.dtype, b * k);
    for (let i = 0; i < b; i++) onehot[i * k + c] = 1;
    const deltas = grad(y, outputs, { cotangent: new Tensor(onehot, y.shape) });
    deltas.forEach((d, l) => {
      const dsq = rowSqNorms(d);
      for (let i = 0; i < b; i++) {
        paramSq[i] += dsq[i] * inSq[l][i];
        if (l === 0) firstSq[i] += dsq[i];
      }
    });
  }
  const w1 = spectralNormUpper(params["layers.0.weight"]) ** 2;
  const mean = (a: Float64Array) => a.reduce((s, v) => s + v, 0) / a.length;
  return { param_grad_sq: mean(paramSq), t3_bound: w1 * mean(firstSq) };
}

/** ‖∇_θ L‖² of a loss. */
export function lossGradSq(params: Params, loss: LossOf): number {
  const vars = variables(params);
  const grads = grad(loss(vars), Object.values(vars));
  return grads.reduce((s, g) => s + op.sumSquares(g).item(), 0);
}

/** Hessian-vector product H·v of the loss at params, by differentiating ⟨∇L, v⟩. */
export function hessianVectorProduct(params: Params, loss: LossOf, v: Tensor[]): Tensor[] {
  const vars = variables(params);
  const list = Object.values(vars);
  const grads = grad(loss(vars), list, { createGraph: true });
  const dot = grads.map((g, i) => op.sum(op.mul(g, v[i]))).reduce((a, b) => op.add(a, b));
  return grad(dot, list);
}

/** Hutchinson's estimate of Tr(∇²_θ L) with Rademacher probes: mean of vᵀHv; returns the estimate and its standard error. */
export function hessianTrace(
  params: Params,
  loss: LossOf,
  probes: number,
  seed: number,
): { trace: number; stderr: number } {
  const rng = new Rng(seed);
  const shapes = Object.values(params);
  const draws: number[] = [];
  for (let p = 0; p < probes; p++) {
    const v = shapes.map(
      (t) =>
        new Tensor(
          Float32Array.from({ length: t.size }, () => rng.rademacher()),
          t.shape,
        ),
    );
    const hv = hessianVectorProduct(params, loss, v);
    draws.push(hv.reduce((s, h, i) => s + op.sum(op.mul(h, v[i])).item(), 0));
  }
  const mean = draws.reduce((a, b) => a + b, 0) / probes;
  const variance = probes > 1 ? draws.reduce((a, b) => a + (b - mean) ** 2, 0) / (probes - 1) : NaN;
  return { trace: mean, stderr: Math.sqrt(variance / probes) };
}

/** Largest-magnitude Hessian eigenvalue by power iteration on Hessian-vector products. */
export function hessianTopEigenvalue(params: Params, loss: LossOf, iterations: number, seed: number): number {
  const rng = new Rng(seed);
  let v = Object.values(params).map(
    (t) =>
      new Tensor(
        Float64Array.from({ length: t.size }, () => rng.normal()),
        t.shape,
      ),
  );
  let lambda = 0;
  for (let it = 0; it < iterations; it++) {
    const norm = Math.sqrt(v.reduce((s, t) => s + op.sumSquares(t).item(), 0));
    v = v.map(
      (t) =>
        new Tensor(
          Float32Array.from(t.data, (x) => x / norm),
          t.shape,
        ),
    );
    const hv = hessianVectorProduct(params, loss, v);
    lambda = hv.reduce((s, h, i) => s + op.sum(op.mul(h, v[i])).item(), 0);
    v = hv;
  }
  return lambda;
}
