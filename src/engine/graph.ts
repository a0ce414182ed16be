/** Recording of ops for reverse-mode differentiation, and the switch that turns recording off. */
import { Tensor } from "./tensor.js";
import type { Storage } from "./storage.js";

let recording = true;

/** Runs fn with op recording off: results carry no graph (inference, optimizer updates, first-order backward). */
export function noGrad<T>(fn: () => T): T {
  const prev = recording;
  recording = false;
  try {
    return fn();
  } finally {
    recording = prev;
  }
}

/** Runs fn with op recording on (used for backward passes whose result must itself be differentiable). */
export function withGrad<T>(fn: () => T): T {
  const prev = recording;
  recording = true;
  try {
    return fn();
  } finally {
    recording = prev;
  }
}

export function isRecording(): boolean {
  return recording;
}

/**
 * Wraps freshly computed values as the output of an op. When recording and some input requires a gradient,
 * the output remembers its inputs and backward rule.
 */
export function record(
  data: Storage,
  shape: readonly number[],
  inputs: readonly Tensor[],
  backward: (g: Tensor) => readonly (Tensor | null)[],
): Tensor {
  if (recording && inputs.some((t) => t.requiresGrad)) {
    return new Tensor(data, shape, true, { inputs, backward });
  }
  return new Tensor(data, shape);
}
