/**
 * A training run: set-up from a validated config, the step loop, periodic evaluation to metrics.jsonl and
 * checkpoints. Batches and per-step randomness are derived from (seed, epoch) and (seed, step), so a resumed run
 * computes exactly what an uninterrupted one would.
 */
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { Dataset } from "../data/dataset.js";
import { loadDataset } from "../data/registry.js";
import { head, subset } from "../data/select.js";
import { checkCompatible } from "../measures/gc.js";
import { compileNetwork, type Network } from "../models/network.js";
import { initParams } from "../models/init.js";
import { loadModel, MODEL_FILE, saveModel } from "../models/io.js";
import { resolveModel } from "../models/resolve.js";
import { checkTrainingRun } from "../models/budget.js";
import { parseModelSpec, type ModelSpec } from "../models/spec.js";
import { buildRegularizers, type Regularizer } from "../regularizers/index.js";
import { UserError } from "../util/errors.js";
import { Rng } from "../util/rng.js";
import {
  checkCheckpointState,
  loadCheckpoint,
  saveCheckpoint,
  updateCheckpointFingerprint,
  type RunningSums,
} from "./checkpoint.js";
import { configChanges, dataFingerprint, engineMismatch, EXTENSIBLE_KEYS, type RunFingerprint } from "./fingerprint.js";
import { engineInfo } from "../engine/backend.js";
import { Tensor, toStorage } from "../engine/tensor.js";
import { isHost, type Storage } from "../engine/storage.js";
import { readMetrics, writeMetrics } from "./metricsFile.js";
import { LOCK_FILE, lockRun } from "./runLock.js";
import { appendText, onFile, pathKind, readJsonFile, writeFileAtomic } from "../util/files.js";
import { parseTrainConfig, stepsPerEpoch, totalSteps, type TrainConfig } from "./config.js";
import { evaluateDeferred, type EvalSets, type MetricsRecord } from "./evaluate.js";
import { corruptLabels } from "./labelCorruption.js";
import { adam, sgd, type GradientTransformation } from "./optimizers.js";
import { trainStep, type StepState } from "./step.js";
import {
  onBackend,
  onDevice,
  readBack,
  runReads,
  runReadsNow,
  sumScalars,
  type Deferred,
  type Reads,
} from "../measures/readback.js";
import { batchForStep, newEpochCache, stepRng } from "./schedule.js";

/** Callbacks of {@link train} (progress bars, live logging). */
export interface TrainHooks {
  /** Called after every optimizer step. */
  onStep?(step: number, total: number, loss: number): void;
  /** Called with every record written to `metrics.jsonl`. */
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
  const train = corruptLabels(
    loadDataset(cfg.data, { ...dataOpts, split: "train", limit: cfg.limit }),
    cfg.labelCorruption,
    cfg.seed,
  );
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
  const trainSample = subset(
    train,
    Rng.derive(cfg.seed, 0xe7a1).permutation(train.n).subarray(0, Math.min(train.n, cfg.evalSize)),
  );
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
  return {
    cfg,
    spec: model.spec,
    net: model.net,
    train,
    sets,
    regs,
    optimizer,
    total: totalSteps(cfg, train.n),
    initial,
  };
}

const METRICS = "metrics.jsonl";
const CONFIG = "config.json";

export function readRunConfig(runDir: string): TrainConfig {
  const file = join(runDir, CONFIG);
  const kind = pathKind(runDir);
  if (kind === "missing") throw new UserError(`${runDir}: no such run directory`);
  if (kind !== "directory") throw new UserError(`${runDir}: not a run directory (it is a file)`);
  if (!existsSync(file)) throw new UserError(`${runDir}: not a run directory (no ${CONFIG})`);
  return parseTrainConfig(readJsonFile(file, "run config", 1 << 20), file);
}

/**
 * Checks that `runDir` can hold a new run without touching anything already there: it must not exist (its parent
 * is then created) or be an empty directory. Throws a one-line UserError otherwise.
 */
export function checkNewRunDir(runDir: string): void {
  const kind = pathKind(runDir);
  if (kind === "missing") return;
  if (kind !== "directory")
    throw new UserError(`--out ${runDir} exists and is not a directory; choose a new or empty directory`);
  if (existsSync(join(runDir, CONFIG)))
    throw new UserError(
      `--out ${runDir} already holds a run; continue it with --resume ${runDir}, or choose a new or empty directory`,
    );
  // A lone lock file is left by a process killed while starting a run; the lock itself decides whether it is stale.
  const entries = onFile("read", runDir, () => readdirSync(runDir)).filter((e) => e !== LOCK_FILE);
  if (entries.length > 0) {
    const shown = entries.slice(0, 3).join(", ") + (entries.length > 3 ? `, … (${entries.length} entries)` : "");
    throw new UserError(`--out ${runDir} is not empty (it holds ${shown}); a run needs a new or empty directory`);
  }
}

/** What a resumed run may change: its length. */
export interface ResumeOptions {
  /** New total number of steps (or epochs): a finished run may be extended on purpose, never shortened. */
  steps?: number;
  epochs?: number;
}

/** The outcome of {@link train}. */
export interface TrainResult {
  runDir: string;
  steps: number;
  final: MetricsRecord;
  secondsPerStep: number;
  /** True when a resumed run had already finished: nothing was trained. */
  alreadyComplete?: boolean;
}

/**
 * Trains from scratch into runDir (which must be new or empty), or (cfg null) resumes the run in runDir from its
 * last checkpoint. The run directory is locked for the duration. Reads numbers back synchronously: CPU backends.
 */
export function train(
  cfgOrNull: TrainConfig | null,
  runDir: string,
  hooks: TrainHooks = {},
  resumeOpts: ResumeOptions = {},
): TrainResult {
  return runReadsNow(trainReads(cfgOrNull, runDir, hooks, resumeOpts));
}

/**
 * {@link train} for any backend, device ones included: the same run, with every read point (losses, log points,
 * checkpoints) awaited instead of read synchronously.
 */
export function trainAsync(
  cfgOrNull: TrainConfig | null,
  runDir: string,
  hooks: TrainHooks = {},
  resumeOpts: ResumeOptions = {},
): Promise<TrainResult> {
  return runReads(trainReads(cfgOrNull, runDir, hooks, resumeOpts));
}

/** The run as a computation that pauses at each read point (decision 0007), driven by train or trainAsync. */
function* trainReads(
  cfgOrNull: TrainConfig | null,
  runDir: string,
  hooks: TrainHooks,
  resumeOpts: ResumeOptions,
): Reads<TrainResult> {
  const resuming = cfgOrNull === null;
  if (!resuming) {
    checkNewRunDir(runDir); // refuses "/" and other non-empty directories too
  }
  let cfg = resuming ? readRunConfig(runDir) : cfgOrNull;
  const run0 = resuming ? null : setupRun(cfg); // set-up errors (data, model) before anything is created
  if (!resuming) onFile("create", runDir, () => mkdirSync(runDir, { recursive: true }));
  const lock = lockRun(runDir);
  try {
    if (!resuming) {
      // Another process may have filled the directory between the check and the lock.
      const others = onFile("read", runDir, () => readdirSync(runDir)).filter((e) => e !== LOCK_FILE);
      if (others.length > 0)
        throw new UserError(
          `--out ${runDir} is no longer empty (another process wrote ${others[0]}); choose a new or empty directory`,
        );
      return yield* runLoop(cfg, run0!, runDir, hooks, null, dataFingerprint(run0!.train, run0!.sets), []);
    }
    const configFile = join(runDir, CONFIG);
    let run = setupRun(cfg);
    const ck = loadCheckpoint(runDir);
    const wantsExtend = resumeOpts.steps !== undefined || resumeOpts.epochs !== undefined;
    if (ck?.fingerprint) {
      const changed = configChanges(ck.fingerprint.config, cfg, wantsExtend ? EXTENSIBLE_KEYS : []);
      if (changed.length > 0) {
        throw new UserError(
          `${configFile} differs from the config its checkpoint was trained with: ${changed.join(", ")}; restore it` +
            (changed.every((c) => EXTENSIBLE_KEYS.some((k) => c.startsWith(k + " ")))
              ? ` and extend the run with --resume ${runDir} --steps N`
              : "") +
            ` (a resumed run cannot change its config)`,
        );
      }
    }
    if (wantsExtend) {
      const next: TrainConfig = {
        ...cfg,
        steps: resumeOpts.steps,
        epochs: resumeOpts.steps === undefined ? resumeOpts.epochs : undefined,
      };
      const newTotal = totalSteps(next, run.train.n);
      const at = ck?.step ?? 0;
      if (newTotal < at)
        throw new UserError(
          `--steps ${newTotal} is fewer than the ${at} steps run ${runDir} has already trained; a run can only be extended`,
        );
      cfg = parseTrainConfig(JSON.parse(JSON.stringify(next)), "--resume");
      checkTrainingRun(cfg.model, cfg, run.train, run.sets.testEval, newTotal); // an extension must fit and finish too
      run = { ...run, cfg, total: newTotal };
    }
    const data = dataFingerprint(run.train, run.sets);
    const mixed = engineMismatch(runDir, ck?.fingerprint?.engine, engineInfo());
    if (mixed) throw new UserError(mixed);
    if (ck?.fingerprint && ck.fingerprint.data !== data) {
      throw new UserError(
        `the data of run ${runDir} has changed since its checkpoint (data set "${cfg.data}" is not the one it was trained on); it cannot be resumed`,
      );
    }
    if (ck) checkCheckpointState(ck, run.initial);
    if (ck && configChanges(ck.spec, run.spec).length > 0) {
      throw new UserError(
        `${join(runDir, "checkpoints")}: the checkpoint's model.json does not match the run's model; it cannot be resumed`,
      );
    }
    // Damage in metrics.jsonl (other than a torn last line) is reported before anything is written.
    const records = existsSync(join(runDir, METRICS)) ? readMetrics(join(runDir, METRICS)).records : [];
    if (ck && ck.step >= run.total) return finishComplete(runDir, run, ck.state, ck.step, records);
    if (wantsExtend) {
      // The checkpoint's fingerprint first, then config.json: after a crash between the two, a resume with the same
      // --steps completes the change.
      if (ck) updateCheckpointFingerprint(runDir, ck.step, { config: cfg, data, engine: engineInfo() });
      writeFileAtomic(configFile, JSON.stringify(cfg, null, 2) + "\n");
    }
    return yield* runLoop(cfg, run, runDir, hooks, ck, data, records);
  } finally {
    lock.release();
  }
}

/** A resumed run that had already reached its last step: make sure the final model exists, train nothing. */
function finishComplete(
  runDir: string,
  run: RunSetup,
  state: StepState,
  step: number,
  records: MetricsRecord[],
): TrainResult {
  const modelDir = join(runDir, "model");
  let ok = false;
  if (existsSync(join(modelDir, MODEL_FILE))) {
    try {
      loadModel(modelDir);
      ok = true;
    } catch {
      ok = false;
    }
  }
  if (!ok) saveModel(modelDir, run.spec, state.params); // the run stopped between its last checkpoint and the model
  return { runDir, steps: step, final: records[records.length - 1] ?? {}, secondsPerStep: 0, alreadyComplete: true };
}

/** `data` is the run's data fingerprint; `records` the metrics already on disk (resumes). */
function* runLoop(
  cfg: TrainConfig,
  run: RunSetup & { initial: StepState },
  runDir: string,
  hooks: TrainHooks,
  ck: ReturnType<typeof loadCheckpoint>,
  data: string,
  records: MetricsRecord[],
): Reads<TrainResult> {
  const metricsFile = join(runDir, METRICS);
  const fingerprint: RunFingerprint = { config: cfg, data, engine: engineInfo() };
  let state = run.initial;
  let start = 0;
  const sums: RunningSums = { lossSum: 0, penaltySum: 0, count: 0 };
  if (ck) {
    state = onBackendState(ck.state);
    start = ck.step;
    Object.assign(sums, ck.running);
    // Keep the records up to the checkpoint; anything later (or a line torn by a failed write) is redone.
    writeMetrics(
      metricsFile,
      records.filter((r) => (r.step as number) <= start),
    );
  } else {
    if (!existsSync(join(runDir, CONFIG))) writeFileAtomic(join(runDir, CONFIG), JSON.stringify(cfg, null, 2) + "\n");
    writeMetrics(metricsFile, []);
  }
  function* log(step: number, extra: MetricsRecord): Reads<MetricsRecord> {
    const rec: MetricsRecord = {
      step,
      epoch: step / stepsPerEpoch(run.train.n, Math.min(cfg.batchSize, run.train.n)),
      ...extra,
      ...(yield* readBack(evaluateDeferred(run.net, state.params, run.sets, cfg, step))),
    };
    for (const k of ["gc_train", "gc_test"]) {
      const v = rec[k];
      if (typeof v === "number" && !Number.isFinite(v)) {
        throw new UserError(
          `${k} is not finite (${v}) at step ${step}: the model's outputs or Jacobians overflow float32; lower --lr, --init-scale or the penalty strengths`,
        );
      }
    }
    appendText(metricsFile, JSON.stringify(rec) + "\n");
    hooks.onLog?.(rec);
    return rec;
  }
  let last: MetricsRecord = {};
  if (start === 0) last = yield* log(0, { batch_loss: null, penalty: null });
  const cache = newEpochCache();
  let stepTime = 0;
  // Losses and penalties stay on the backend until a read point (decision 0007: nothing is read inside a step).
  // CPU backends read after every step, so a divergence stops the run at the step that diverged, as it always has;
  // device backends read at log points, checkpoints and the end, where the same check names the same first
  // diverged step (the steps run after it until the read point are discarded with the error).
  const readEveryStep = !onDevice();
  const pending: { step: number; loss: Tensor; penalties: Tensor[] }[] = [];
  const settle = () => readBack(pendingSteps(pending.splice(0)));
  const account = (read: { step: number; loss: number; penalty: number }[]) => {
    for (const r of read) {
      if (!Number.isFinite(r.loss))
        throw new UserError(
          `training diverged at step ${r.step + 1} (loss ${r.loss}); lower --lr or the penalty strengths`,
        );
      sums.lossSum += r.loss;
      sums.penaltySum += r.penalty;
      sums.count++;
      hooks.onStep?.(r.step + 1, run.total, r.loss);
    }
  };
  // Steps keep their state resident (wasm memory) for the next step; each is released once nothing reads it, and
  // whatever is still held when the loop ends or fails (after the model is saved) is released here.
  const held: (() => void)[] = [];
  try {
    for (let step = start; step < run.total; step++) {
      if (hooks.stopAfter !== undefined && step - start >= hooks.stopAfter) {
        account(yield* settle());
        return { runDir, steps: step, final: last, secondsPerStep: stepTime / Math.max(1, step - start) };
      }
      const batch = batchForStep(run.train, cfg.batchSize, cfg.seed, step, cache);
      const t0 = performance.now();
      const r = trainStep(run.net, state, batch, run.regs, run.optimizer, stepRng(cfg.seed, step), { keep: true });
      stepTime += (performance.now() - t0) / 1000;
      pending.push({ step, loss: r.lossTensor, penalties: r.penaltyTensors });
      const done = step + 1;
      const logNow = done % cfg.logEvery === 0 || done === run.total;
      const checkpointNow = done % cfg.checkpointEvery === 0 || done === run.total;
      if (readEveryStep || logNow || checkpointNow) account(yield* settle());
      state = r.state;
      // The previous states are released once nothing reads them: their losses are read and the new state replaced them.
      held.push(r.release);
      if (pending.length === 0) while (held.length > 1) held.shift()!();
      if (logNow) {
        last = yield* log(done, { batch_loss: sums.lossSum / sums.count, penalty: sums.penaltySum / sums.count });
        Object.assign(sums, { lossSum: 0, penaltySum: 0, count: 0 });
      }
      if (checkpointNow) saveCheckpoint(runDir, done, run.spec, yield* readBack(hostState(state)), sums, fingerprint);
    }
    saveModel(join(runDir, "model"), run.spec, (yield* readBack(hostState(state))).params);
    return { runDir, steps: run.total, final: last, secondsPerStep: stepTime / Math.max(1, run.total - start) };
  } finally {
    for (const release of held) release();
  }
}

/** The losses and summed penalties of the steps not yet read, as one deferred read (in step order). */
function pendingSteps(
  steps: { step: number; loss: Tensor; penalties: Tensor[] }[],
): Deferred<{ step: number; loss: number; penalty: number }[]> {
  return {
    tensors: steps.flatMap((s) => [s.loss, ...s.penalties]),
    finish(values) {
      let at = 0;
      return steps.map((s) => {
        const loss = values[at][0];
        const penalty = sumScalars(values.slice(at + 1, at + 1 + s.penalties.length));
        at += 1 + s.penalties.length;
        return { step: s.step, loss, penalty };
      });
    },
  };
}

/**
 * A step state with every array in host memory, for checkpoints and the saved model (a read point). On CPU
 * backends the arrays already are host memory: the state itself, nothing copied.
 */
function hostState(state: StepState): Deferred<StepState> {
  if (!onDevice()) return { tensors: [], finish: () => state };
  const params = Object.entries(state.params);
  const arrays = Object.entries(state.opt.arrays);
  const regs = state.regs.map((r) => Object.entries(r));
  const flat = (a: Storage) => new Tensor(a, [a.length]);
  return {
    tensors: [...params.map(([, t]) => t), ...arrays.map(([, a]) => flat(a)), ...regs.flat().map(([, a]) => flat(a))],
    finish(values) {
      let at = 0;
      const next = () => values[at++];
      return {
        params: Object.fromEntries(params.map(([k, t]) => [k, new Tensor(next(), t.shape)])),
        opt: { arrays: Object.fromEntries(arrays.map(([k]) => [k, next()])), scalars: state.opt.scalars },
        regs: regs.map((r) => Object.fromEntries(r.map(([k]) => [k, Float64Array.from(next())]))),
      };
    },
  };
}

/**
 * A state loaded from a checkpoint (host arrays) on the active backend: uploaded on a device backend (float32,
 * device storage's precision), returned as it is on CPU backends.
 */
function onBackendState(state: StepState): StepState {
  if (!onDevice()) return state;
  const up = (a: Storage): Storage => (isHost(a) ? toStorage(a instanceof Float32Array ? a : Float32Array.from(a)) : a);
  const map = (r: Record<string, Storage>) => Object.fromEntries(Object.entries(r).map(([k, a]) => [k, up(a)]));
  return {
    params: Object.fromEntries(Object.entries(state.params).map(([k, t]) => [k, onBackend(t)])),
    opt: { arrays: map(state.opt.arrays), scalars: state.opt.scalars },
    regs: state.regs.map(map),
  };
}
