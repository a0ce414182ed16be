/**
 * Companion measures logged beside GC during training (PAPER.md T1–T3): parameter-gradient norms of the outputs,
 * the first-layer transfer bound, the loss-gradient norm, and Hessian trace / top eigenvalue of the loss.
 */
import { Tensor, cast, tensor, type Data } from "../engine/tensor.js";
import * as op from "../engine/ops.js";
import { divB, sqrt } from "../engine/elementwise.js";
import { grad } from "../engine/autograd.js";
import { forward, type Network, type Params } from "../models/network.js";
import { Rng } from "../util/rng.js";
import { spectralNormUpper } from "./norms.js";
import { bookkeepingDType, resolveNow, sumScalars, upload, type Deferred } from "./readback.js";

/** A data loss on fixed data, as a function of (differentiable) parameters. */
export type LossOf = (params: Params) => Tensor;

function variables(params: Params): Params {
  return Object.fromEntries(Object.entries(params).map(([k, v]) => [k, v.variable()]));
}

/** Σ_j t[i, j]² per row of read-back values of a [b, n] tensor, in float64. */
function rowSqNorms(d: ArrayLike<number>, b: number): Float64Array {
  const n = d.length / b;
  const out = new Float64Array(b);
  for (let i = 0; i < b; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += d[i * n + j] ** 2;
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
  return resolveNow(outputGradientsDeferred(net, params, x));
}

/**
 * {@link outputGradients} without reading anything back until the end: the layer inputs and every class's signals
 * δ stay on the backend; the norms are summed on the host, in float64, from their values read at once.
 */
export function outputGradientsDeferred(
  net: Network,
  params: Params,
  x: Tensor,
): Deferred<OutputGradientReport | null> {
  if (net.spec.kind !== "mlp") return { tensors: [], finish: () => null };
  const inputs: Tensor[] = [],
    outputs: Tensor[] = [];
  const y = forward(net, params, x.variable(), (layer, input, output) => {
    if (layer.type === "dense") {
      inputs.push(input);
      outputs.push(output);
    }
  });
  const [b, k] = y.shape;
  const deltas: Tensor[] = [];
  for (let c = 0; c < k; c++) {
    const onehot = y.dtype === "float64" ? new Float64Array(b * k) : new Float32Array(b * k);
    for (let i = 0; i < b; i++) onehot[i * k + c] = 1;
    deltas.push(...grad(y, outputs, { cotangent: tensor(onehot, y.shape, y.dtype) }));
  }
  const w1 = params["layers.0.weight"];
  const layers = inputs.length;
  return {
    tensors: [w1, ...inputs, ...deltas],
    finish(values) {
      const inSq = values.slice(1, 1 + layers).map((a) => rowSqNorms(a, b).map((v) => v + 1));
      const paramSq = new Float64Array(b),
        firstSq = new Float64Array(b);
      for (let c = 0; c < k; c++) {
        for (let l = 0; l < layers; l++) {
          const dsq = rowSqNorms(values[1 + layers + c * layers + l], b);
          for (let i = 0; i < b; i++) {
            paramSq[i] += dsq[i] * inSq[l][i];
            if (l === 0) firstSq[i] += dsq[i];
          }
        }
      }
      const w = spectralNormUpper(new Tensor(values[0], w1.shape)) ** 2;
      const mean = (a: Float64Array) => a.reduce((s, v) => s + v, 0) / a.length;
      return { param_grad_sq: mean(paramSq), t3_bound: w * mean(firstSq) };
    },
  };
}

/** ‖∇_θ L‖² of a loss. */
export function lossGradSq(params: Params, loss: LossOf): number {
  return resolveNow(lossGradSqDeferred(params, loss));
}

/** {@link lossGradSq} without reading back until the end: one ‖g‖² tensor per parameter, summed on the host. */
export function lossGradSqDeferred(params: Params, loss: LossOf): Deferred<number> {
  const vars = variables(params);
  const grads = grad(loss(vars), Object.values(vars));
  return { tensors: grads.map((g) => op.sumSquares(g)), finish: sumScalars };
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
  return resolveNow(hessianTraceDeferred(params, loss, probes, seed));
}

/** {@link hessianTrace} without reading back until the end: the terms vᵀHv stay on the backend until then. */
export function hessianTraceDeferred(
  params: Params,
  loss: LossOf,
  probes: number,
  seed: number,
): Deferred<{ trace: number; stderr: number }> {
  const rng = new Rng(seed);
  const shapes = Object.values(params);
  const terms: Tensor[] = [];
  for (let p = 0; p < probes; p++) {
    const v = shapes.map((t) =>
      upload(
        Float32Array.from({ length: t.size }, () => rng.rademacher()),
        t.shape,
      ),
    );
    const hv = hessianVectorProduct(params, loss, v);
    terms.push(...hv.map((h, i) => op.sum(op.mul(h, v[i]))));
  }
  const n = shapes.length;
  return {
    tensors: terms,
    finish(values) {
      const draws: number[] = [];
      for (let p = 0; p < probes; p++) draws.push(sumScalars(values.slice(p * n, (p + 1) * n)));
      const mean = draws.reduce((a, b) => a + b, 0) / probes;
      const variance = probes > 1 ? draws.reduce((a, b) => a + (b - mean) ** 2, 0) / (probes - 1) : NaN;
      return { trace: mean, stderr: Math.sqrt(variance / probes) };
    },
  };
}

/** Largest-magnitude Hessian eigenvalue by power iteration on Hessian-vector products. */
export function hessianTopEigenvalue(params: Params, loss: LossOf, iterations: number, seed: number): number {
  return resolveNow(hessianTopEigenvalueDeferred(params, loss, iterations, seed));
}

/**
 * {@link hessianTopEigenvalue} as ops: each iteration's normalization divides by a norm tensor (no per-iteration
 * read-back), in the bookkeeping precision (float64 on host backends: the float64 host arithmetic it replaced);
 * only the last iteration's vᵀHv terms are read, at the end.
 */
export function hessianTopEigenvalueDeferred(
  params: Params,
  loss: LossOf,
  iterations: number,
  seed: number,
): Deferred<number> {
  const rng = new Rng(seed);
  const dtype = bookkeepingDType();
  let v = Object.values(params).map((t) =>
    upload(
      Float64Array.from({ length: t.size }, () => rng.normal()),
      t.shape,
    ),
  );
  let terms: Tensor[] = [];
  for (let it = 0; it < iterations; it++) {
    const norm = sqrt(v.map((t) => cast(op.sumSquares(t), dtype)).reduce((a, b) => op.add(a, b)));
    v = v.map((t) => cast(divB(cast(t, dtype), norm), "float32"));
    const hv = hessianVectorProduct(params, loss, v);
    terms = hv.map((h, i) => op.sum(op.mul(h, v[i])));
    v = hv;
  }
  return { tensors: terms, finish: (values: readonly Data[]) => sumScalars(values) };
}
