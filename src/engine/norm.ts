/**
 * BatchNorm with fixed statistics (inference: the running mean and variance, constants) as one kernel instead of
 * elementwise.ts's chain of broadcast ops (subtract, multiply, add, each a pass over x and a fresh tensor). The same
 * bits as `batchNorm` of elementwise.ts, and the same derivatives: with the statistics and affine parameters
 * constant, the op is x ↦ (x − mean)·k + β, whose derivative is g ↦ g·k (elementwise.ts mulB, as the chain's).
 */
import { Tensor, allocLike } from "./tensor.js";
import { record } from "./graph.js";
import { kernels } from "./backend.js";
import { affine } from "./ops.js";
import { mulB, powScalar } from "./elementwise.js";
import type { KernelExtensions } from "./kernelExtensions.js";

/**
 * (x − mean)/√(variance + eps)·gamma + beta over the last axis by the backend's kernel, or null where that does not
 * apply (no kernel, float64, a statistic or parameter being differentiated, shapes elementwise.batchNorm rejects):
 * then call elementwise.ts batchNorm.
 */
export function batchNormFixed(
  x: Tensor,
  mean: Tensor,
  variance: Tensor,
  gamma: Tensor,
  beta: Tensor,
  eps: number,
): Tensor | null {
  const bn = (kernels() as KernelExtensions).bnApply;
  const C = x.shape[x.shape.length - 1];
  const fixed = [mean, variance, gamma, beta].every(
    (t) => !t.requiresGrad && t.dtype === "float32" && t.shape.length === 1 && t.shape[0] === C,
  );
  if (!bn || x.shape.length < 2 || x.dtype !== "float32" || !fixed || !(eps >= 0) || !Number.isFinite(eps)) return null;
  const k = mulB(gamma, powScalar(affine(variance, 1, eps), -0.5)); // γ/√(var + eps) exactly as batchNorm forms it
  const out = allocLike(x.data, x.size);
  if (!bn(x.data, mean.data, k.data, beta.data, out, x.size / C, C)) return null;
  return record(out, x.shape, [x], (g) => [mulB(g, k)]);
}
