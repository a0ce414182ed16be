/**
 * Geometric complexity over a dataset: GC = (1/|D|) Σ_x ‖∂g(x)/∂x‖_F², exact or estimated with random probes.
 * The dataset is streamed in batches, so memory is bounded by one batch's graph.
 */
import { Tensor } from "../engine/tensor.js";
import { kernels, scope } from "../engine/backend.js";
import { onDevice, resolveNow, upload, type Deferred } from "./readback.js";
import { inputSize, type Dataset } from "../data/dataset.js";
import type { Network, Params } from "../models/network.js";
import { Rng } from "../util/rng.js";
import { UserError } from "../util/errors.js";
import { denseJacobianSqNorms, supportsDenseJacobian } from "./denseJacobian.js";
import {
  cheaperMode,
  jacobianSqNormsForward,
  jacobianSqNormsForwardTensor,
  jacobianSqNormsReverse,
  probeSqNorms,
  type GCOutput,
  type JacobianMode,
  type ProbeKind,
} from "./jacobian.js";

/** GC over the examples of one class. */
export interface ClassGC {
  class: number;
  n: number;
  gc: number;
}

/** A GC measurement: the value, how it was obtained and over how many examples. */
export interface GCResult {
  method: "exact" | "estimate";
  gc: number;
  /** Number of examples measured. */
  n: number;
  output: GCOutput;
  /** exact: how the Jacobians were computed. */
  mode?: JacobianMode;
  /** estimate: standard error of gc over the probe draws, and the probe settings. */
  stderr?: number;
  probes?: number;
  probe?: ProbeKind;
  per_class?: ClassGC[];
  seconds: number;
}

/** Options shared by {@link exactGC} and {@link estimateGC}. */
export interface GCOptions {
  batchSize?: number;
  output?: GCOutput;
  perClass?: boolean;
  /** Called after each batch with the number of examples done so far. */
  onProgress?: (done: number, total: number) => void;
}

/** Options of {@link exactGC}: forward or reverse mode (`auto` picks the cheaper). */
export interface ExactOptions extends GCOptions {
  mode?: JacobianMode | "auto";
}

/** Options of {@link estimateGC}: probes per example (≥ 2), their distribution and the seed that draws them. */
export interface EstimateOptions extends GCOptions {
  probes?: number;
  probe?: ProbeKind;
  seed?: number;
}

/** Rows [start, end) of the dataset's inputs as a [rows, d] tensor (a host view, no copy). */
export function inputBatch(ds: Dataset, start: number, end: number): Tensor {
  const d = inputSize(ds);
  return new Tensor(ds.x.subarray(start * d, end * d), [end - start, d]);
}

/** The same rows on the active backend: the view on host backends, an upload on a device. */
function inputBatchOnBackend(ds: Dataset, start: number, end: number): Tensor {
  const d = inputSize(ds);
  return upload(ds.x.subarray(start * d, end * d), [end - start, d]);
}

/** Throws a one-line UserError when the dataset's inputs or outputs do not fit the network. */
export function checkCompatible(net: Network, ds: Dataset): void {
  const d = inputSize(ds);
  if (net.inputSize !== d) {
    const modelShape = net.graph ? ` (shape [${net.graph.inputShape}])` : "";
    const dataShape = ds.imageShape
      ? ` (images ${ds.imageShape[0]}x${ds.imageShape[1]}x${ds.imageShape[2]})`
      : ` (shape [${ds.inputShape}])`;
    throw new UserError(
      `shape mismatch: the model takes ${net.inputSize} inputs${modelShape}, data set "${ds.name}" has ${d} per example${dataShape}`,
    );
  }
  if (ds.task === "classification" && net.outputSize !== ds.numOutputs) {
    throw new UserError(
      `shape mismatch: the model has ${net.outputSize} outputs, data set "${ds.name}" has ${ds.numOutputs} classes`,
    );
  }
}

function batchSizeOf(opts: GCOptions): number {
  const b = opts.batchSize ?? 256;
  if (!Number.isInteger(b) || b <= 0) throw new UserError(`--batch-size must be a positive integer, got ${b}`);
  return b;
}

/** Accumulates per-example values into a total and, when labels are known, per-class totals. */
class Accumulator {
  private sum = 0;
  private count = 0;
  private readonly classSum: Float64Array;
  private readonly classCount: Float64Array;
  constructor(
    private readonly labels: Int32Array | undefined,
    classes: number,
  ) {
    this.classSum = new Float64Array(classes);
    this.classCount = new Float64Array(classes);
  }
  add(start: number, values: ArrayLike<number>): void {
    for (let i = 0; i < values.length; i++) {
      this.sum += values[i];
      this.count++;
      if (this.labels) {
        const c = this.labels[start + i];
        this.classSum[c] += values[i];
        this.classCount[c]++;
      }
    }
  }
  mean(): number {
    return this.sum / this.count;
  }
  perClass(): ClassGC[] {
    return Array.from(this.classSum, (s, c) => ({
      class: c,
      n: this.classCount[c],
      gc: this.classCount[c] ? s / this.classCount[c] : NaN,
    }));
  }
}

/** Largest |value| over all parameters (NaN if any is NaN). */
export function largestAbsWeight(params: Params): number {
  let m = 0;
  for (const t of Object.values(params)) {
    const d = t.data;
    for (let i = 0; i < d.length; i++) {
      const a = Math.abs(d[i]);
      if (!(a <= m)) m = a;
    }
  }
  return m;
}

function largestAbs(d: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < d.length; i++) {
    const a = Math.abs(d[i]);
    if (!(a <= m)) m = a;
  }
  return m;
}

/** The error for a measured quantity that came out NaN or infinite, naming the likely cause (float32 overflow). */
export function nonFiniteError(what: string, value: number, params: Params, ds?: Dataset): UserError {
  const w = largestAbsWeight(params);
  const x = ds ? `, largest |input| ${largestAbs(ds.x).toPrecision(3)}` : "";
  return new UserError(
    `${what} is not finite (${value}): the model's outputs or Jacobians overflow float32 (largest |weight| ${w.toPrecision(3)}${x}); use a model with smaller weights (or a smaller --init-scale) or smaller inputs`,
  );
}

/** Throws a UserError when GC, its standard error, or the GC of a class with examples is NaN or infinite. */
export function checkFiniteGC(r: GCResult, params: Params, ds?: Dataset): void {
  if (!Number.isFinite(r.gc)) throw nonFiniteError("GC", r.gc, params, ds);
  if (r.stderr !== undefined && !Number.isFinite(r.stderr))
    throw nonFiniteError("the standard error of GC", r.stderr, params, ds);
  for (const c of r.per_class ?? [])
    if (c.n > 0 && !Number.isFinite(c.gc)) throw nonFiniteError(`GC of class ${c.class}`, c.gc, params, ds);
}

function perClassLabels(ds: Dataset, opts: GCOptions): Int32Array | undefined {
  if (!opts.perClass) return undefined;
  if (ds.task !== "classification" || !ds.labels)
    throw new UserError(`--per-class needs a classification data set; "${ds.name}" is ${ds.task}`);
  return ds.labels;
}

/**
 * ‖∂g(x_b)/∂x_b‖_F² for each row of x by the fastest exact method: forward mode when asked (or cheaper), else the
 * closed-form propagation for MLPs, else k reverse-mode passes.
 */
export function batchJacobianSqNorms(
  net: Network,
  params: Params,
  x: Tensor,
  output: GCOutput = "logits",
  mode: JacobianMode = cheaperMode(net),
): ArrayLike<number> {
  const fused = output === "logits" ? fusedSmallMlp(net, params, x) : null;
  if (fused) return fused;
  if (mode === "forward") return jacobianSqNormsForward(net, params, x, output);
  return supportsDenseJacobian(net)
    ? denseJacobianSqNorms(net, params, x, output)
    : jacobianSqNormsReverse(net, params, x, output).data;
}

/**
 * The same norms as a [rows] tensor on the active backend, without reading anything back. Host backends take
 * {@link batchJacobianSqNorms}'s methods (the same numbers); device backends run the forward- or reverse-mode ops
 * (the fused and closed-form methods are host loops).
 */
export function batchJacobianSqNormsTensor(
  net: Network,
  params: Params,
  x: Tensor,
  output: GCOutput = "logits",
  mode: JacobianMode = cheaperMode(net),
): Tensor {
  if (onDevice())
    return mode === "forward"
      ? jacobianSqNormsForwardTensor(net, params, x, output)
      : jacobianSqNormsReverse(net, params, x, output);
  const v = batchJacobianSqNorms(net, params, x, output, mode);
  return new Tensor(v instanceof Float64Array || v instanceof Float32Array ? v : Float64Array.from(v), [x.shape[0]]);
}

/** Activation codes of the fused small-MLP Jacobian kernel. */
const FUSED_ACT = { identity: 0, relu: 1, tanh: 2 } as const;

/**
 * Jacobian norms of a small-input MLP (d ≤ 8) by the backend's fused kernel (all layers in one call), or null when
 * the backend has none or the network does not qualify.
 */
function fusedSmallMlp(net: Network, params: Params, x: Tensor): Float64Array | null {
  const spec = net.spec;
  const kernel = kernels().mlpJacobianSqNorms;
  if (!kernel || spec.kind !== "mlp" || !(spec.activation in FUSED_ACT) || net.inputSize > 8) return null;
  const layers = net.layers.flatMap((l) =>
    l.type === "dense"
      ? [
          {
            w: params[`layers.${l.index}.weight`].data,
            b: params[`layers.${l.index}.bias`].data,
            inSize: l.inSize,
            outSize: l.outSize,
          },
        ]
      : [],
  );
  const out = new Float64Array(x.shape[0]);
  return kernel(x.data, net.inputSize, layers, FUSED_ACT[spec.activation as keyof typeof FUSED_ACT], out) ? out : null;
}

/** The exact GC = (1/|D|) Σ_x ‖∂g(x)/∂x‖_F² of the network over the dataset, one batch in memory at a time. */
export function exactGC(net: Network, params: Params, ds: Dataset, opts: ExactOptions = {}): GCResult {
  return resolveNow(exactGCDeferred(net, params, ds, opts));
}

/**
 * {@link exactGC} without reading anything back: every batch runs on the backend and leaves its per-example norms
 * there; the result is made when they are read, all at once (`resolveNow`, or `await resolve` on a device backend),
 * and accumulated in float64 on the host in example order, as the synchronous version always has.
 */
export function exactGCDeferred(
  net: Network,
  params: Params,
  ds: Dataset,
  opts: ExactOptions = {},
): Deferred<GCResult> {
  checkCompatible(net, ds);
  const t0 = performance.now();
  const batchSize = batchSizeOf(opts);
  const output = opts.output ?? "logits";
  const mode = !opts.mode || opts.mode === "auto" ? cheaperMode(net) : opts.mode;
  const labels = perClassLabels(ds, opts);
  const norms: Tensor[] = [];
  for (let start = 0; start < ds.n; start += batchSize) {
    const end = Math.min(ds.n, start + batchSize);
    // One storage scope per batch: its Jacobians are reclaimed before the next batch (the norms are kept).
    norms.push(scope(() => batchJacobianSqNormsTensor(net, params, inputBatchOnBackend(ds, start, end), output, mode)));
    opts.onProgress?.(end, ds.n);
  }
  return {
    tensors: norms,
    finish(values) {
      const acc = new Accumulator(labels, ds.numOutputs);
      let start = 0;
      for (const v of values) {
        acc.add(start, v);
        start += v.length;
      }
      return {
        method: "exact",
        gc: acc.mean(),
        n: ds.n,
        output,
        mode,
        ...(opts.perClass ? { per_class: acc.perClass() } : {}),
        seconds: (performance.now() - t0) / 1000,
      };
    },
  };
}

/**
 * Unbiased estimate of GC with `probes` random probes per example. Probe p over the whole dataset gives an
 * independent unbiased estimate G_p; the result is their mean and its standard error sd(G_p)/√probes.
 */
export function estimateGC(net: Network, params: Params, ds: Dataset, opts: EstimateOptions = {}): GCResult {
  return resolveNow(estimateGCDeferred(net, params, ds, opts));
}

/** {@link estimateGC} without reading anything back until the end (see {@link exactGCDeferred}). */
export function estimateGCDeferred(
  net: Network,
  params: Params,
  ds: Dataset,
  opts: EstimateOptions = {},
): Deferred<GCResult> {
  checkCompatible(net, ds);
  const t0 = performance.now();
  const batchSize = batchSizeOf(opts);
  const output = opts.output ?? "logits";
  const probes = opts.probes ?? 4;
  const probe = opts.probe ?? "gaussian";
  if (!Number.isInteger(probes) || probes < 2)
    throw new UserError(`--probes must be an integer ≥ 2 (the standard error needs two draws), got ${probes}`);
  const rng = new Rng(opts.seed ?? 0);
  const labels = perClassLabels(ds, opts);
  const draws: Tensor[] = []; // batch-major, then probe
  for (let start = 0; start < ds.n; start += batchSize) {
    const end = Math.min(ds.n, start + batchSize);
    draws.push(
      ...scope(() => probeSqNorms(net, params, inputBatchOnBackend(ds, start, end), probes, probe, rng, output)),
    );
    opts.onProgress?.(end, ds.n);
  }
  return {
    tensors: draws,
    finish(values) {
      const perProbe = new Float64Array(probes);
      const acc = new Accumulator(labels, ds.numOutputs);
      let start = 0;
      for (let at = 0; at < values.length; at += probes) {
        const n = values[at].length;
        const mean = new Float64Array(n);
        for (let p = 0; p < probes; p++) {
          const t = values[at + p];
          for (let i = 0; i < n; i++) {
            perProbe[p] += t[i];
            mean[i] += t[i] / probes;
          }
        }
        acc.add(start, mean);
        start += n;
      }
      const g = Array.from(perProbe, (s) => s / ds.n);
      const gc = g.reduce((a, b) => a + b, 0) / probes;
      const variance = g.reduce((a, b) => a + (b - gc) ** 2, 0) / (probes - 1);
      return {
        method: "estimate",
        gc,
        stderr: Math.sqrt(variance / probes),
        n: ds.n,
        output,
        probes,
        probe,
        ...(opts.perClass ? { per_class: acc.perClass() } : {}),
        seconds: (performance.now() - t0) / 1000,
      };
    },
  };
}
