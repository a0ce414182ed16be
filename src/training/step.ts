/**
 * One optimization step: batch transforms, data loss, penalties, gradient, optimizer update, and (graph models)
 * BatchNorm's running statistics.
 *
 * Graph models train as PyTorch's `model.train()`: every BatchNorm normalizes with the statistics of the batch (the
 * gradient flows through the batch mean and variance), and after the step its buffers are updated as PyTorch does:
 * running_mean ← (1 − m)·running_mean + m·mean, running_var ← (1 − m)·running_var + m·var·n/(n − 1),
 * num_batches_tracked += 1 (n values per channel). Buffers are never differentiated, penalized or seen by the
 * optimizer. Evaluation (evaluate.ts, `gcx measure`) keeps inference mode: the running statistics.
 */
import * as op from "../engine/ops.js";
import { grad } from "../engine/autograd.js";
import { scope } from "../engine/backend.js";
import { Tensor } from "../engine/tensor.js";
import { unbiasedVariance } from "../engine/elementwise.js";
import { forward, type Network, type Params } from "../models/network.js";
import type { GraphRunOptions } from "../models/graph.js";
import type { Batch, RegState, Regularizer } from "../regularizers/regularizer.js";
import { UserError } from "../util/errors.js";
import { Rng } from "../util/rng.js";
import { meanSquaredError, softmaxCrossEntropy } from "./losses.js";
import { applyUpdates, type GradientTransformation, type OptState } from "./optimizers.js";

/** The data loss; `run` selects the graph models' mode (default: inference, running statistics). */
export function dataLoss(
  net: Network,
  params: Params,
  batch: Batch,
  run?: GraphRunOptions,
): { loss: Tensor; logits: Tensor } {
  const logits = forward(net, params, batch.x, undefined, run);
  const loss = batch.labels ? softmaxCrossEntropy(logits, batch.labels) : meanSquaredError(logits, batch.targets!);
  return { loss, logits };
}

/** Names of the parameters that are trained: all but buffers (BatchNorm's running statistics), in `params` order. */
export function trainableNames(net: Network, params: Params): string[] {
  const buffers = new Set(net.params.filter((p) => p.kind === "buffer").map((p) => p.name));
  return Object.keys(params).filter((k) => !buffers.has(k));
}

/** One BatchNorm's statistics of a training-mode forward pass: mean and biased variance [C], values per channel. */
export interface BatchStats {
  mean: Float64Array;
  variance: Float64Array;
  count: number;
}

/** The run options of a training-mode data loss, collecting each BatchNorm's batch statistics into `stats`. */
export function trainingRun(stats: Map<string, BatchStats>, dropoutRng?: Rng): GraphRunOptions {
  return {
    training: true,
    dropoutRng,
    onBatchStats(node, mean, variance, count) {
      if (count < 2) {
        throw new UserError(
          `BatchNorm "${node}" sees ${count} value per channel in training mode; it needs at least 2 (use a larger --batch-size)`,
        );
      }
      stats.set(node, {
        mean: Float64Array.from(mean.data),
        variance: Float64Array.from(unbiasedVariance(variance, count).data),
        count,
      });
    },
  };
}

/**
 * The parameters with every BatchNorm's buffers advanced by one training step (PyTorch's update; `stats` holds the
 * batch mean and the unbiased batch variance). Other entries are returned as they are. Arithmetic is float64,
 * stored in the buffers' own precision.
 */
export function updateBatchNormBuffers(net: Network, params: Params, stats: ReadonlyMap<string, BatchStats>): Params {
  if (!net.graph || stats.size === 0) return params;
  const out: Params = { ...params };
  for (const node of net.graph.nodes) {
    const n = node.spec;
    if (n.op !== "batchnorm") continue;
    const s = stats.get(n.name);
    if (!s) throw new Error(`BatchNorm ${n.name}: no batch statistics were recorded`);
    const m = n.momentum;
    const blend = (name: string, batch: Float64Array) => {
      const old = params[name];
      const next = new (old.data.constructor as Float32ArrayConstructor | Float64ArrayConstructor)(old.size);
      for (let i = 0; i < next.length; i++) next[i] = (1 - m) * old.data[i] + m * batch[i];
      out[name] = new Tensor(next, old.shape);
    };
    blend(`${n.name}.running_mean`, s.mean);
    blend(`${n.name}.running_var`, s.variance);
    const tracked = params[`${n.name}.num_batches_tracked`];
    const t = new (tracked.data.constructor as Float32ArrayConstructor | Float64ArrayConstructor)(tracked.size);
    for (let i = 0; i < t.length; i++) t[i] = tracked.data[i] + 1;
    out[`${n.name}.num_batches_tracked`] = new Tensor(t, tracked.shape);
  }
  return out;
}

export interface StepState {
  params: Params;
  opt: OptState;
  regs: RegState[];
}

export interface StepResult {
  state: StepState;
  loss: number;
  penalty: number;
}

export interface StepGradients {
  /** Data loss on the (transformed) batch, in training mode for graph models. */
  loss: Tensor;
  penalty: number;
  /** ∂(loss + penalties)/∂θ for the trainable parameters, in `params` order. */
  grads: Params;
  regs: RegState[];
  /** Batch statistics of each BatchNorm (graph models). */
  stats: Map<string, BatchStats>;
}

/** Loss, penalties and their gradient for one batch (already transformed by the noise regularizers). */
export function stepGradients(
  net: Network,
  params: Params,
  regStates: readonly RegState[],
  batch: Batch,
  regs: readonly Regularizer[],
  rng: Rng,
): StepGradients {
  const names = trainableNames(net, params);
  const vars: Params = { ...params };
  for (const k of names) vars[k] = params[k].variable();
  const stats = new Map<string, BatchStats>();
  // Chains have no mode; graph models run BatchNorm on the batch's statistics.
  // Dropout masks come from their own stream of this step's randomness, so the penalties' draws are unchanged.
  const run = net.graph ? trainingRun(stats, Rng.derive(rng.nextUint32(), 0xd209)) : undefined;
  const { loss } = dataLoss(net, vars, batch, run);
  let total = loss;
  let penalty = 0;
  const next = regs.map((r, i) => {
    if (!r.penalty) return regStates[i];
    const p = r.penalty({ net, params: vars, batch, loss, rng, run: run && { training: true } }, regStates[i]);
    penalty += p.value.item();
    total = op.add(total, p.value);
    return p.state;
  });
  const g = grad(
    total,
    names.map((k) => vars[k]),
  );
  return { loss, penalty, grads: Object.fromEntries(names.map((k, i) => [k, g[i]])), regs: next, stats };
}

/** rng supplies this step's randomness (noise, probes); derive it from (seed, step) for reproducible resumes. */
export function trainStep(
  net: Network,
  state: StepState,
  batch: Batch,
  regs: readonly Regularizer[],
  optimizer: GradientTransformation,
  rng: Rng,
): StepResult {
  // One storage scope per step: everything the step computes is reclaimed when it returns (its result is copied out).
  return scope(() => trainStepInScope(net, state, batch, regs, optimizer, rng));
}

function trainStepInScope(
  net: Network,
  state: StepState,
  batch: Batch,
  regs: readonly Regularizer[],
  optimizer: GradientTransformation,
  rng: Rng,
): StepResult {
  let b = batch;
  for (const r of regs) if (r.transformBatch) b = r.transformBatch(b, rng);
  const { loss, penalty, grads, regs: regStates, stats } = stepGradients(net, state.params, state.regs, b, regs, rng);
  const trainable: Params = Object.fromEntries(Object.keys(grads).map((k) => [k, state.params[k]]));
  const { updates, state: opt } = optimizer.update(grads, state.opt, trainable);
  const updated = applyUpdates(trainable, updates);
  // The optimizer sees only trainable parameters; the (zero) state it was given for buffers is carried unchanged,
  // so a checkpoint holds the same arrays as a fresh run's.
  const arrays = { ...opt.arrays };
  for (const [k, v] of Object.entries(state.opt.arrays)) if (!(k in arrays)) arrays[k] = v;
  const merged: Params = {};
  for (const k of Object.keys(state.params)) merged[k] = updated[k] ?? state.params[k];
  const params = updateBatchNormBuffers(net, merged, stats);
  return {
    state: { params, opt: { arrays, scalars: { ...state.opt.scalars, ...opt.scalars } }, regs: regStates },
    loss: loss.item(),
    penalty,
  };
}
