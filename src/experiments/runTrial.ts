/**
 * Runs one trial to completion (resuming from its own checkpoint if an earlier run was killed mid-way) and returns
 * its logged metrics. Init-only trials measure the freshly initialized model, plus the model's output along a line
 * through input space (E1's plot).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { noGrad } from "../engine/graph.js";
import { Tensor } from "../engine/tensor.js";
import { inputSize } from "../data/dataset.js";
import { forward } from "../models/network.js";
import { parseTrainConfig } from "../training/config.js";
import { engineInfo } from "../engine/backend.js";
import { evaluate, evaluateDeferred, type MetricsRecord } from "../training/evaluate.js";
import { setupRun, train, trainAsync } from "../training/trainer.js";
import { onBackend, onDevice, resolve } from "../measures/readback.js";
import { readMetrics } from "../training/metricsFile.js";
import { UserError } from "../util/errors.js";
import type { TrialPlan } from "./trials.js";

export interface TrialOutcome {
  summary: MetricsRecord & { line?: number[] };
  metrics: MetricsRecord[];
  seconds: number;
}

/** Runs a trial synchronously: CPU backends (see {@link runTrialAsync} for any backend). */
export function runTrial(plan: TrialPlan, runDir: string): TrialOutcome {
  const t0 = performance.now();
  checkEngine(plan);
  if (plan.kind === "init") {
    // Steps are irrelevant at initialization; the schema still wants a value.
    const cfg = parseTrainConfig({ ...plan.config, steps: 1 });
    const run = setupRun(cfg);
    const rec = { step: 0, ...evaluate(run.net, run.initial.params, run.sets, cfg, 0) };
    const y = lineOutputs(run);
    return initOutcome(rec, firstLogits(y.data, y.shape[1]), t0);
  }
  const resume = existsSync(join(runDir, "config.json"));
  train(resume ? null : parseTrainConfig(plan.config), runDir);
  return trainedOutcome(runDir, t0);
}

/**
 * {@link runTrial} for any backend, device ones included: the same trial, with every read point awaited (decision
 * 0007). On a CPU backend it is runTrial itself.
 */
export async function runTrialAsync(plan: TrialPlan, runDir: string): Promise<TrialOutcome> {
  if (!onDevice()) return runTrial(plan, runDir);
  const t0 = performance.now();
  checkEngine(plan);
  if (plan.kind === "init") {
    const cfg = parseTrainConfig({ ...plan.config, steps: 1 });
    const run = setupRun(cfg);
    const rec = { step: 0, ...(await resolve(evaluateDeferred(run.net, run.initial.params, run.sets, cfg, 0))) };
    const y = lineOutputs(run);
    return initOutcome(rec, firstLogits(await y.read(), y.shape[1]), t0);
  }
  const resume = existsSync(join(runDir, "config.json"));
  await trainAsync(resume ? null : parseTrainConfig(plan.config), runDir);
  return trainedOutcome(runDir, t0);
}

function checkEngine(plan: TrialPlan): void {
  const here = engineInfo();
  if (plan.engine && (plan.engine.backend !== here.backend || plan.engine.variant !== here.variant)) {
    throw new UserError(
      `trial ${plan.id} was planned for the ${plan.engine.backend} backend with ${plan.engine.variant} kernels but this worker runs ${here.backend} (${here.variant}); ` +
        `start every worker of a sweep with the same --backend on the same runtime, so one table never mixes kernels`,
    );
  }
}

function initOutcome(rec: MetricsRecord, line: number[], t0: number): TrialOutcome {
  return { summary: { ...rec, line }, metrics: [rec], seconds: (performance.now() - t0) / 1000 };
}

function trainedOutcome(runDir: string, t0: number): TrialOutcome {
  const { records: metrics } = readMetrics(join(runDir, "metrics.jsonl"));
  if (metrics.length === 0) throw new UserError(`${join(runDir, "metrics.jsonl")}: no metrics records`);
  return { summary: metrics[metrics.length - 1], metrics, seconds: (performance.now() - t0) / 1000 };
}

const LINE_POINTS = 64;

/** The model's outputs at 64 points on the segment between the first two test inputs (E1's plot), on the backend. */
function lineOutputs(run: ReturnType<typeof setupRun>): Tensor {
  const ds = run.sets.testEval;
  const d = inputSize(ds),
    points = LINE_POINTS;
  const x = new Float32Array(points * d);
  for (let p = 0; p < points; p++) {
    const t = p / (points - 1);
    for (let j = 0; j < d; j++) x[p * d + j] = (1 - t) * ds.x[j] + t * ds.x[d + j];
  }
  return noGrad(() => forward(run.net, run.initial.params, onBackend(new Tensor(x, [points, d]))));
}

/** First logit of each of the line's points. */
function firstLogits(y: ArrayLike<number>, width: number): number[] {
  return Array.from({ length: LINE_POINTS }, (_, p) => y[p * width]);
}
