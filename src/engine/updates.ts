/**
 * Parameter-update kernels for optimizers: fused loops over flat arrays, run by the active backend when it has them
 * (wasm) and by these JS loops otherwise. Outputs are fresh storage (resident inside a step's scope); the optimizer
 * state passed in is never modified, so an optimizer stays a pure `update` function.
 */
import { allocStorage } from "./backend.js";
import { run } from "./dispatch.js";
import type { Data, Storage } from "./storage.js";

/** Updates are float32 whatever the inputs' precision: trained parameters and optimizer state are float32 (as checkpoints store them). */
function like(a: Storage): Storage {
  return allocStorage("float32", a.length);
}

/** c·a + b·d elementwise (d may be omitted: c·a). Host arrays in, host array out (host backends). */
export function axpby(c: number, a: Data, b?: number, d?: Data): Data;
/** c·a + b·d elementwise on the active backend's storage (device backends keep it on the device). */
export function axpby(c: number, a: Storage, b?: number, d?: Storage): Storage;
export function axpby(c: number, a: Storage, b = 0, d?: Storage): Storage {
  const out = like(a);
  run("axpby", "axpby", c, a, b, d ?? null, out);
  return out;
}

/** Adam's hyperparameters for one step: learning rate, β1, β2, the bias corrections c1, c2, and ε. */
type AdamHyper = [lr: number, b1: number, b2: number, c1: number, c2: number, eps: number];

/**
 * One Adam step on flat arrays: m' = b1·m + (1−b1)·g, v' = b2·v + (1−b2)·g², update = −lr·(m'/c1)/(√(v'/c2) + eps)
 * with c1 = 1 − b1^t, c2 = 1 − b2^t (Kingma & Ba, bias-corrected). Host arrays in, host arrays out (host backends).
 */
export function adamMoments(g: Data, m: Data, v: Data, ...h: AdamHyper): { m: Data; v: Data; update: Data };
/** One Adam step on the active backend's storage (device backends keep it on the device). */
export function adamMoments(
  g: Storage,
  m: Storage,
  v: Storage,
  ...h: AdamHyper
): { m: Storage; v: Storage; update: Storage };
export function adamMoments(
  g: Storage,
  m: Storage,
  v: Storage,
  ...h: AdamHyper
): { m: Storage; v: Storage; update: Storage } {
  const m2 = like(m),
    v2 = like(v),
    u = like(g);
  run("adam", "adam", g, m, v, m2, v2, u, ...h);
  return { m: m2, v: v2, update: u };
}
