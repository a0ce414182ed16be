/**
 * Optimizers as pairs of pure functions, after Optax: `init(params)` gives a state, `update(grads, state, params)`
 * gives parameter updates and the next state; `chain` composes them; `applyUpdates` adds updates to params.
 * States are plain records of storage (Float32Arrays on CPU backends) so checkpoints can store them.
 */
import { Tensor, zeros } from "../engine/tensor.js";
import type { Storage } from "../engine/storage.js";
import { adamMoments, axpby } from "../engine/updates.js";
import type { Params } from "../models/network.js";
import { onDevice, storageOf } from "../measures/readback.js";

/** Named numeric arrays of an optimizer state. */
export type Arrays = Record<string, Storage>;
/** An optimizer's state (moments, step counts), saved in checkpoints. */
export interface OptState {
  /** Named arrays (moments, ...), saved in checkpoints. */
  arrays: Arrays;
  /** Scalars (step counts, ...), saved in checkpoints. */
  scalars: Record<string, number>;
}

/** An Optax-style optimizer: a pure `init` and `update` pair; combine several with {@link chain}. */
export interface GradientTransformation {
  /** The initial state for these parameters. */
  init(params: Params): OptState;
  /** The updates to add to the parameters for these gradients, and the next state. */
  update(grads: Params, state: OptState, params: Params): { updates: Params; state: OptState };
}

function mapParams(p: Params, f: (name: string, t: Tensor) => Storage): Params {
  const out: Params = {};
  for (const [k, t] of Object.entries(p)) out[k] = new Tensor(f(k, t), t.shape);
  return out;
}

/** Zeroed state arrays (host memory on CPU backends, as checkpoints hold them; storage on a device backend). */
const zerosFor = (params: Params, prefix: string): Arrays =>
  Object.fromEntries(
    Object.entries(params).map(([k, t]) => [
      `${prefix}${k}`,
      onDevice() ? zeros([t.size]).storage : new Float32Array(t.size),
    ]),
  );

/** SGD with optional (heavy-ball) momentum: v ← μv + g; update = −lr·v. */
export function sgd(lr: number, momentum = 0): GradientTransformation {
  return {
    init: (params) => ({ arrays: momentum ? zerosFor(params, "momentum.") : {}, scalars: {} }),
    update(grads, state) {
      if (!momentum) return { updates: mapParams(grads, (_, g) => axpby(-lr, storageOf(g))), state };
      const arrays: Arrays = {};
      const updates = mapParams(grads, (k, g) => {
        const v = axpby(momentum, state.arrays[`momentum.${k}`], 1, storageOf(g));
        arrays[`momentum.${k}`] = v;
        return axpby(-lr, v);
      });
      return { updates, state: { arrays, scalars: {} } };
    },
  };
}

/** Adam (Kingma & Ba) with bias correction. */
export function adam(lr: number, b1 = 0.9, b2 = 0.999, eps = 1e-8): GradientTransformation {
  return {
    init: (params) => ({ arrays: { ...zerosFor(params, "m."), ...zerosFor(params, "v.") }, scalars: { count: 0 } }),
    update(grads, state) {
      const count = state.scalars.count + 1;
      const arrays: Arrays = {};
      const c1 = 1 - b1 ** count,
        c2 = 1 - b2 ** count;
      const updates = mapParams(grads, (k, g) => {
        const r = adamMoments(storageOf(g), state.arrays[`m.${k}`], state.arrays[`v.${k}`], lr, b1, b2, c1, c2, eps);
        arrays[`m.${k}`] = r.m;
        arrays[`v.${k}`] = r.v;
        return r.update;
      });
      return { updates, state: { arrays, scalars: { count } } };
    },
  };
}

/** Decoupled weight decay as a transform: adds λ·θ to the incoming gradient (place before the optimizer). */
export function addDecayedWeights(lambda: number): GradientTransformation {
  return {
    init: () => ({ arrays: {}, scalars: {} }),
    update(grads, state, params) {
      return {
        updates: mapParams(grads, (k, g) => axpby(1, storageOf(g), lambda, storageOf(params[k]))),
        state,
      };
    },
  };
}

/** Applies transforms in order; each one's updates are the next one's gradients. States are kept per position. */
export function chain(...ts: GradientTransformation[]): GradientTransformation {
  const split = (s: OptState, i: number): OptState => {
    const pre = `${i}/`;
    const pick = <T>(r: Record<string, T>) =>
      Object.fromEntries(
        Object.entries(r)
          .filter(([k]) => k.startsWith(pre))
          .map(([k, v]) => [k.slice(pre.length), v]),
      );
    return { arrays: pick(s.arrays), scalars: pick(s.scalars) };
  };
  const join = (states: OptState[]): OptState => {
    const out: OptState = { arrays: {}, scalars: {} };
    states.forEach((s, i) => {
      for (const [k, v] of Object.entries(s.arrays)) out.arrays[`${i}/${k}`] = v;
      for (const [k, v] of Object.entries(s.scalars)) out.scalars[`${i}/${k}`] = v;
    });
    return out;
  };
  return {
    init: (params) => join(ts.map((t) => t.init(params))),
    update(grads, state, params) {
      let g = grads;
      const states = ts.map((t, i) => {
        const r = t.update(g, split(state, i), params);
        g = r.updates;
        return r.state;
      });
      return { updates: g, state: join(states) };
    },
  };
}

/** θ + updates, as new parameter tensors (leaves, without gradient history). */
export function applyUpdates(params: Params, updates: Params): Params {
  return mapParams(params, (k, p) => axpby(1, storageOf(p), 1, storageOf(updates[k])));
}
