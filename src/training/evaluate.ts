/** What a training run logs at each log step: losses, accuracies, GC on fixed subsets, companion measures. */
import { noGrad } from "../engine/graph.js";
import { scope } from "../engine/backend.js";
import type { Tensor } from "../engine/tensor.js";
import type { Dataset } from "../data/dataset.js";
import { exactGCDeferred } from "../measures/gc.js";
import { weightNormsDeferred } from "../measures/norms.js";
import {
  hessianTopEigenvalueDeferred,
  hessianTraceDeferred,
  lossGradSqDeferred,
  outputGradientsDeferred,
} from "../measures/companions.js";
import { combine, mapDeferred, onBackend, resolveNow, type Deferred } from "../measures/readback.js";
import type { Network, Params } from "../models/network.js";
import { accuracyOf } from "./losses.js";
import { dataLoss, trainableNames } from "./step.js";
import { batchOf } from "./schedule.js";
import type { MeasureName, TrainConfig } from "./config.js";

function lossAndAccuracy(net: Network, params: Params, ds: Dataset): Deferred<{ loss: number; acc: number | null }> {
  const b = batchOf(ds);
  const { loss, logits } = scope(() =>
    noGrad(() => {
      const r = dataLoss(net, params, { ...b, x: onBackend(b.x) });
      return { loss: r.loss, logits: r.logits };
    }),
  );
  return {
    tensors: [loss, logits],
    finish: ([l, z]) => ({ loss: l[0], acc: b.labels ? accuracyOf(z, logits.shape, b.labels) : null }),
  };
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
  return resolveNow(evaluateDeferred(net, params, sets, cfg, step));
}

/**
 * Everything a log point measures, computed on the backend and read back once (`resolveNow` on CPU backends,
 * `await resolve` on a device backend).
 */
export function evaluateDeferred(
  net: Network,
  params: Params,
  sets: EvalSets,
  cfg: TrainConfig,
  step: number,
): Deferred<MetricsRecord> {
  const parts = combine([
    lossAndAccuracy(net, params, sets.trainEval),
    lossAndAccuracy(net, params, sets.testEval),
    exactGCDeferred(net, params, sets.trainGC),
    exactGCDeferred(net, params, sets.testGC),
    scope(() => companionMeasuresDeferred(net, params, sets.trainGC, cfg.measures, cfg.seed + step)),
  ] as const);
  return mapDeferred(parts, ([train, test, gcTrain, gcTest, companions]) => ({
    train_loss: train.loss,
    train_acc: train.acc,
    test_loss: test.loss,
    test_acc: test.acc,
    gc_train: gcTrain.gc,
    gc_test: gcTest.gc,
    ...companions,
  }));
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
  return resolveNow(companionMeasuresDeferred(net, params, ds, which, seed));
}

/** {@link companionMeasures} computed on the backend, read back once. */
export function companionMeasuresDeferred(
  net: Network,
  params: Params,
  ds: Dataset,
  which: readonly MeasureName[],
  seed: number,
): Deferred<MetricsRecord> {
  const parts: Deferred<MetricsRecord>[] = [];
  const m = new Set(which);
  const b = batchOf(ds);
  const batch = { ...b, x: onBackend(b.x) };
  if (m.has("norms")) parts.push(mapDeferred(weightNormsDeferred(net, params), (r) => ({ ...r })));
  if (m.has("output-grad")) {
    parts.push(
      mapDeferred(outputGradientsDeferred(net, params, batch.x), (og) => ({
        param_grad_sq: og?.param_grad_sq ?? null,
        t3_bound: og?.t3_bound ?? null,
      })),
    );
  }
  // Gradient and Hessian in the trained parameters only: BatchNorm's running statistics (buffers) stay fixed.
  const trainable: Params = Object.fromEntries(trainableNames(net, params).map((k) => [k, params[k]]));
  const lossOf = (p: Params): Tensor => dataLoss(net, { ...params, ...p }, batch).loss;
  if (m.has("loss-grad")) parts.push(mapDeferred(lossGradSqDeferred(trainable, lossOf), (v) => ({ loss_grad_sq: v })));
  if (m.has("hessian") || m.has("hessian-trace")) {
    parts.push(
      mapDeferred(hessianTraceDeferred(trainable, lossOf, 8, seed), (h) => ({
        hessian_trace: h.trace,
        hessian_trace_stderr: h.stderr,
      })),
    );
  }
  if (m.has("hessian"))
    parts.push(mapDeferred(hessianTopEigenvalueDeferred(trainable, lossOf, 20, seed), (v) => ({ hessian_top_eig: v })));
  return mapDeferred(combine(parts), (recs) => Object.assign({}, ...recs) as MetricsRecord);
}
