/**
 * A training run: set-up from a validated config, the step loop, periodic evaluation to metrics.jsonl and
 * checkpoints. Batches and per-step randomness are derived from (seed, epoch) and (seed, step), so a resumed run
 * computes exactly what an uninterrupted one would.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Dataset } from "../data/dataset.js";
import { loadDataset } from "../data/registry.js";
import { head, subset } from "../data/select.js";
import { checkCompatible } from "../measures/gc.js";
import { compileNetwork, type Network } from "../models/network.js";
import { initParams } from "../models/init.js";
import { saveModel, writeFileAtomic } from "../models/io.js";
import { resolveModel } from "../models/resolve.js";
import { checkTrainingRun } from "../models/budget.js";
import { parseModelSpec, type ModelSpec } from "../models/spec.js";
import { buildRegularizers, type Regularizer } from "../regularizers/index.js";
import { UserError } from "../util/errors.js";
import { Rng } from "../util/rng.js";
import { loadCheckpoint, saveCheckpoint } from "./checkpoint.js";
import { parseTrainConfig, stepsPerEpoch, totalSteps, type TrainConfig } from "./config.js";
import { evaluate, type EvalSets, type MetricsRecord } from "./evaluate.js";
import { corruptLabels } from "./labelCorruption.js";
import { adam, sgd, type GradientTransformation } from "./optimizers.js";
import { trainStep, type StepState } from "./step.js";
import { batchForStep, newEpochCache, stepRng } from "./schedule.js";

export interface TrainHooks {
  onStep?(step: number, total: number, loss: number): void;
  onLog?(record: MetricsRecord): void;
  /** Stop after this many steps of this invocation (tests use it to simulate a crash). */
  stopAfter?: number;
}

export interface RunSetup {
  cfg: TrainConfig;
  spec: ModelSpec;
  net: Network;
  train: Dataset;
  sets: EvalSets;
  regs: Regularizer[];
  optimizer: GradientTransformation;
  total: number;
}

export function setupRun(cfg: TrainConfig): RunSetup & { initial: StepState } {
  const dataOpts = { seed: cfg.seed, size: cfg.size, noise: cfg.noise, classes: cfg.classes };
  const train = corruptLabels(loadDataset(cfg.data, { ...dataOpts, split: "train", limit: cfg.limit }), cfg.labelCorruption, cfg.seed);
  const test = loadDataset(cfg.data, { ...dataOpts, split: "test" });
  const init = { scheme: cfg.init, distribution: cfg.initDist, scale: cfg.initScale, bias: cfg.bias, seed: cfg.seed };
  checkTrainingRun(cfg.model, cfg, train, test, totalSteps(cfg, train.n)); // refuse what cannot fit or finish, before allocating
  let model;
  if (cfg.model !== undefined && typeof cfg.model === "object") {
    const r = parseModelSpec(cfg.model);
    if (!r.ok) throw new UserError(`config: model: ${r.problems.join("; ")}`);
    const net = compileNetwork(r.spec);
    model = { spec: r.spec, net, params: initParams(net, init) };
  } else {
    model = resolveModel(cfg.model, train, init);
  }
  checkCompatible(model.net, train);
  // Evaluation subsets are fixed prefixes; for the training subset, a seeded sample so it covers all classes.
  const trainSample = subset(train, Rng.derive(cfg.seed, 0xe7a1).permutation(train.n).subarray(0, Math.min(train.n, cfg.evalSize)));
  const sets: EvalSets = {
    trainEval: trainSample,
    testEval: head(test, cfg.evalSize),
    trainGC: head(trainSample, cfg.gcSize),
    testGC: head(test, cfg.gcSize),
  };
  const regs = buildRegularizers(cfg);
  const optimizer = cfg.optimizer === "adam" ? adam(cfg.lr) : sgd(cfg.lr, cfg.momentum);
  const params = model.params;
  const initial: StepState = { params, opt: optimizer.init(params), regs: regs.map((r) => r.init(model.net, params)) };
  return { cfg, spec: model.spec, net: model.net, train, sets, regs, optimizer, total: totalSteps(cfg, train.n), initial };
}

const METRICS = "metrics.jsonl";
const CONFIG = "config.json";

/** Keeps the metrics lines up to `step` (a resumed run rewrites what came after its checkpoint). */
function truncateMetrics(runDir: string, step: number): void {
  const file = join(runDir, METRICS);
  if (!existsSync(file)) return;
  const kept = readFileSync(file, "utf8").split("\n").filter((l) => l.trim() && JSON.parse(l).step <= step);
  writeFileAtomic(file, kept.map((l) => l + "\n").join(""));
}

export function readRunConfig(runDir: string): TrainConfig {
  const file = join(runDir, CONFIG);
  if (!existsSync(file)) throw new UserError(`${runDir}: not a run directory (no ${CONFIG})`);
  return parseTrainConfig(JSON.parse(readFileSync(file, "utf8")), file);
}

export interface TrainResult {
  runDir: string;
  steps: number;
  final: MetricsRecord;
  secondsPerStep: number;
}

/** Trains from scratch into runDir (which must not hold another run), or resumes the run in runDir. */
export function train(cfgOrNull: TrainConfig | null, runDir: string, hooks: TrainHooks = {}): TrainResult {
  const resuming = cfgOrNull === null;
  const cfg = resuming ? readRunConfig(runDir) : cfgOrNull;
  if (!resuming && existsSync(join(runDir, CONFIG))) {
    throw new UserError(`${runDir} already holds a run; use --resume ${runDir} to continue it, or choose another --out`);
  }
  const run = setupRun(cfg);
  let state = run.initial;
  let start = 0;
  const sums = { lossSum: 0, penaltySum: 0, count: 0 };
  mkdirSync(runDir, { recursive: true });
  if (resuming) {
    const ck = loadCheckpoint(runDir);
    if (ck) {
      state = ck.state;
      start = ck.step;
      Object.assign(sums, ck.running);
    }
    truncateMetrics(runDir, start);
    if (start === 0) writeFileSync(join(runDir, METRICS), "");
  } else {
    writeFileAtomic(join(runDir, CONFIG), JSON.stringify(cfg, null, 2) + "\n");
    writeFileSync(join(runDir, METRICS), "");
  }
  const log = (step: number, extra: MetricsRecord) => {
    const rec: MetricsRecord = { step, epoch: step / stepsPerEpoch(run.train.n, Math.min(cfg.batchSize, run.train.n)), ...extra, ...evaluate(run.net, state.params, run.sets, cfg, step) };
    appendFileSync(join(runDir, METRICS), JSON.stringify(rec) + "\n");
    hooks.onLog?.(rec);
    return rec;
  };
  let last: MetricsRecord = {};
  if (start === 0) last = log(0, { batch_loss: null, penalty: null });
  const cache = newEpochCache();
  let stepTime = 0;
  for (let step = start; step < run.total; step++) {
    if (hooks.stopAfter !== undefined && step - start >= hooks.stopAfter) return { runDir, steps: step, final: last, secondsPerStep: stepTime / Math.max(1, step - start) };
    const batch = batchForStep(run.train, cfg.batchSize, cfg.seed, step, cache);
    const t0 = performance.now();
    const r = trainStep(run.net, state, batch, run.regs, run.optimizer, stepRng(cfg.seed, step));
    stepTime += (performance.now() - t0) / 1000;
    if (!Number.isFinite(r.loss)) throw new UserError(`training diverged at step ${step + 1} (loss ${r.loss}); lower --lr or the penalty strengths`);
    state = r.state;
    sums.lossSum += r.loss;
    sums.penaltySum += r.penalty;
    sums.count++;
    const done = step + 1;
    hooks.onStep?.(done, run.total, r.loss);
    if (done % cfg.logEvery === 0 || done === run.total) {
      last = log(done, { batch_loss: sums.lossSum / sums.count, penalty: sums.penaltySum / sums.count });
      Object.assign(sums, { lossSum: 0, penaltySum: 0, count: 0 });
    }
    if (done % cfg.checkpointEvery === 0 || done === run.total) saveCheckpoint(runDir, done, run.spec, state, sums);
  }
  saveModel(join(runDir, "model"), run.spec, state.params);
  return { runDir, steps: run.total, final: last, secondsPerStep: stepTime / Math.max(1, run.total - start) };
}
