/**
 * Noise regularizers (T5), which act on the batch rather than the loss:
 * `input-noise` σ adds fresh N(0, σ²) noise to every input value each step;
 * `label-noise` p replaces each label, with probability p, by a uniformly random class each step
 * (for regression it adds N(0, p²) noise to the targets).
 */
import { Tensor } from "../engine/tensor.js";
import type { Regularizer } from "./regularizer.js";

/** `input-noise`: fresh Gaussian noise N(0, σ²) added to the inputs of each batch. */
export function inputNoise(sigma: number): Regularizer {
  return {
    name: "input-noise",
    strength: sigma,
    init: () => ({}),
    transformBatch(batch, rng) {
      const src = batch.x.data,
        x = new Float32Array(src.length);
      for (let i = 0; i < x.length; i++) x[i] = src[i] + sigma * rng.normal();
      return { ...batch, x: new Tensor(x, batch.x.shape) };
    },
  };
}

/** `label-noise`: each step, each label replaced by a random class with probability p. */
export function labelNoise(p: number): Regularizer {
  return {
    name: "label-noise",
    strength: p,
    init: () => ({}),
    transformBatch(batch, rng) {
      if (batch.labels) {
        const labels = Int32Array.from(batch.labels, (c) => (rng.uniform() < p ? rng.int(batch.numOutputs) : c));
        return { ...batch, labels };
      }
      const targets = Float32Array.from(batch.targets!, (t) => t + p * rng.normal());
      return { ...batch, targets };
    },
  };
}
