/**
 * `spectral`: λ·Σ_l ‖W_l‖_op², with σ_l = uᵀW_l v from one power-iteration step per training step; u and v persist
 * across steps (as in spectral normalization) and are treated as constants, so ∂σ/∂W = u vᵀ. Conv weights are taken
 * as [out, kh·kw·in] matrices. Bounds GC through T2.
 */
import { Tensor, cast, zeros } from "../engine/tensor.js";
import * as op from "../engine/ops.js";
import { divB, sqrt } from "../engine/elementwise.js";
import { noGrad } from "../engine/graph.js";
import { Rng } from "../util/rng.js";
import type { RegState, Regularizer } from "./regularizer.js";
import { bookkeepingDType, onBackend, storageOf } from "../measures/readback.js";

/**
 * v/‖v‖ for a vector tensor, left alone when zero: ‖v‖ + [‖v‖ = 0] as the divisor (the indicator from ReLU's mask
 * of ‖v‖, which is ≥ 0), all ops, so nothing is read back.
 */
function normalized(v: Tensor): Tensor {
  const n = sqrt(op.sumSquares(v));
  const isZero = op.affine(new Tensor(op.reluMaskStorage(n), n.shape), -1, 1);
  return divB(v, op.add(n, isZero));
}

/**
 * `iterations` power-iteration steps on w [rows, cols] from v [1, cols], in the bookkeeping precision (float64 on
 * host backends: the same arithmetic as the float64 host loops this replaced); returns u [1, rows] and v [1, cols],
 * both normalized. Ops only: no per-iteration read-back.
 */
export function powerIteration(w: Tensor, v0: Tensor, iterations: number): { u: Tensor; v: Tensor } {
  return noGrad(() => {
    const rows = w.shape[0],
      cols = w.size / rows;
    const dtype = bookkeepingDType();
    const wm = cast(op.reshape(w.detach(), [rows, cols]), dtype);
    let v = cast(op.reshape(v0, [1, cols]), dtype);
    let u = zeros([1, rows], dtype);
    for (let it = 0; it < iterations; it++) {
      v = normalized(v);
      u = normalized(op.reshape(op.matmul(wm, op.reshape(v, [cols, 1])), [1, rows])); // (W v)ᵀ
      v = op.matmul(u, wm); // uᵀ W
    }
    return { u, v: normalized(v) };
  });
}

/** `spectral`: λ·Σ_l ‖W_l‖_op², with `iterations` power-iteration steps per training step from persistent vectors. */
export function spectral(lambda: number, iterations = 1): Regularizer {
  return {
    name: "spectral",
    strength: lambda,
    init(net) {
      const state: RegState = {};
      const rng = new Rng(12345);
      for (const p of net.params.filter((q) => q.kind === "weight")) {
        const cols = p.shape.slice(1).reduce((a, b) => a * b, 1);
        state[`${p.name}.v`] = Float64Array.from({ length: cols }, () => rng.normal());
      }
      return state;
    },
    penalty({ net, params }, state) {
      const next: RegState = {};
      let total: Tensor | null = null;
      for (const p of net.params.filter((q) => q.kind === "weight")) {
        const w = params[p.name];
        const rows = w.shape[0],
          cols = w.size / rows;
        const { u, v } = powerIteration(w, onBackend(new Tensor(state[`${p.name}.v`], [cols])), iterations);
        next[`${p.name}.v`] = storageOf(op.reshape(v, [cols]));
        // σ = uᵀ W v = Σ W ⊙ (u vᵀ), differentiable in W with u, v fixed (the outer product in W's precision).
        const outer = cast(op.matmul(op.reshape(u, [rows, 1]), v), w.dtype);
        const sigma = op.sum(op.mul(w, op.reshape(outer, w.shape)));
        const sq = op.mul(sigma, sigma);
        total = total ? op.add(total, sq) : sq;
      }
      return { value: op.scale(total!, lambda), state: next };
    },
  };
}
