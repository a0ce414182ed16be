/**
 * `spectral`: λ·Σ_l ‖W_l‖_op², with σ_l = uᵀW_l v from one power-iteration step per training step; u and v persist
 * across steps (as in spectral normalization) and are treated as constants, so ∂σ/∂W = u vᵀ. Conv weights are taken
 * as [out, kh·kw·in] matrices. Bounds GC through T2.
 */
import { Tensor } from "../engine/tensor.js";
import * as op from "../engine/ops.js";
import { Rng } from "../util/rng.js";
import type { RegState, Regularizer } from "./regularizer.js";
import { matTVec, matVec, normalize } from "../measures/norms.js";

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
        const v = Float64Array.from(state[`${p.name}.v`]);
        const u = new Float64Array(rows);
        for (let it = 0; it < iterations; it++) {
          normalize(v);
          matVec(w.data, v, u, rows, cols);
          normalize(u);
          matTVec(w.data, u, v, rows, cols);
        }
        normalize(v);
        next[`${p.name}.v`] = v;
        // σ = uᵀ W v = Σ W ⊙ (u vᵀ), differentiable in W with u, v fixed.
        const outer = new (w.data.constructor as Float64ArrayConstructor)(w.size);
        for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) outer[i * cols + j] = u[i] * v[j];
        const sigma = op.sum(op.mul(w, new Tensor(outer, w.shape)));
        const sq = op.mul(sigma, sigma);
        total = total ? op.add(total, sq) : sq;
      }
      return { value: op.scale(total!, lambda), state: next };
    },
  };
}
