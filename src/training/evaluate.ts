/** What a training run logs at each log step: losses, accuracies, GC on fixed subsets, companion measures. */
import { noGrad } from "../engine/graph.js";
import { scope } from "../engine/backend.js";
import type { Dataset } from "../data/dataset.js";
import { exactGC } from "../measures/gc.js";
import { weightNorms } from "../measures/norms.js";
import { hessianTopEigenvalue, hessianTrace, lossGradSq, outputGradients } from "../measures/companions.js";
import type { Network, Params } from "../models/network.js";
import { accuracy } from "./losses.js";
import { dataLoss, trainableNames } from "./step.js";
import { batchOf } from "./schedule.js";
import type { MeasureName, TrainConfig } from "./config.js";

function lossAndAccuracy(net: Network, params: Params, ds: Dataset): { loss: number; acc: number | null } {
  return scope(() =>
    noGrad(() => {
      const b = batchOf(ds);
      const { loss, logits } = dataLoss(net, params, b);
      return { loss: loss.item(), acc: b.labels ? accuracy(logits, b.labels) : null };
    }),
  );
}

export interface EvalSets {
  trainEval: Dataset;
  testEval: Dataset;
  trainGC: Dataset;
  testGC: Dataset;
}

/** One line of `metrics.jsonl`: `step`, losses, accuracies, `gc_train`/`gc_test` and the companion measures. */
export type MetricsRecord = Record<string, number | number[] | null>;

export function evaluate(net: Network, params: Params, sets: EvalSets, cfg: TrainConfig, step: number): MetricsRecord {
  const train = lossAndAccuracy(net, params, sets.trainEval);
  const test = lossAndAccuracy(net, params, sets.testEval);
  const rec: MetricsRecord = {
    train_loss: train.loss,
    train_acc: train.acc,
    test_loss: test.loss,
    test_acc: test.acc,
    gc_train: exactGC(net, params, sets.trainGC).gc,
    gc_test: exactGC(net, params, sets.testGC).gc,
  };
  return { ...rec, ...scope(() => companionMeasures(net, params, sets.trainGC, cfg.measures, cfg.seed + step)) };
}

/**
 * The companion measures of PAPER.md T1-T3 that `which` asks for, on the examples of `ds` (per-example and
 * Hessian work, so callers pass a small subset). Shared by training logs and `gcx measure --all`.
 */
export function companionMeasures(
  net: Network,
  params: Params,
  ds: Dataset,
  which: readonly MeasureName[],
  seed: number,
): MetricsRecord {
  const rec: MetricsRecord = {};
  const m = new Set(which);
  const batch = batchOf(ds);
  if (m.has("norms")) Object.assign(rec, weightNorms(net, params));
  if (m.has("output-grad")) {
    const og = outputGradients(net, params, batch.x);
    rec.param_grad_sq = og?.param_grad_sq ?? null;
    rec.t3_bound = og?.t3_bound ?? null;
  }
  // Gradient and Hessian in the trained parameters only: BatchNorm's running statistics (buffers) stay fixed.
  const trainable: Params = Object.fromEntries(trainableNames(net, params).map((k) => [k, params[k]]));
  const lossOf = (p: Params) => dataLoss(net, { ...params, ...p }, batch).loss;
  if (m.has("loss-grad")) rec.loss_grad_sq = lossGradSq(trainable, lossOf);
  if (m.has("hessian") || m.has("hessian-trace")) {
    const h = hessianTrace(trainable, lossOf, 8, seed);
    rec.hessian_trace = h.trace;
    rec.hessian_trace_stderr = h.stderr;
  }
  if (m.has("hessian")) rec.hessian_top_eig = hessianTopEigenvalue(trainable, lossOf, 20, seed);
  return rec;
}
