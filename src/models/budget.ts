/**
 * Bounded work: estimates of the memory and compute a measurement or a training run needs, from the network
 * description alone, checked before anything large is allocated so that impossible requests are refused in
 * seconds with the estimate in the message (instead of hanging, or dying for lack of memory without a word).
 *
 * What is estimated (float32, 4 bytes a number):
 * - parameters P (and for training: gradients, the updated copy, the update, optimizer state: SGD momentum 1×P,
 *   Adam 2×P);
 * - one batch's recorded forward pass: every layer's outputs, ReLU masks and convolution patches (im2col), kept
 *   for the backward pass, plus its gradients; double backprop (the gc and flatness penalties) keeps one more
 *   recorded graph per output (exact gc penalty) or per probe;
 * - exact GC: the MLP closed form holds batch × outputs × width Jacobian rows (and batch × outputs² at the top);
 *   forward mode pushes batch × inputs tangents through the network; reverse mode one backward pass per output;
 * - the GC estimate keeps one number per probe and one [batch] result per probe of a batch;
 * - no single array may exceed the JavaScript engine's typed-array length limit (2³² numbers).
 * The budget is the memory this machine has free (os.freemem, within a cgroup limit if any), or GCX_MEMORY_LIMIT
 * (e.g. 8G, 512M, 2.5GiB) when set. Compute is estimated in floating-point operations and converted to seconds
 * with a short calibrated measurement of this network on this machine, and refused beyond GCX_TIME_LIMIT
 * (default 30 days; e.g. 1y, 12h).
 *
 * Imports nothing from cli/, training/ or experiments/: callers pass what they plan to do.
 */
import { freemem, totalmem } from "node:os";
import { Tensor } from "../engine/tensor.js";
import * as op from "../engine/ops.js";
import { grad } from "../engine/autograd.js";
import { UserError } from "../util/errors.js";
import { compileNetwork, forward, type Network, type Params } from "./network.js";
import type { ModelSpec } from "./spec.js";
import type { Dataset } from "../data/dataset.js";
import { specForModelArg } from "./resolve.js";

/** Largest typed array V8 allocates under Node 20 (elements). */
export const MAX_ARRAY_ELEMENTS = 2 ** 32;
const F32 = 4;
const YEAR = 365.25 * 86400;
/** Longer than any sensible run of this tool; GCX_TIME_LIMIT changes it. */
export const DEFAULT_TIME_LIMIT_S = 30 * 86400;

/** The limits, for --help of measure and train. */
export const BUDGET_HELP = `
Limits: before building the model, gcx estimates the memory the work needs (parameters; for training also
gradients and optimizer state; one batch's recorded forward pass with its gradients and, for the gc/flatness
penalties, double backprop; exact GC's Jacobians or the estimate's per-probe results; the logging measures) and
its compute (floating-point operations, timed on this machine), and refuses with the estimate when the memory
exceeds what is free, one array would exceed 2^32 numbers, or the time exceeds the limit. Environment overrides:
  GCX_MEMORY_LIMIT=8G   memory budget instead of the machine's free memory (K, M, G, T; binary units)
  GCX_TIME_LIMIT=1y     time limit instead of 30 days (s, m, h, d, w, y)
  GCX_NO_WASM=1         use the JavaScript kernels only (also the fallback when WebAssembly memory cannot be had)
  GCX_KERNELS=plain     SIMD128 kernels even where relaxed-SIMD fused multiply-add is available (--backend picks the engine)
  GCX_THREADS=1         one thread for the WebAssembly kernels (results are bit-identical with two)
`;

// ---------------------------------------------------------------------------------------------------------------
// Formatting and limits

export function formatBytes(b: number): string {
  if (!Number.isFinite(b)) return "more than any machine has";
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
  let i = 0;
  while (b >= 1024 && i < units.length - 1) {
    b /= 1024;
    i++;
  }
  return i === 0 ? `${Math.round(b)} bytes` : `${b >= 100 ? b.toFixed(0) : b.toFixed(1)} ${units[i]}`;
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "forever";
  if (s < 120) return `${s.toPrecision(2)} s`;
  if (s < 7200) return `${(s / 60).toFixed(0)} minutes`;
  if (s < 2 * 86400) return `${(s / 3600).toFixed(0)} hours`;
  if (s < YEAR) return `${(s / 86400).toPrecision(3)} days`;
  const y = s / YEAR;
  return `${y < 1e6 ? y.toPrecision(3) : y.toExponential(1)} years`;
}

const SIZE_UNITS: Record<string, number> = { "": 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** Parses a memory size: a number of bytes, or with a unit K, M, G, T (binary; KB, KiB and the like accepted). */
export function parseMemorySize(text: string, what = "GCX_MEMORY_LIMIT"): number {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  const bytes = m ? Number(m[1]) * SIZE_UNITS[m[2].toLowerCase()] : NaN;
  if (!Number.isFinite(bytes) || bytes <= 0)
    throw new UserError(`${what}="${text}" is not a memory size (e.g. 8G, 512M, 2.5GiB)`);
  return bytes;
}

const TIME_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 7 * 86400, y: YEAR };

/** Parses a duration: seconds, or with a unit s, m, h, d, w, y. */
export function parseDuration(text: string, what = "GCX_TIME_LIMIT"): number {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([smhdwy]?)\s*$/i.exec(text);
  const s = m ? Number(m[1]) * TIME_UNITS[(m[2] || "s").toLowerCase()] : NaN;
  if (!Number.isFinite(s) || s <= 0)
    throw new UserError(`${what}="${text}" is not a duration (e.g. 3600, 12h, 30d, 1y)`);
  return s;
}

export interface MemoryBudget {
  bytes: number;
  /** How the budget was set, for messages: "GCX_MEMORY_LIMIT=8G" or "this machine has 23.5 GiB; 11.8 GiB free". */
  describe: string;
}

export function memoryBudget(env: Record<string, string | undefined> = process.env): MemoryBudget {
  const set = env.GCX_MEMORY_LIMIT;
  if (set !== undefined && set.trim() !== "")
    return { bytes: parseMemorySize(set), describe: `GCX_MEMORY_LIMIT=${set.trim()}` };
  let total = totalmem();
  let free = freemem();
  const constrained = typeof process.constrainedMemory === "function" ? process.constrainedMemory() : 0;
  if (constrained && constrained > 0 && constrained < total) {
    total = constrained;
    free = Math.min(free, Math.max(0, constrained - process.memoryUsage.rss()));
  }
  return { bytes: free, describe: `this machine has ${formatBytes(total)}; ${formatBytes(free)} free` };
}

export function timeLimit(env: Record<string, string | undefined> = process.env): {
  seconds: number;
  describe: string;
} {
  const set = env.GCX_TIME_LIMIT;
  if (set !== undefined && set.trim() !== "")
    return { seconds: parseDuration(set), describe: `GCX_TIME_LIMIT=${set.trim()}` };
  return { seconds: DEFAULT_TIME_LIMIT_S, describe: "the limit is 30 days; GCX_TIME_LIMIT changes it" };
}

// ---------------------------------------------------------------------------------------------------------------
// What a network costs per example

export interface NetworkCost {
  params: number;
  /** Largest parameter tensor (numbers). */
  maxParam: number;
  inputSize: number;
  outputSize: number;
  /** Numbers a recorded forward pass keeps per example: layer outputs, masks, convolution patches. */
  actFloats: number;
  /** Largest single per-example tensor of the forward pass (numbers). */
  maxLayerFloats: number;
  /** MLPs: sum and maximum of the layer widths after the input. */
  sumWidths: number;
  maxWidth: number;
  /** Σ in·out over dense layers (MLP closed-form Jacobian work per output row). */
  denseMacs: number;
  /** Floating-point operations of one forward pass of one example. */
  flops: number;
}

export function networkCost(net: Network): NetworkCost {
  let params = 0,
    maxParam = 0;
  for (const p of net.params) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    params += n;
    maxParam = Math.max(maxParam, n);
  }
  if (net.graph) {
    const g = net.graph.cost;
    return {
      params,
      maxParam,
      inputSize: net.inputSize,
      outputSize: net.outputSize,
      actFloats: g.actFloats,
      maxLayerFloats: g.maxLayerFloats,
      sumWidths: 0,
      maxWidth: 0,
      denseMacs: 0,
      flops: g.flops,
    };
  }
  let act = 0,
    maxLayer = net.inputSize,
    flops = 0,
    sumWidths = 0,
    maxWidth = 0,
    denseMacs = 0;
  let size = net.inputSize;
  for (const l of net.layers) {
    switch (l.type) {
      case "dense":
        act += 2 * l.outSize; // product and bias sum
        flops += 2 * l.inSize * l.outSize + l.outSize;
        denseMacs += l.inSize * l.outSize;
        sumWidths += l.outSize;
        maxWidth = Math.max(maxWidth, l.outSize);
        size = l.outSize;
        maxLayer = Math.max(maxLayer, size);
        break;
      case "conv": {
        const [oh, ow, f] = l.outShape;
        const cols = oh * ow * l.kernel * l.kernel * l.inShape[2];
        size = oh * ow * f;
        act += cols + 2 * size;
        flops += 2 * cols * f + size;
        maxLayer = Math.max(maxLayer, cols, size);
        break;
      }
      case "act":
        act += 2 * size; // output and derivative mask
        flops += size;
        break;
      case "maxpool":
      case "avgpool": {
        const [h, w, c] = l.inShape;
        const oh = Math.floor((h - l.size) / l.stride) + 1,
          ow = Math.floor((w - l.size) / l.stride) + 1;
        size = oh * ow * c;
        const windows = l.size * l.size;
        act += l.type === "maxpool" ? 2 * size : (windows + 1) * size;
        flops += windows * size;
        break;
      }
      case "flatten":
        break;
    }
  }
  return {
    params,
    maxParam,
    inputSize: net.inputSize,
    outputSize: net.outputSize,
    actFloats: act,
    maxLayerFloats: maxLayer,
    sumWidths,
    maxWidth,
    denseMacs,
    flops,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Estimates

export interface Estimate {
  /** What the peak is reached doing, for messages: "one batch of 256". */
  context: string;
  /** Peak bytes, and the parts it is made of (largest first in messages). */
  bytes: number;
  parts: { what: string; bytes: number }[];
  /** Largest single array (numbers) and what it holds. */
  largest: { what: string; elements: number };
  /** Floating-point operations, and the number of passes (forward or backward, of a batch) they take. */
  flops: number;
  passes: number;
  /** What the work mostly is, for messages. */
  work?: string;
}

function estimate(
  context: string,
  parts: { what: string; bytes: number }[],
  arrays: { what: string; elements: number }[],
  flops: number,
  passes: number,
): Estimate {
  const bytes = parts.reduce((s, p) => s + p.bytes, 0);
  const largest = arrays.reduce((a, b) => (b.elements > a.elements ? b : a), { what: "", elements: 0 });
  return { context, bytes, parts, largest, flops, passes };
}

export type GCMethod =
  { method: "exact"; mode: "forward" | "reverse" | "auto" } | { method: "estimate"; probes: number };

export interface MeasureWork {
  /** Examples measured and the batch size. */
  n: number;
  batchSize: number;
  gc: GCMethod;
  /** --all: companion measures on this many examples (Hessian included). */
  companions?: number;
}

/** Memory of one batch of exact GC or its estimate, and the work over `n` examples. */
function gcParts(c: NetworkCost, net: Network, b: number, n: number, gc: GCMethod, label: string): Estimate {
  const batches = Math.ceil(n / b);
  const fwd = b * c.flops;
  const graph = { what: `the recorded forward pass and its gradients`, bytes: 2 * b * c.actFloats * F32 };
  if (gc.method === "estimate") {
    const p = gc.probes;
    return estimate(
      label,
      [graph, { what: `${p} probes' results`, bytes: p * (8 + b * F32 + 160) }],
      [
        { what: `per-probe sums`, elements: p },
        { what: `one layer of a batch`, elements: b * c.maxLayerFloats },
      ],
      batches * fwd * (1 + 2 * p),
      batches * (1 + p),
    );
  }
  const k = c.outputSize,
    d = c.inputSize;
  // auto picks forward mode when there are fewer inputs than outputs (measures/jacobian.ts cheaperMode).
  if (gc.mode === "forward" || (gc.mode === "auto" && d < k)) {
    const tangents = b * d * (d + 2 * c.maxLayerFloats);
    return estimate(
      label,
      [
        { what: `forward-mode tangents, batch × ${d} inputs`, bytes: tangents * F32 },
        { what: `the forward pass`, bytes: b * c.actFloats * F32 },
      ],
      [
        { what: `forward-mode tangents of one layer`, elements: b * d * c.maxLayerFloats },
        { what: `tangent seeds`, elements: b * d * d },
      ],
      batches * fwd * (1 + d),
      batches * 2,
    );
  }
  if (net.spec.kind === "mlp") {
    // Closed form: Δ [batch·k, width] per layer (two alive), the top Δ [batch, k, k], σ' of every hidden layer.
    const rows = b * k;
    const jac = 3 * rows * c.maxWidth + rows * k;
    return estimate(
      label,
      [
        { what: `Jacobians, batch × ${k} outputs × width ${c.maxWidth}`, bytes: jac * F32 },
        { what: `the forward pass`, bytes: (2 * b * c.sumWidths + c.maxParam) * F32 },
      ],
      [
        { what: `Jacobians of one layer`, elements: rows * c.maxWidth },
        { what: `output Jacobians`, elements: rows * k },
      ],
      batches * (fwd + 2 * rows * c.denseMacs),
      batches * (1 + net.layers.length),
    );
  }
  return estimate(
    label,
    [graph],
    [{ what: `one layer of a batch`, elements: b * c.maxLayerFloats }],
    batches * fwd * (1 + 2 * k),
    batches * (1 + k),
  );
}

function companionsParts(c: NetworkCost, m: number, label: string): Estimate {
  // Output gradients (k backward passes), the loss gradient, and 28 Hessian-vector products (double backprop).
  return estimate(
    label,
    [
      { what: `Hessian-vector products (double backprop)`, bytes: 5 * m * c.actFloats * F32 },
      { what: `parameter-sized vectors`, bytes: 6 * c.params * F32 },
    ],
    [{ what: `one layer`, elements: m * c.maxLayerFloats }],
    m * c.flops * (2 + 2 * c.outputSize + 3 + 28 * 6),
    2 + c.outputSize + 28 * 3,
  );
}

const modelParts = (c: NetworkCost, copies: number, what: string) => [{ what, bytes: copies * c.params * F32 }];
const paramArrays = (c: NetworkCost) => [{ what: "the largest parameter tensor", elements: c.maxParam }];

export function estimateMeasure(net: Network, w: MeasureWork): Estimate {
  const c = networkCost(net);
  const b = Math.max(1, Math.min(w.batchSize, w.n));
  const gc = gcParts(c, net, b, w.n, w.gc, `one batch of ${b}`);
  const comp = w.companions ? companionsParts(c, w.companions, `companion measures on ${w.companions} examples`) : null;
  const work = comp && comp.bytes > gc.bytes ? comp : gc;
  return estimate(
    `its parameters and ${work.context}`,
    [...modelParts(c, 1, "parameters"), ...work.parts],
    [...paramArrays(c), gc.largest, ...(comp ? [comp.largest] : [])],
    gc.flops + (comp?.flops ?? 0),
    gc.passes + (comp?.passes ?? 0),
  );
}

/** What a training run does; TrainConfig satisfies it. */
export interface TrainWork {
  batchSize: number;
  optimizer: "sgd" | "adam";
  momentum: number;
  gc: number;
  gcProbes: number;
  flatness: number;
  logEvery: number;
  evalSize: number;
  gcSize: number;
  measures: readonly string[];
}

export function estimateTraining(net: Network, w: TrainWork, trainN: number, testN: number, steps: number): Estimate {
  const c = networkCost(net);
  const b = Math.max(1, Math.min(w.batchSize, trainN));
  const k = c.outputSize;
  const optCopies = w.optimizer === "adam" ? 2 : w.momentum > 0 ? 1 : 0;
  // The step: a recorded forward pass and its gradients, plus what the penalties record for double backprop.
  // (Calibrated against peak RSS: a recorded graph and its gradients take about 2 forward passes' outputs; each
  // recorded backward pass of the penalties about one more.)
  let graphs = 2,
    stepFactor = 3;
  if (w.gc > 0) {
    const passes = w.gcProbes > 0 ? w.gcProbes : k;
    graphs += passes;
    stepFactor += 6 * passes;
  }
  if (w.flatness > 0) {
    graphs += 2;
    stepFactor += 6;
  }
  const stepBytes = graphs * b * c.actFloats * F32 + (w.flatness > 0 ? 2 * c.params * F32 : 0);
  // Each log: loss and accuracy on the evaluation sets, exact GC on the GC sets, the companion measures.
  const evalN = Math.min(w.evalSize, trainN) + Math.min(w.evalSize, testN);
  const gcN = Math.min(w.gcSize, trainN);
  const gcEval = gcParts(
    c,
    net,
    Math.min(256, gcN),
    gcN,
    { method: "exact", mode: "auto" },
    `GC logging on ${gcN} examples`,
  );
  const comp =
    w.measures.includes("hessian") || w.measures.includes("hessian-trace")
      ? companionsParts(c, gcN, `companion measures on ${gcN} examples`)
      : null;
  const lossEval = {
    what: `the loss of ${Math.min(w.evalSize, Math.max(trainN, testN))} examples at once`,
    bytes: 3 * Math.min(w.evalSize, Math.max(trainN, testN)) * c.maxLayerFloats * F32,
  };
  const sum = (p: { bytes: number }[]) => p.reduce((s, q) => s + q.bytes, 0);
  const evals: [string, { what: string; bytes: number }[]][] = [
    [gcEval.context, gcEval.parts],
    [comp?.context ?? "", comp?.parts ?? []],
    [`loss logging on ${evalN} examples`, [lossEval]],
  ];
  const [evalContext, evalParts] = evals.reduce((a, p) => (sum(p[1]) > sum(a[1]) ? p : a));
  const stepPart = {
    what: `the recorded forward pass and its gradients${w.gc > 0 || w.flatness > 0 ? ", with double backprop for the penalties" : ""}`,
    bytes: stepBytes,
  };
  const evalBytes = evalParts.reduce((s, q) => s + q.bytes, 0);
  const logs = Math.floor(steps / w.logEvery) + 2;
  const measureFactor =
    (w.measures.includes("output-grad") ? 1 + 2 * k : 0) + (w.measures.includes("loss-grad") ? 3 : 0);
  const evalFlops = 2 * gcEval.flops + evalN * c.flops + gcN * c.flops * measureFactor + (comp?.flops ?? 0);
  const stepFlops = steps * b * c.flops * stepFactor;
  const e = estimate(
    stepBytes >= evalBytes
      ? `its parameters and one training step on a batch of ${b}`
      : `its parameters and ${evalContext}`,
    [
      ...modelParts(
        c,
        4 + optCopies,
        `parameters, gradients and updates${optCopies ? ` and ${w.optimizer} state` : ""}`,
      ),
      ...(stepBytes >= evalBytes ? [stepPart] : evalParts),
    ],
    [
      ...paramArrays(c),
      { what: `one layer of a batch of ${b}`, elements: b * c.maxLayerFloats },
      gcEval.largest,
      ...(comp ? [comp.largest] : []),
    ],
    stepFlops + logs * evalFlops,
    steps * 2 + logs * (gcEval.passes + 4),
  );
  e.work =
    stepFlops >= logs * evalFlops
      ? `${steps} steps on batches of ${b}`
      : `mostly the logging every ${w.logEvery} steps: GC and --measures on ${gcN} examples, ${k} outputs`;
  return e;
}

// ---------------------------------------------------------------------------------------------------------------
// Checks

export interface CheckOptions {
  env?: Record<string, string | undefined>;
  /** What the user can change, for the messages: "use a smaller model or --batch-size". */
  memoryAdvice: string;
  timeAdvice: string;
  /** Skips the time check (tests of the memory rule). */
  skipTime?: boolean;
}

/**
 * Refuses (UserError, one line naming the estimate) work whose memory does not fit the budget, whose largest array
 * exceeds what JavaScript can allocate, or whose estimated time exceeds the time limit.
 */
export function checkBudget(net: Network, name: string, e: Estimate, opts: CheckOptions): void {
  const budget = memoryBudget(opts.env);
  if (!(e.bytes <= budget.bytes)) {
    // The two largest parts, and the parameters (the first part) always: they are what "a smaller model" changes.
    const top = [...e.parts]
      .sort((a, b) => b.bytes - a.bytes)
      .filter((p) => p.bytes > 0)
      .slice(0, 2);
    if (e.parts[0] && !top.includes(e.parts[0])) top.push(e.parts[0]);
    const what = top.map((p) => `${p.what}: ${formatBytes(p.bytes)}`).join("; ");
    throw new UserError(
      `${name} needs about ${formatBytes(e.bytes)} for ${e.context} (${what}; ${budget.describe}); ${opts.memoryAdvice}`,
    );
  }
  if (!(e.largest.elements <= MAX_ARRAY_ELEMENTS)) {
    throw new UserError(
      `${name} needs one array of ${e.largest.elements.toExponential(2)} numbers (${e.largest.what}) for ${e.context}, more than JavaScript allows (${MAX_ARRAY_ELEMENTS.toExponential(2)}); ${opts.memoryAdvice}`,
    );
  }
  if (opts.skipTime) return;
  const limit = timeLimit(opts.env);
  // Optimistic (200 GFLOP/s, no overhead) and pessimistic (50 MFLOP/s, 20 ms a pass) bounds first; calibrate only between.
  const optimistic = e.flops / 2e11;
  const pessimistic = e.flops / 5e7 + e.passes * 0.02;
  if (pessimistic <= limit.seconds) return;
  const seconds = optimistic > limit.seconds ? optimistic : e.flops * secondsPerFlop(net);
  if (seconds > limit.seconds) {
    throw new UserError(
      `${name} would take ${optimistic > limit.seconds ? "at least" : "about"} ${formatSeconds(seconds)} on this machine (${e.work ? `${e.work}, ` : ""}about ${e.flops.toExponential(1)} floating-point operations; ${limit.describe}); ${opts.timeAdvice}`,
    );
  }
}

/**
 * Refuses one plain allocation (e.g. generating a synthetic data set) that exceeds the memory budget or the
 * typed-array length limit: `what` names it in the message ("moons with --size 1e10").
 */
export function checkAllocation(
  what: string,
  bytes: number,
  largestElements: number,
  advice: string,
  env?: Record<string, string | undefined>,
): void {
  const budget = memoryBudget(env);
  if (!(bytes <= budget.bytes))
    throw new UserError(`${what} needs about ${formatBytes(bytes)} (${budget.describe}); ${advice}`);
  if (!(largestElements <= MAX_ARRAY_ELEMENTS)) {
    throw new UserError(
      `${what} needs one array of ${largestElements.toExponential(2)} numbers, more than JavaScript allows (${MAX_ARRAY_ELEMENTS.toExponential(2)}); ${advice}`,
    );
  }
}

/** Throughput assumed, without measuring, for models too large to calibrate on a copy (FLOP/s). */
const ASSUMED_RATE = 2e10;

/**
 * Seconds per floating-point operation of a forward and backward pass of this network here, measured on a batch of
 * at most 128 examples and about 3·10⁷ operations (the median of three, after a warm-up). Models over 256 MiB of
 * parameters are not copied for this: their large products run at about ASSUMED_RATE.
 */
export function secondsPerFlop(net: Network): number {
  const c = networkCost(net);
  if (c.params * F32 > 256 * 2 ** 20) return 1 / ASSUMED_RATE;
  const b = Math.max(1, Math.min(128, Math.floor(3e7 / Math.max(1, c.flops))));
  const params: Params = {};
  for (const p of net.params) {
    const n = p.shape.reduce((a, v) => a * v, 1);
    params[p.name] = new Tensor(
      new Float32Array(n).fill(p.kind === "bias" ? 0 : 1 / Math.sqrt(p.fanIn)),
      p.shape,
    ).variable();
  }
  const xData = new Float32Array(b * c.inputSize);
  for (let i = 0; i < xData.length; i++) xData[i] = ((i * 7919) % 101) / 101 - 0.5;
  const x = new Tensor(xData, [b, c.inputSize]);
  const times: number[] = [];
  for (let r = 0; r < 4; r++) {
    const t0 = performance.now();
    const y = forward(net, params, x);
    grad(op.sum(y), Object.values(params));
    times.push((performance.now() - t0) / 1000);
  }
  times.shift(); // warm-up
  times.sort((a, b2) => a - b2);
  return times[1] / (3 * b * c.flops);
}

/** Convenience: compile the spec (no allocation) and check a measurement. */
export function checkMeasureBudget(spec: ModelSpec, name: string, w: MeasureWork, opts: CheckOptions): Estimate {
  const net = compileNetwork(spec);
  const e = estimateMeasure(net, w);
  checkBudget(net, name, e, opts);
  return e;
}

export function checkTrainingBudget(
  spec: ModelSpec,
  name: string,
  w: TrainWork,
  trainN: number,
  testN: number,
  steps: number,
  opts: CheckOptions,
): Estimate {
  if (!Number.isSafeInteger(steps) || steps < 1) {
    throw new UserError(
      `${name}: ${steps} training steps is beyond what can be counted exactly (${Number.MAX_SAFE_INTEGER}); use fewer --steps or --epochs`,
    );
  }
  const net = compileNetwork(spec);
  const e = estimateTraining(net, w, trainN, testN, steps);
  checkBudget(net, name, e, opts);
  return e;
}

/** A short name for a model in messages: mlp:2-256-2, or cnn (N parameters). */
export function modelName(spec: ModelSpec): string {
  if (spec.kind === "mlp") return `mlp:${spec.sizes.join("-")}`;
  const c = networkCost(compileNetwork(spec));
  return `${spec.kind} (${c.params.toExponential(2)} parameters)`;
}

/**
 * The training run's check, for the trainer's set-up: resolves the model argument to its architecture (nothing
 * allocated) and refuses a run that cannot fit or finish.
 */
export function checkTrainingRun(
  model: string | Record<string, unknown> | undefined,
  w: TrainWork,
  train: Dataset,
  test: Dataset,
  steps: number,
): void {
  const spec = specForModelArg(model, train);
  checkTrainingBudget(spec, modelName(spec), w, train.n, test.n, steps, {
    memoryAdvice: "use a smaller model, --batch-size, --eval-size or --gc-size",
    timeAdvice: "use fewer --steps or --epochs, a larger --log-every, fewer --measures, or a smaller model",
  });
}
