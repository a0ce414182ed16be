/**
 * One training session: data sets, network, parameters and optimizer built from the playground state with the
 * library's own code (the same modules as `gcx train` and `gcx measure`), stepping and measuring on demand.
 * Batches and per-step randomness are derived from (seed, step) exactly as src/training/trainer.ts does, so
 * a run is reproducible: the same URL gives the same numbers after the same number of steps.
 *
 * On a device backend (WebGPU, issue 12) nothing is read back synchronously: steps leave their losses on the device,
 * and `stepsAsync`, `measureAsync` and `probeAsync` read them (and the measurements) with `await tensor.read()` at the
 * end of the frame's work. CPU backends keep the synchronous methods and today's numbers. Device buffers a session
 * replaces (the previous step's parameters and optimizer state, results once read) are released at once: the WebGPU
 * backend reclaims only what a scope allocated.
 */
import { makeSynthetic } from "../../src/data/synthetic.js";
import type { Dataset } from "../../src/data/dataset.js";
import { noGrad, withGrad } from "../../src/engine/graph.js";
import { getBackend, scope } from "../../src/engine/backend.js";
import type { Data, Storage } from "../../src/engine/storage.js";
import { Tensor } from "../../src/engine/tensor.js";
import * as op from "../../src/engine/ops.js";
import { compileNetwork, forward, type Network } from "../../src/models/network.js";
import { initParams } from "../../src/models/init.js";
import { exactGCDeferred } from "../../src/measures/gc.js";
import { jacobianSqNormsForward, jacobianSqNormsForwardTensor } from "../../src/measures/jacobian.js";
import { weightNormsDeferred } from "../../src/measures/norms.js";
import {
  combine,
  mapDeferred,
  onBackend,
  onDevice,
  resolveNow,
  sumScalars,
  type Deferred,
} from "../../src/measures/readback.js";
import { buildRegularizers, type Batch, type Regularizer } from "../../src/regularizers/index.js";
import { batchForStep, batchOf, newEpochCache, stepRng } from "../../src/training/schedule.js";
import { accuracyOf } from "../../src/training/losses.js";
import { adam, sgd, type GradientTransformation } from "../../src/training/optimizers.js";
import { dataLoss, trainStep, type StepResult, type StepState } from "../../src/training/step.js";
import { head } from "../../src/data/select.js";
import { hiddenWidths, testSize, type OptimizerName, type State } from "./state.js";

export interface Metrics {
  step: number;
  /** Mean data loss and penalty of the batches since the previous measurement (null before the first step). */
  batchLoss: number | null;
  penalty: number | null;
  trainLoss: number;
  testLoss: number;
  trainAcc: number | null;
  testAcc: number | null;
  /** GC = mean ‖∂g(x)/∂x‖_F² over the training set and over the test set (exact when `gcSample` is null). */
  gcTrain: number;
  gcTest: number;
  /** null: losses and GC over every example (as `gcx train` logs them); n: over the first n examples of each split only. */
  gcSample: number | null;
  /** Σ‖W‖_F² and the bounds T1 = ∏‖W‖_F², T2 = min(d,k)·∏‖W‖_op². */
  sumFrobeniusSq: number;
  t1: number;
  t2: number;
}

/** Model outputs and squared Jacobian norms at a set of points (for the views). */
export interface Probe {
  /** n × k outputs: regression values, or softmax probabilities for classification. */
  outputs: Float32Array;
  k: number;
  /** ‖∂g(x)/∂x‖_F² per point (g = the logits, as GC uses). */
  gradSq: Float64Array;
}

function optimizerFor(name: OptimizerName, lr: number): GradientTransformation {
  return name === "adam" ? adam(lr) : sgd(lr);
}

export class Session {
  readonly train: Dataset;
  readonly test: Dataset;
  readonly net: Network;
  readonly task: Dataset["task"];
  step = 0;
  private stepState: StepState;
  private regs: Regularizer[] = [];
  private optimizer!: GradientTransformation;
  private optimizerName!: OptimizerName;
  private settings!: State;
  private epochCache = newEpochCache();
  private sums = { loss: 0, penalty: 0, count: 0 };

  constructor(state: State) {
    const multi = state.data === "spirals" || state.data === "blobs";
    const opts = { seed: state.seed, noise: state.noise, classes: multi ? state.classes : undefined };
    this.train = makeSynthetic(state.data, { ...opts, size: state.size, split: "train" });
    this.test = makeSynthetic(state.data, { ...opts, size: testSize(state), split: "test" });
    this.task = this.train.task;
    const d = this.train.inputShape[0];
    const hidden = hiddenWidths(state);
    this.net = compileNetwork({
      kind: "mlp",
      sizes: [d, ...hidden, this.train.numOutputs],
      activation: state.activation,
    });
    const params = initParams(this.net, {
      scheme: state.init,
      distribution: "normal",
      scale: state.initScale,
      bias: 0,
      seed: state.seed,
    });
    this.stepState = { params, opt: { arrays: {}, scalars: {} }, regs: [] };
    this.configure(state);
  }

  /**
   * Applies training settings (optimizer, learning rate, batch size, regularizers) without touching the model.
   * Optimizer state survives a change of learning rate; regularizer state restarts when the set changes.
   */
  configure(state: State): void {
    const prev = this.settings;
    const old = { opt: this.stepState.opt, regs: this.stepState.regs };
    this.settings = state;
    if (!prev || prev.optimizer !== state.optimizer)
      this.stepState.opt = optimizerFor(state.optimizer, state.lr).init(this.stepState.params);
    this.optimizer = optimizerFor(state.optimizer, state.lr);
    this.optimizerName = state.optimizer;
    this.regs = buildRegularizers({
      l2: state.l2,
      spectral: state.spectral,
      flatness: state.flatness,
      gc: state.gc,
      gcProbes: state.gcProbes,
      inputNoise: state.inputNoise,
      labelNoise: state.labelNoise,
    });
    this.stepState.regs = this.regs.map((r) => r.init(this.net, this.stepState.params));
    if (this.device) releaseReplaced(old, this.stepState);
  }

  get regularizerNames(): string[] {
    return this.regs.map((r) => `${r.name} ${r.strength}`);
  }

  get optimizerLabel(): string {
    return `${this.optimizerName}(${this.settings.lr})`;
  }

  /** The batch of step `step`, exactly as `gcx train` picks it (src/training/schedule.ts). */
  private batchFor(step: number): Batch {
    return batchForStep(this.train, this.settings.batchSize, this.settings.seed, step, this.epochCache);
  }

  /** True when the session's tensors live on a device backend (WebGPU): every read is asynchronous there. */
  readonly device = onDevice();

  /** One optimization step (nothing read back); on a device the buffers of the state it replaces are released. */
  private stepOnce(): StepResult {
    const prev = this.stepState;
    const r = trainStep(
      this.net,
      prev,
      this.batchFor(this.step),
      this.regs,
      this.optimizer,
      stepRng(this.settings.seed, this.step),
    );
    this.stepState = r.state;
    this.step++;
    if (this.device) releaseReplaced(prev, r.state);
    return r;
  }

  /** Adds a step's loss and penalty to the sums since the last measurement; false when the loss is not finite. */
  private count(loss: number, penalty: number): boolean {
    this.sums.loss += loss;
    this.sums.penalty += penalty;
    this.sums.count++;
    return Number.isFinite(loss);
  }

  /** Runs n optimization steps; returns false (and stops) if the loss became NaN or infinite. CPU backends only. */
  runSteps(n: number): boolean {
    for (let i = 0; i < n; i++) {
      const r = this.stepOnce();
      if (!this.count(r.loss, r.penalty)) return false;
    }
    return true;
  }

  /**
   * {@link runSteps} on every backend. On a device the n steps run without a read; their losses and penalties are
   * read together after the last one (so a NaN is noticed at the end of the n steps, not at the step it appeared).
   */
  async runStepsAsync(n: number): Promise<boolean> {
    if (!this.device) return this.runSteps(n);
    const results: StepResult[] = [];
    for (let i = 0; i < n; i++) results.push(this.stepOnce());
    const tensors = results.flatMap((r) => [r.lossTensor, ...r.penaltyTensors]);
    const values = await readAll(tensors);
    release(tensors);
    let at = 0;
    let ok = true;
    for (const r of results) {
      const loss = values[at++][0];
      const penalties = r.penaltyTensors.map(() => values[at++]);
      if (ok) ok = this.count(loss, sumScalars(penalties));
    }
    return ok;
  }

  /** Releases the session's device storage (parameters, optimizer and regularizer state); it must not be used after. */
  dispose(): void {
    if (this.device) releaseStorages(deviceStorages(this.stepState));
  }

  /** Data loss and accuracy over a whole data set, left on the backend until read. */
  private lossAndAccuracy(ds: Dataset): Deferred<{ loss: number; acc: number | null }> {
    const b = batchOf(ds);
    const { loss, logits } = scope(() =>
      noGrad(() => {
        const r = dataLoss(this.net, this.stepState.params, { ...b, x: onBackend(b.x) });
        return { loss: r.loss, logits: r.logits };
      }),
    );
    return {
      tensors: [loss, logits],
      finish: ([l, z]) => ({ loss: l[0], acc: b.labels ? accuracyOf(z, logits.shape, b.labels) : null }),
    };
  }

  /**
   * Exact GC over a whole data set, as `gcx measure` computes it: forward mode, one tangent per input (a host loop on
   * CPU backends, ops on a device backend).
   */
  private gcOf(ds: Dataset): Deferred<number> {
    const gc = () => exactGCDeferred(this.net, this.stepState.params, ds, { mode: "forward", batchSize: ds.n });
    return mapDeferred(this.device ? withGrad(gc) : noGrad(gc), (r) => r.gc);
  }

  /** Parameters of the network (a cost measure: work per example is about proportional). */
  get paramCount(): number {
    return this.net.params.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0);
  }

  /**
   * Losses, accuracies, GC on both sets and the weight-norm bounds, at the current parameters, over every example
   * unless `sample` is given: then over the first `sample` examples of each split (a cheaper, labelled
   * approximation while playing). CPU backends only (the values are read synchronously).
   */
  measure(sample?: number): Metrics {
    return resolveNow(this.measureDeferred(sample));
  }

  /** {@link measure} on every backend: computed on the backend, then read with `await tensor.read()`. */
  async measureAsync(sample?: number): Promise<Metrics> {
    const d = this.measureDeferred(sample);
    if (!this.device) return resolveNow(d);
    const values = await readAll(d.tensors);
    // The weight norms read the parameters themselves: everything else read here was made for this measurement.
    releaseStorages(deviceStorages(d.tensors), new Set([...deviceStorages(this.stepState)].map(memoryOf)));
    return d.finish(values);
  }

  private measureDeferred(sample?: number): Deferred<Metrics> {
    const trainSet = sample ? head(this.train, sample) : this.train;
    const testSet = sample ? head(this.test, sample) : this.test;
    const parts = combine([
      this.lossAndAccuracy(trainSet),
      this.lossAndAccuracy(testSet),
      this.gcOf(trainSet),
      this.gcOf(testSet),
      weightNormsDeferred(this.net, this.stepState.params),
    ] as const);
    const { loss, penalty, count } = this.sums;
    this.sums = { loss: 0, penalty: 0, count: 0 };
    const step = this.step;
    return mapDeferred(parts, ([train, test, gcTrain, gcTest, norms]) => ({
      step,
      batchLoss: count ? loss / count : null,
      penalty: count ? penalty / count : null,
      trainLoss: train.loss,
      testLoss: test.loss,
      trainAcc: train.acc,
      testAcc: test.acc,
      gcTrain,
      gcTest,
      gcSample: sample && (sample < this.train.n || sample < this.test.n) ? sample : null,
      sumFrobeniusSq: norms.sum_frobenius_sq,
      t1: norms.prod_frobenius_sq ?? NaN,
      t2: norms.lipschitz_bound ?? NaN,
    }));
  }

  /** Outputs (softmax probabilities for classifiers) and ‖∂g/∂x‖_F² at n points given row-major in xs (CPU backends). */
  probe(xs: Float32Array): Probe {
    return noGrad(() => {
      const d = this.net.inputSize;
      const x = new Tensor(xs, [xs.length / d, d]);
      const logits = forward(this.net, this.stepState.params, x);
      const k = logits.shape[1];
      const out = Float32Array.from(this.task === "classification" ? op.softmax(logits).data : logits.data);
      return { outputs: out, k, gradSq: jacobianSqNormsForward(this.net, this.stepState.params, x) };
    });
  }

  /** {@link probe} on every backend (device backends: forward-mode norms as ops, both results read at the end). */
  async probeAsync(xs: Float32Array): Promise<Probe> {
    if (!this.device) return this.probe(xs);
    const d = this.net.inputSize;
    const { out, sq } = scope(() => {
      const x = onBackend(new Tensor(xs, [xs.length / d, d]));
      const logits = noGrad(() => forward(this.net, this.stepState.params, x));
      const out = this.task === "classification" ? noGrad(() => op.softmax(logits)) : logits;
      return { out, sq: jacobianSqNormsForwardTensor(this.net, this.stepState.params, x) };
    });
    const [o, g] = await readAll([out, sq]);
    release([out, sq]);
    return { outputs: Float32Array.from(o), k: out.shape[1], gradSq: Float64Array.from(g) };
  }
}

/** Reads tensors back together (device backends: every copy is queued before the first wait). */
function readAll(tensors: readonly Tensor[]): Promise<Data[]> {
  return Promise.all(tensors.map((t) => t.read()));
}

/** Device storage behind the tensors and storages anywhere in v (arrays, maps, plain objects). */
function deviceStorages(v: unknown, out = new Set<Storage>()): Set<Storage> {
  if (v instanceof Tensor) {
    if (!ArrayBuffer.isView(v.storage)) out.add(v.storage);
  } else if (v !== null && typeof v === "object" && !ArrayBuffer.isView(v)) {
    if ("device" in v && "length" in v) out.add(v as Storage);
    else for (const x of v instanceof Map ? v.values() : Object.values(v)) deviceStorages(x, out);
  }
  return out;
}

/** What identifies a device storage's memory: its GPU buffer when it has one (views share it), else itself. */
const memoryOf = (s: Storage): unknown => (s as { buffer?: unknown }).buffer ?? s;

/** Returns each distinct memory of `storages` to the backend's pool once (never twice: that would alias buffers). */
function releaseStorages(storages: Iterable<Storage>, keep: ReadonlySet<unknown> = new Set()): void {
  const b = getBackend();
  const done = new Set<unknown>(keep);
  for (const s of storages) {
    const m = memoryOf(s);
    if (done.has(m)) continue;
    done.add(m);
    b.release?.(s);
  }
}

/** Returns tensors' device buffers to the backend's pool (they must not be used afterwards). */
function release(tensors: readonly Tensor[]): void {
  releaseStorages(deviceStorages(tensors));
}

/** Releases the device storage of `prev` that `next` no longer holds (a step's or a reconfiguration's old state). */
function releaseReplaced(prev: unknown, next: unknown): void {
  releaseStorages(deviceStorages(prev), new Set([...deviceStorages(next)].map(memoryOf)));
}
