/**
 * Parameter-update kernels for optimizers: fused loops over flat arrays, run by the active backend when it has them
 * (wasm) and by these JS loops otherwise. Outputs are fresh storage (resident inside a step's scope); the optimizer
 * state passed in is never modified, so an optimizer stays a pure `update` function.
 */
import { allocStorage, kernels } from "./backend.js";
import type { Data } from "./tensor.js";

/** Updates are float32 whatever the inputs' precision: trained parameters and optimizer state are float32 (as checkpoints store them). */
function like(a: Data): Data {
  return allocStorage("float32", a.length) as Data;
}

/** c·a + b·d elementwise (d may be omitted: c·a). */
export function axpby(c: number, a: Data, b = 0, d?: Data): Data {
  const out = like(a);
  if (kernels().axpby?.(c, a, b, d ?? null, out)) return out;
  if (d) for (let i = 0; i < out.length; i++) out[i] = c * a[i] + b * d[i];
  else for (let i = 0; i < out.length; i++) out[i] = c * a[i];
  return out;
}

/**
 * One Adam step on flat arrays: m' = b1·m + (1−b1)·g, v' = b2·v + (1−b2)·g², update = −lr·(m'/c1)/(√(v'/c2) + eps)
 * with c1 = 1 − b1^t, c2 = 1 − b2^t (Kingma & Ba, bias-corrected).
 */
export function adamMoments(
  g: Data,
  m: Data,
  v: Data,
  lr: number,
  b1: number,
  b2: number,
  c1: number,
  c2: number,
  eps: number,
): { m: Data; v: Data; update: Data } {
  const m2 = like(m),
    v2 = like(v),
    u = like(g);
  if (kernels().adam?.(g, m, v, m2, v2, u, lr, b1, b2, c1, c2, eps)) return { m: m2, v: v2, update: u };
  for (let i = 0; i < u.length; i++) {
    const gi = g[i];
    m2[i] = b1 * m[i] + (1 - b1) * gi;
    v2[i] = b2 * v[i] + (1 - b2) * gi * gi;
    u[i] = (-lr * (m2[i] / c1)) / (Math.sqrt(v2[i] / c2) + eps); // the stored (rounded) moments, as checkpoints hold them
  }
  return { m: m2, v: v2, update: u };
}
