/**
 * One training session: data sets, network, parameters and optimizer built from the playground state with the
 * library's own code (the same modules as `gcx train` and `gcx measure`), stepping and measuring on demand.
 * Batches and per-step randomness are derived from (seed, step) exactly as src/training/trainer.ts does, so
 * a run is reproducible: the same URL gives the same numbers after the same number of steps.
 */
import { makeSynthetic } from "../../src/data/synthetic.js";
import type { Dataset } from "../../src/data/dataset.js";
import { noGrad } from "../../src/engine/graph.js";
import { Tensor } from "../../src/engine/tensor.js";
import * as op from "../../src/engine/ops.js";
import { compileNetwork, forward, type Network } from "../../src/models/network.js";
import { initParams } from "../../src/models/init.js";
import { exactGC } from "../../src/measures/gc.js";
import { jacobianSqNormsForward } from "../../src/measures/jacobian.js";
import { weightNorms } from "../../src/measures/norms.js";
import { buildRegularizers, type Batch, type Regularizer } from "../../src/regularizers/index.js";
import { batchForStep, batchOf, newEpochCache, stepRng } from "../../src/training/schedule.js";
import { accuracy } from "../../src/training/losses.js";
import { adam, sgd, type GradientTransformation } from "../../src/training/optimizers.js";
import { dataLoss, trainStep, type StepState } from "../../src/training/step.js";
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

  /** Runs n optimization steps; returns false (and stops) if the loss became NaN or infinite. */
  runSteps(n: number): boolean {
    for (let i = 0; i < n; i++) {
      const r = trainStep(
        this.net,
        this.stepState,
        this.batchFor(this.step),
        this.regs,
        this.optimizer,
        stepRng(this.settings.seed, this.step),
      );
      this.stepState = r.state;
      this.step++;
      this.sums.loss += r.loss;
      this.sums.penalty += r.penalty;
      this.sums.count++;
      if (!Number.isFinite(r.loss)) return false;
    }
    return true;
  }

  private lossAndAccuracy(ds: Dataset): { loss: number; acc: number | null } {
    const b = batchOf(ds);
    const { loss, logits } = dataLoss(this.net, this.stepState.params, b);
    return { loss: loss.item(), acc: b.labels ? accuracy(logits, b.labels) : null };
  }

  /** Exact GC over a whole data set, as `gcx measure` computes it (forward mode: one tangent per input). */
  private gcOf(ds: Dataset): number {
    return exactGC(this.net, this.stepState.params, ds, { mode: "forward", batchSize: ds.n }).gc;
  }

  /** Parameters of the network (a cost measure: work per example is about proportional). */
  get paramCount(): number {
    return this.net.params.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0);
  }

  /**
   * Losses, accuracies, GC on both sets and the weight-norm bounds, at the current parameters, over every example
   * unless `sample` is given: then over the first `sample` examples of each split (a cheaper, labelled
   * approximation while playing).
   */
  measure(sample?: number): Metrics {
    return noGrad(() => {
      const trainSet = sample ? head(this.train, sample) : this.train;
      const testSet = sample ? head(this.test, sample) : this.test;
      const train = this.lossAndAccuracy(trainSet);
      const test = this.lossAndAccuracy(testSet);
      const norms = weightNorms(this.net, this.stepState.params);
      const { count } = this.sums;
      const m: Metrics = {
        step: this.step,
        batchLoss: count ? this.sums.loss / count : null,
        penalty: count ? this.sums.penalty / count : null,
        trainLoss: train.loss,
        testLoss: test.loss,
        trainAcc: train.acc,
        testAcc: test.acc,
        gcTrain: this.gcOf(trainSet),
        gcTest: this.gcOf(testSet),
        gcSample: sample && (sample < this.train.n || sample < this.test.n) ? sample : null,
        sumFrobeniusSq: norms.sum_frobenius_sq,
        t1: norms.prod_frobenius_sq ?? NaN,
        t2: norms.lipschitz_bound ?? NaN,
      };
      this.sums = { loss: 0, penalty: 0, count: 0 };
      return m;
    });
  }

  /** Outputs (softmax probabilities for classifiers) and ‖∂g/∂x‖_F² at n points given row-major in xs. */
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
}
