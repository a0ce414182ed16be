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
import { keptScope, residentInScope, scope } from "../engine/backend.js";
import { Tensor, cast, scalar } from "../engine/tensor.js";
import { noGrad } from "../engine/graph.js";
import { addB, mulB, unbiasedVariance } from "../engine/elementwise.js";
import { bookkeepingDType, readNow, sumScalars } from "../measures/readback.js";
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

/**
 * One BatchNorm's statistics of a training-mode forward pass: mean and unbiased variance [C] (tensors on the
 * backend, never read back), values per channel.
 */
export interface BatchStats {
  mean: Tensor;
  variance: Tensor;
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
      stats.set(node, { mean: mean.detach(), variance: unbiasedVariance(variance, count), count });
    },
  };
}

/**
 * The parameters with every BatchNorm's buffers advanced by one training step (PyTorch's update; `stats` holds the
 * batch mean and the unbiased batch variance). Other entries are returned as they are. Ops only (no read-back):
 * the blend (1 − m)·old + m·batch runs in the bookkeeping precision (float64 on host backends, exactly the float64
 * arithmetic this replaced) and is stored in the buffers' own precision.
 */
export function updateBatchNormBuffers(net: Network, params: Params, stats: ReadonlyMap<string, BatchStats>): Params {
  if (!net.graph || stats.size === 0) return params;
  const out: Params = { ...params };
  const dtype = bookkeepingDType();
  noGrad(() => {
    for (const node of net.graph!.nodes) {
      const n = node.spec;
      if (n.op !== "batchnorm") continue;
      const s = stats.get(n.name);
      if (!s) throw new Error(`BatchNorm ${n.name}: no batch statistics were recorded`);
      const m = n.momentum;
      const keep = scalar(1 - m, dtype),
        take = scalar(m, dtype);
      const blend = (name: string, batch: Tensor) => {
        const old = params[name];
        const next = addB(mulB(cast(old, dtype), keep), mulB(cast(batch, dtype), take));
        out[name] = cast(next, old.dtype);
      };
      blend(`${n.name}.running_mean`, s.mean);
      blend(`${n.name}.running_var`, s.variance);
      const tracked = params[`${n.name}.num_batches_tracked`];
      out[`${n.name}.num_batches_tracked`] = op.affine(tracked, 1, 1);
    }
  });
  return out;
}

export interface StepState {
  params: Params;
  opt: OptState;
  regs: RegState[];
}

/**
 * What a step leaves: the next state and its loss and penalties as tensors on the backend (nothing is read back in
 * a step). `loss` and `penalty` read them synchronously when asked (CPU backends; they throw on a device backend,
 * where the trainer reads `lossTensor`/`penaltyTensors` asynchronously at log points).
 */
export interface StepResult {
  state: StepState;
  /** The data loss, a scalar tensor. */
  lossTensor: Tensor;
  /** Each penalty's value, in regularizer order (scalar tensors). */
  penaltyTensors: Tensor[];
  /** The data loss, read now. */
  readonly loss: number;
  /** The sum of the penalties (float64, in regularizer order), read now. */
  readonly penalty: number;
  /**
   * Frees the resident storage of this result (its state and tensors) when the step ran with `keep`; afterwards
   * nothing may use them. Does nothing otherwise.
   */
  readonly release: () => void;
}

export interface StepGradients {
  /** Data loss on the (transformed) batch, in training mode for graph models. */
  loss: Tensor;
  /** Each penalty's value, in regularizer order (scalar tensors, not read back). */
  penalties: Tensor[];
  /** The sum of the penalties, read now (CPU backends). */
  readonly penalty: number;
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
  const penalties: Tensor[] = [];
  const next = regs.map((r, i) => {
    if (!r.penalty) return regStates[i];
    const p = r.penalty({ net, params: vars, batch, loss, rng, run: run && { training: true } }, regStates[i]);
    penalties.push(p.value);
    total = op.add(total, p.value);
    return p.state;
  });
  const g = grad(
    total,
    names.map((k) => vars[k]),
  );
  return {
    loss,
    penalties,
    get penalty() {
      return sumScalars(penalties.map(readNow));
    },
    grads: Object.fromEntries(names.map((k, i) => [k, g[i]])),
    regs: next,
    stats,
  };
}

/**
 * rng supplies this step's randomness (noise, probes); derive it from (seed, step) for reproducible resumes.
 * `keep`: the result stays resident in the backend's memory (wasm) until `result.release()`, instead of being copied
 * to the JS heap; a loop that passes each state to the next step and then releases the previous result copies
 * nothing between steps (the trainer does this).
 */
export function trainStep(
  net: Network,
  state: StepState,
  batch: Batch,
  regs: readonly Regularizer[],
  optimizer: GradientTransformation,
  rng: Rng,
  options: { keep?: boolean } = {},
): StepResult {
  // One storage scope per step: everything the step computes is reclaimed when it returns; its result is copied
  // out, or with `keep` stays resident until `release()` (training loops: the next step uses it in place).
  const run = () => trainStepInScope(net, state, batch, regs, optimizer, rng);
  const kept = options.keep ? keptScope(run) : { value: scope(run), drop: () => {} };
  const r = kept.value;
  return {
    ...r,
    release: kept.drop,
    get loss() {
      return readNow(r.lossTensor)[0];
    },
    get penalty() {
      return sumScalars(r.penaltyTensors.map(readNow));
    },
  };
}

function trainStepInScope(
  net: Network,
  state: StepState,
  batch: Batch,
  regs: readonly Regularizer[],
  optimizer: GradientTransformation,
  rng: Rng,
): Omit<StepResult, "loss" | "penalty" | "release"> {
  let b = batch;
  for (const r of regs) if (r.transformBatch) b = r.transformBatch(b, rng);
  // The batch is host data (noise regularizers change it on the host): uploaded once, here, on a device backend,
  // and copied once into the step's wasm memory (the forward pass and the first layer's gradient both read it).
  b = { ...b, x: residentInScope(b.x) };
  const { loss, penalties, grads, regs: regStates, stats } = stepGradients(net, state.params, state.regs, b, regs, rng);
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
    lossTensor: loss.detach(),
    penaltyTensors: penalties.map((p) => p.detach()),
  };
}
