/**
 * `gc`: α·GC of the batch (explicit geometric-complexity regularization, claim X), exact (k backward passes) or
 * estimated with random probes; either way differentiated by double backprop.
 * Graph models in training mode: each example's input Jacobian is taken with BatchNorm's batch statistics held
 * constant (computed from the batch, then detached), so it involves only that example; the penalty's gradient in θ
 * treats them as constants too (decision 0006, addendum).
 */
import * as op from "../engine/ops.js";
import { jacobianSqNormsReverse, probeSqNorms } from "../measures/jacobian.js";
import { denseJacobianSqNormsDifferentiable } from "../measures/denseJacobian.js";
import type { Regularizer } from "./regularizer.js";

/** `gc`: α·GC of the batch, exact (`probes` 0) or estimated with `probes` random probes per example. */
export function gcPenalty(alpha: number, probes = 0): Regularizer {
  return {
    name: "gc",
    strength: alpha,
    init: () => ({}),
    penalty({ net, params, batch, rng, run }, state) {
      const b = batch.x.shape[0];
      const mode = run?.training ? { training: true, detachBatchStats: true } : run;
      // Exact: closed-form propagation for ReLU/linear MLPs (first-order backprop suffices), else double backprop.
      const norms =
        probes > 0
          ? probeSqNorms(net, params, batch.x, probes, "gaussian", rng, "logits", true, mode).reduce((a, t) =>
              op.add(a, t),
            )
          : (denseJacobianSqNormsDifferentiable(net, params, batch.x) ??
            jacobianSqNormsReverse(net, params, batch.x, "logits", true, mode));
      const scale = alpha / (b * (probes > 0 ? probes : 1));
      return { value: op.scale(op.sum(norms), scale), state };
    },
  };
}
