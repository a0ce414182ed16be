/** `l2`: λ·Σ_l ‖W_l‖_F² over weight matrices (biases are not penalized). Bounds GC through T1. */
import * as op from "../engine/ops.js";
import type { Regularizer } from "./regularizer.js";

/** `l2`: λ·Σ_l ‖W_l‖_F² over weight tensors (biases excluded). */
export function l2(lambda: number): Regularizer {
  return {
    name: "l2",
    strength: lambda,
    init: () => ({}),
    penalty({ net, params }, state) {
      const terms = net.params.filter((p) => p.kind === "weight").map((p) => op.sumSquares(params[p.name]));
      return {
        value: op.scale(
          terms.reduce((a, b) => op.add(a, b)),
          lambda,
        ),
        state,
      };
    },
  };
}
