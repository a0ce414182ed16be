/**
 * `flatness`: λ·‖∇_θ L‖², the explicit form of implicit gradient regularization (T4) and a flatness penalty (T3).
 * Its gradient needs the Hessian-vector product H·∇L, obtained by differentiating the recorded gradient again.
 * L is the data loss as the step computed it (graph models: BatchNorm in training mode, batch statistics included in
 * the differentiation); buffers are not parameters of it.
 */
import * as op from "../engine/ops.js";
import { grad } from "../engine/autograd.js";
import { trainableTensors, type Regularizer } from "./regularizer.js";

/** `flatness`: λ·‖∇_θ L‖², the explicit form of implicit gradient regularization (double backprop). */
export function flatness(lambda: number): Regularizer {
  return {
    name: "flatness",
    strength: lambda,
    init: () => ({}),
    penalty({ net, params, loss }, state) {
      const grads = grad(loss, trainableTensors(net, params), { createGraph: true });
      const sq = grads.map((g) => op.sumSquares(g)).reduce((a, b) => op.add(a, b));
      return { value: op.scale(sq, lambda), state };
    },
  };
}
