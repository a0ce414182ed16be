/**
 * The shared shape of every regularizer: like an Optax transform, a pair of pure functions. `init` gives a state
 * (e.g. persistent power-iteration vectors); then, each step, `transformBatch` may change the batch (noise
 * regularizers) and `penalty` may add a differentiable term to the loss (norm, flatness and GC penalties).
 */
import type { Tensor } from "../engine/tensor.js";
import type { Storage } from "../engine/storage.js";
import type { Network, Params } from "../models/network.js";
import type { GraphRunOptions } from "../models/graph.js";
import type { Rng } from "../util/rng.js";

/** One training batch as the regularizers see it. */
export interface Batch {
  /** Inputs [b, d]. */
  x: Tensor;
  /** Class labels (classification) or targets [b·k] (regression). */
  labels?: Int32Array;
  targets?: Float32Array;
  /** Number of classes or outputs. */
  numOutputs: number;
}

/** A regularizer's state between steps (saved in checkpoints): Float64Arrays on CPU backends, device storage on a device. */
export type RegState = Record<string, Storage>;

/** What a penalty may use to build its term. */
export interface PenaltyContext {
  net: Network;
  /** Parameters being differentiated (leaves). */
  params: Params;
  batch: Batch;
  /** The data loss on this batch, already recorded (a penalty on its gradient differentiates it again). */
  loss: Tensor;
  rng: Rng;
  /**
   * The mode the data loss ran in (graph models in training: `{ training: true }`, BatchNorm on batch statistics);
   * undefined for chains and inference. A penalty that runs the network again passes it on.
   */
  run?: GraphRunOptions;
}

/** The parameters a penalty differentiates: all but buffers (BatchNorm running statistics), in `params` order. */
export function trainableTensors(net: Network, params: Params): Tensor[] {
  const buffers = new Set(net.params.filter((p) => p.kind === "buffer").map((p) => p.name));
  return Object.entries(params)
    .filter(([k]) => !buffers.has(k))
    .map(([, v]) => v);
}

/** A regularizer: `init` once, then each step `transformBatch` (noise) and/or `penalty` (a term added to the loss). */
export interface Regularizer {
  /** Flag/config name, e.g. "l2". */
  readonly name: string;
  /** Strength as given (λ, α, σ or p), for logs. */
  readonly strength: number;
  /** The initial state for a network and its starting parameters. */
  init(net: Network, params: Params): RegState;
  /** A changed batch for this step (noise regularizers); `rng` is the step's own randomness. */
  transformBatch?(batch: Batch, rng: Rng): Batch;
  /** A differentiable term added to the loss, and the next state. */
  penalty?(ctx: PenaltyContext, state: RegState): { value: Tensor; state: RegState };
}
