/** One optimization step: batch transforms, data loss, penalties, gradient, optimizer update. */
import * as op from "../engine/ops.js";
import { grad } from "../engine/autograd.js";
import type { Tensor } from "../engine/tensor.js";
import { forward, type Network, type Params } from "../models/network.js";
import type { Batch, RegState, Regularizer } from "../regularizers/regularizer.js";
import { Rng } from "../util/rng.js";
import { meanSquaredError, softmaxCrossEntropy } from "./losses.js";
import { applyUpdates, type GradientTransformation, type OptState } from "./optimizers.js";

export function dataLoss(net: Network, params: Params, batch: Batch): { loss: Tensor; logits: Tensor } {
  const logits = forward(net, params, batch.x);
  const loss = batch.labels ? softmaxCrossEntropy(logits, batch.labels) : meanSquaredError(logits, batch.targets!);
  return { loss, logits };
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

/** rng supplies this step's randomness (noise, probes); derive it from (seed, step) for reproducible resumes. */
export function trainStep(
  net: Network,
  state: StepState,
  batch: Batch,
  regs: readonly Regularizer[],
  optimizer: GradientTransformation,
  rng: Rng,
): StepResult {
  let b = batch;
  for (const r of regs) if (r.transformBatch) b = r.transformBatch(b, rng);
  const vars: Params = Object.fromEntries(Object.entries(state.params).map(([k, v]) => [k, v.variable()]));
  const { loss } = dataLoss(net, vars, b);
  let total = loss;
  let penalty = 0;
  const regStates = regs.map((r, i) => {
    if (!r.penalty) return state.regs[i];
    const p = r.penalty({ net, params: vars, batch: b, loss, rng }, state.regs[i]);
    penalty += p.value.item();
    total = op.add(total, p.value);
    return p.state;
  });
  const names = Object.keys(vars);
  const grads = grad(total, names.map((k) => vars[k]));
  const gradParams: Params = Object.fromEntries(names.map((k, i) => [k, grads[i]]));
  const { updates, state: opt } = optimizer.update(gradParams, state.opt, state.params);
  return { state: { params: applyUpdates(state.params, updates), opt, regs: regStates }, loss: loss.item(), penalty };
}
