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
import { evaluate, type MetricsRecord } from "../training/evaluate.js";
import { setupRun, train } from "../training/trainer.js";
import { readMetrics } from "../training/metricsFile.js";
import { UserError } from "../util/errors.js";
import type { TrialPlan } from "./trials.js";

export interface TrialOutcome {
  summary: MetricsRecord & { line?: number[] };
  metrics: MetricsRecord[];
  seconds: number;
}

export function runTrial(plan: TrialPlan, runDir: string): TrialOutcome {
  const t0 = performance.now();
  const here = engineInfo();
  if (plan.engine && (plan.engine.backend !== here.backend || plan.engine.variant !== here.variant)) {
    throw new UserError(
      `trial ${plan.id} was planned for the ${plan.engine.backend} backend with ${plan.engine.variant} kernels but this worker runs ${here.backend} (${here.variant}); ` +
        `start every worker of a sweep with the same --backend on the same runtime, so one table never mixes kernels`,
    );
  }
  if (plan.kind === "init") {
    // Steps are irrelevant at initialization; the schema still wants a value.
    const cfg = parseTrainConfig({ ...plan.config, steps: 1 });
    const run = setupRun(cfg);
    const rec = { step: 0, ...evaluate(run.net, run.initial.params, run.sets, cfg, 0) };
    return {
      summary: { ...rec, line: outputAlongLine(run) },
      metrics: [rec],
      seconds: (performance.now() - t0) / 1000,
    };
  }
  const resume = existsSync(join(runDir, "config.json"));
  train(resume ? null : parseTrainConfig(plan.config), runDir);
  const { records: metrics } = readMetrics(join(runDir, "metrics.jsonl"));
  if (metrics.length === 0) throw new UserError(`${join(runDir, "metrics.jsonl")}: no metrics records`);
  return { summary: metrics[metrics.length - 1], metrics, seconds: (performance.now() - t0) / 1000 };
}

/** First logit along the segment between the first two test inputs, at 64 points. */
function outputAlongLine(run: ReturnType<typeof setupRun>): number[] {
  const ds = run.sets.testEval;
  const d = inputSize(ds),
    points = 64;
  const x = new Float32Array(points * d);
  for (let p = 0; p < points; p++) {
    const t = p / (points - 1);
    for (let j = 0; j < d; j++) x[p * d + j] = (1 - t) * ds.x[j] + t * ds.x[d + j];
  }
  const y = noGrad(() => forward(run.net, run.initial.params, new Tensor(x, [points, d])));
  return Array.from({ length: points }, (_, p) => y.data[p * y.shape[1]]);
}
