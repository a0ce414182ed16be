/** Our timings for the benchmark tasks (same names and shapes as bench/torch_bench.py). Medians in ms. */
import { Tensor } from "../src/engine/tensor.js";
import { keepResident, scope } from "../src/engine/backend.js";
import { compileNetwork, forward, type Network, type Params } from "../src/models/network.js";
import { initParams } from "../src/models/init.js";
import { defaultCnnSpec, type ModelSpec } from "../src/models/spec.js";
import { resnetSpec } from "../src/models/zoo.js";
import { batchJacobianSqNorms, exactGC } from "../src/measures/gc.js";
import { loadDataset } from "../src/data/registry.js";
import { gcPenalty, flatness, type Regularizer } from "../src/regularizers/index.js";
import { trainStep, type StepState } from "../src/training/step.js";
import { sgd, type GradientTransformation } from "../src/training/optimizers.js";
import type { Batch } from "../src/regularizers/regularizer.js";
import { Rng } from "../src/util/rng.js";

export function medianMs(fn: () => void, reps: number, warmup = 5): number {
  for (let i = 0; i < warmup; i++) fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    fn();
    ts.push(performance.now() - t);
  }
  ts.sort((a, b) => a - b);
  return ts[ts.length >> 1];
}

/**
 * One training step as `gcx train` runs it, called repeatedly: each step's state stays resident for the next step
 * (trainStep's `keep`) and the previous result is released, so parameters and optimizer state are used in place.
 */
export function trainerStep(
  net: Network,
  params: Params,
  batch: Batch,
  regs: Regularizer[],
  opt: GradientTransformation,
): () => void {
  let state: StepState = { params, opt: opt.init(params), regs: regs.map((r) => r.init(net, params)) };
  let release = () => {};
  return () => {
    const r = trainStep(net, state, batch, regs, opt, new Rng(0), { keep: true });
    state = r.state;
    release();
    release = r.release;
  };
}

function setup(spec: ModelSpec, batch: number, classes: number) {
  const net = compileNetwork(spec);
  const params = initParams(net, { scheme: "he", distribution: "normal", scale: 1, bias: 0, seed: 0 });
  const rng = new Rng(1);
  const x = new Tensor(
    Float32Array.from({ length: batch * net.inputSize }, () => rng.uniform()),
    [batch, net.inputSize],
  );
  const labels = Int32Array.from({ length: batch }, () => rng.int(classes));
  return { net, params, x, labels };
}

function tasks(
  name: string,
  net: Network,
  params: Params,
  x: Tensor,
  labels: Int32Array,
  reps: number,
  only?: string[],
): Record<string, number> {
  // Forward and exact GC in inference mode (graph models: BatchNorm's running statistics), steps in training mode,
  // as gcx measure and gcx train run them.
  const batch = { x, labels, numOutputs: net.outputSize };
  const step = (regs: Regularizer[]) => trainerStep(net, params, batch, regs, sgd(0.01));
  // Each in a storage scope, as gcx runs them (evaluate and measure scope every batch; a step is its own scope).
  // gcx measure keeps the model's parameters in the backend's memory for the whole measurement (keepResident).
  const held = keepResident(params).value;
  const gc = () => scope(() => batchJacobianSqNorms(net, held, x)); // what gcx measure runs per batch
  const all: [string, () => void, number][] = [
    ["forward", () => scope(() => forward(net, held, x)), reps],
    ["SGD step", step([]), reps],
    ["exact GC of the batch", gc, reps],
    ["SGD step + GC penalty", step([gcPenalty(0.01)]), Math.max(3, reps >> 1)],
    ["SGD step + flatness penalty", step([flatness(0.01)]), Math.max(3, reps >> 1)],
  ];
  const out: Record<string, number> = {};
  for (const [task, fn, r] of all) if (!only || only.includes(task)) out[`${name} ${task}`] = medianMs(fn, r);
  return out;
}

export function runOurs(which = "all"): Record<string, number> {
  const res: Record<string, number> = {};
  if (which === "all" || which === "mlp") {
    const s = setup({ kind: "mlp", sizes: [784, 256, 256, 10], activation: "relu" }, 128, 10);
    Object.assign(res, tasks("MLP", s.net, s.params, s.x, s.labels, 21));
  }
  if (which === "all" || which === "cnn") {
    const s = setup(defaultCnnSpec(), 128, 10);
    Object.assign(res, tasks("CNN", s.net, s.params, s.x, s.labels, 5));
  }
  if (which === "all" || which === "mlp2d") {
    const s = setup({ kind: "mlp", sizes: [2, 64, 64, 2], activation: "relu" }, 256, 2);
    Object.assign(res, tasks("MLP2D", s.net, s.params, s.x, s.labels, 21, ["exact GC of the batch", "SGD step"]));
  }
  if (which === "all" || which === "resnet") {
    const s = setup(resnetSpec(8, [1, 28, 28], 10, 16), 128, 10);
    Object.assign(
      res,
      tasks("ResNet-8", s.net, s.params, s.x, s.labels, 5, [
        "forward",
        "SGD step",
        "exact GC of the batch",
        "SGD step + GC penalty",
      ]),
    );
  }
  if (which === "all" || which === "mnist") {
    const net = compileNetwork({ kind: "mlp", sizes: [784, 256, 256, 10], activation: "relu" });
    const params = initParams(net, { scheme: "he", distribution: "normal", scale: 1, bias: 0, seed: 0 });
    const ds = loadDataset("mnist", { split: "test", seed: 0 });
    const held = keepResident(params).value; // as gcx measure keeps them
    res["MNIST test set exact GC (10k), s"] = medianMs(() => exactGC(net, held, ds), 3, 1) / 1000;
  }
  return res;
}
