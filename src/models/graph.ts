/**
 * Graph models: compile a GraphSpec (graphSpec.ts) into per-node shapes and parameter descriptions, and run the
 * forward pass with engine ops (differentiable to any order, like every other model).
 *
 * Shapes in the spec and in files follow PyTorch (NCHW, conv weights [out, in/groups, kh, kw]); inside the engine
 * images are NHWC and conv weights [out, kh, kw, in/groups]. The flattened input vector of one example is in the
 * spec's input order (C, H, W); `flatten` produces PyTorch's (C, H, W) order.
 */
import { Tensor, hostValues, toStorage } from "../engine/tensor.js";
import type { Storage } from "../engine/storage.js";
import * as op from "../engine/ops.js";
import * as sp from "../engine/spatial.js";
import * as ew from "../engine/elementwise.js";
import { UserError } from "../util/errors.js";
import type { GraphNodeSpec, GraphSpec } from "./graphSpec.js";
import type { ParamInfo, Params } from "./params.js";

export interface CompiledNode {
  spec: GraphNodeSpec;
  /** Indices of the input values (0 is the graph input; node i produces value i + 1). */
  inputs: number[];
  /** One example's output shape in PyTorch order: [C, H, W] or [F]. */
  shape: number[];
}

export interface GraphCost {
  /** Numbers a recorded forward pass keeps per example (outputs, masks, convolution patches). */
  actFloats: number;
  /** Largest per-example tensor. */
  maxLayerFloats: number;
  /** Floating-point operations of one forward pass of one example. */
  flops: number;
}

export interface CompiledGraph {
  inputShape: number[];
  nodes: CompiledNode[];
  /** Index into `nodes` of the output node. */
  output: number;
  cost: GraphCost;
  /** Whether the graph is a plain chain of conv/linear layers and activations (the T1/T2 bounds then apply). */
  hasNormalization: boolean;
  hasBranches: boolean;
}

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Compiles a graph spec; a structural mistake is a one-line UserError naming the node. */
export function compileGraph(spec: GraphSpec): {
  graph: CompiledGraph;
  params: ParamInfo[];
  inputSize: number;
  outputSize: number;
} {
  const index = new Map<string, number>([["input", 0]]);
  const shapes: number[][] = [[...spec.input]];
  const nodes: CompiledNode[] = [];
  const params: ParamInfo[] = [];
  let act = 0,
    flops = 0,
    maxLayer = prod(spec.input);
  let hasNormalization = false;
  const uses = new Map<number, number>();
  for (const [pos, n] of spec.nodes.entries()) {
    const where = `nodes.${pos} ("${n.name}", ${n.op})`;
    const fail = (why: string): never => {
      throw new UserError(`model: ${where}: ${why}`);
    };
    if (index.has(n.name)) fail(`the name "${n.name}" is used twice`);
    const inputs = n.inputs.map((i) => {
      const at = index.get(i);
      if (at === undefined) fail(`input "${i}" is not an earlier node (nodes must be listed in order)`);
      uses.set(at!, (uses.get(at!) ?? 0) + 1);
      return at!;
    });
    const ins = inputs.map((i) => shapes[i]);
    const one = () => {
      if (ins.length !== 1) fail(`takes exactly one input, got ${ins.length}`);
      return ins[0];
    };
    const image = () => {
      const s = one();
      if (s.length !== 3) fail(`needs an image input [C, H, W], got [${s}]`);
      return s as [number, number, number];
    };
    const weight = (suffix: string, shape: number[], fanIn: number, fanOut: number, kind: ParamInfo["kind"]) =>
      params.push({ name: `${n.name}.${suffix}`, shape, fanIn, fanOut, kind });
    let out: number[];
    switch (n.op) {
      case "conv2d": {
        const [c, h, w] = image();
        if (c % n.groups !== 0 || n.out % n.groups !== 0)
          fail(`groups ${n.groups} must divide the input channels ${c} and outputs ${n.out}`);
        const [kh, kw] = n.kernel,
          [sh, sw] = n.stride,
          [dh, dw] = n.dilation,
          [t, l, b, r] = n.padding;
        const oh = Math.floor((h + t + b - dh * (kh - 1) - 1) / sh) + 1;
        const ow = Math.floor((w + l + r - dw * (kw - 1) - 1) / sw) + 1;
        if (oh <= 0 || ow <= 0)
          fail(`kernel ${kh}x${kw} (dilation ${dh}x${dw}) does not fit the padded ${h}x${w} input`);
        const cg = c / n.groups,
          k2 = kh * kw;
        weight("weight", [n.out, kh, kw, cg], cg * k2, n.out * k2, "weight");
        if (n.bias) weight("bias", [n.out], cg * k2, n.out * k2, "bias");
        out = [n.out, oh, ow];
        const cols = oh * ow * k2 * c;
        act += cols + 2 * prod(out);
        flops += 2 * oh * ow * k2 * cg * n.out;
        maxLayer = Math.max(maxLayer, cols);
        break;
      }
      case "linear": {
        const s = one();
        if (s.length !== 1) fail(`needs a vector input [F], got [${s}] (add a flatten node)`);
        weight("weight", [n.out, s[0]], s[0], n.out, "weight");
        if (n.bias) weight("bias", [n.out], s[0], n.out, "bias");
        out = [n.out];
        act += 2 * n.out;
        flops += 2 * s[0] * n.out;
        break;
      }
      case "batchnorm": {
        const s = one();
        const c = s[0];
        weight("weight", [c], c, c, "scale");
        weight("bias", [c], c, c, "shift");
        weight("running_mean", [c], c, c, "buffer");
        weight("running_var", [c], c, c, "buffer");
        weight("num_batches_tracked", [], 1, 1, "buffer");
        hasNormalization = true;
        out = [...s];
        act += 3 * prod(s);
        flops += 4 * prod(s);
        break;
      }
      case "layernorm": {
        const s = one();
        if (s.length !== 1) fail(`normalizes a vector [F]; got [${s}]`);
        weight("weight", [s[0]], s[0], s[0], "scale");
        weight("bias", [s[0]], s[0], s[0], "shift");
        hasNormalization = true;
        out = [...s];
        act += 4 * s[0];
        flops += 8 * s[0];
        break;
      }
      case "maxpool2d":
      case "avgpool2d": {
        const [c, h, w] = image();
        const [kh, kw] = n.kernel,
          [sh, sw] = n.stride ?? n.kernel,
          [t, l, b, r] = n.padding;
        const oh = Math.floor((h + t + b - kh) / sh) + 1,
          ow = Math.floor((w + l + r - kw) / sw) + 1;
        if (oh <= 0 || ow <= 0) fail(`window ${kh}x${kw} does not fit the padded ${h}x${w} input`);
        if (t >= kh || b >= kh || l >= kw || r >= kw) fail(`padding must be smaller than the window`);
        out = [c, oh, ow];
        act += (n.op === "maxpool2d" ? 2 : kh * kw + 1) * prod(out);
        flops += kh * kw * prod(out);
        break;
      }
      case "global_avgpool": {
        const [c, h, w] = image();
        out = [c, 1, 1];
        act += c;
        flops += c * h * w;
        break;
      }
      case "flatten":
        out = [prod(one())];
        act += out[0];
        break;
      case "add": {
        if (ins.length < 2) fail(`adds two or more inputs, got ${ins.length}`);
        for (const s of ins.slice(1))
          if (s.join() !== ins[0].join()) fail(`input shapes differ: [${ins[0]}] and [${s}]`);
        out = [...ins[0]];
        act += prod(out);
        flops += (ins.length - 1) * prod(out);
        break;
      }
      case "concat": {
        if (ins.length < 2) fail(`concatenates two or more inputs, got ${ins.length}`);
        for (const s of ins.slice(1))
          if (s.length !== ins[0].length || s.slice(1).join() !== ins[0].slice(1).join())
            fail(`inputs [${ins[0]}] and [${s}] differ outside the channel dimension`);
        out = [ins.reduce((a, s) => a + s[0], 0), ...ins[0].slice(1)];
        act += prod(out);
        break;
      }
      default: {
        // Activations and dropout keep the shape.
        out = [...one()];
        act += 2 * prod(out);
        flops += prod(out);
      }
    }
    if (!Number.isSafeInteger(prod(out)) || prod(out) <= 0) fail(`output shape [${out}] is not a valid size`);
    maxLayer = Math.max(maxLayer, prod(out));
    index.set(n.name, shapes.length);
    shapes.push(out);
    nodes.push({ spec: n, inputs, shape: out });
  }
  const output = index.get(spec.output);
  if (output === undefined || output === 0) throw new UserError(`model: output "${spec.output}" is not a node`);
  const outShape = shapes[output];
  if (outShape.length !== 1)
    throw new UserError(
      `model: output "${spec.output}" has shape [${outShape}]; the logits must be a vector (add a flatten or linear node)`,
    );
  const hasBranches = [...uses.values()].some((u) => u > 1) || nodes.some((n) => n.inputs.length > 1);
  const graph: CompiledGraph = {
    inputShape: [...spec.input],
    nodes,
    output: output - 1,
    cost: { actFloats: act, maxLayerFloats: maxLayer, flops },
    hasNormalization,
    hasBranches,
  };
  return { graph, params, inputSize: prod(spec.input), outputSize: outShape[0] };
}

/** How a graph model runs: inference (default; BatchNorm uses running statistics) or training mode. */
export interface GraphRunOptions {
  /** BatchNorm with batch statistics (training mode) instead of running statistics. */
  training?: boolean;
  /**
   * Training mode: treat the batch mean and variance as constants (stop-gradient), so each example's input Jacobian
   * involves only itself (used by the GC penalty; docs/decisions/0005-graph-models.md).
   */
  detachBatchStats?: boolean;
  /** Training mode: receives each BatchNorm's batch statistics (biased variance) and the number of values per channel. */
  onBatchStats?(node: string, mean: Tensor, variance: Tensor, count: number): void;
  /** Training mode: draws dropout masks (inverted dropout, as PyTorch); without it dropout is the identity. */
  dropoutRng?: {
    /** A uniform draw in [0, 1). */
    uniform(): number;
  };
}

/** Internal layout of one node's value: [N, H, W, C] for images, [N, F] for vectors. */
function toInternal(x: Tensor, shape: readonly number[]): Tensor {
  const n = x.shape[0];
  if (shape.length === 1) return x.shape.length === 2 ? x : op.reshape(x, [n, shape[0]]);
  const [c, h, w] = shape;
  const nchw = op.reshape(x, [n, c, h, w]);
  return c === 1 ? op.reshape(nchw, [n, h, w, 1]) : sp.permute(nchw, [0, 2, 3, 1]);
}

/**
 * Inference-mode fusions of a graph: a conv2d whose only consumer is a BatchNorm (and that BatchNorm's only consumer,
 * when it is a ReLU): conv index → the BatchNorm's and ReLU's node indices (−1: none). The BatchNorm folds into the
 * convolution's weights and bias (running statistics are constants in inference), and the bias and the ReLU ride on
 * the convolution kernel (spatial.ts `conv2dBiasAct`): one pass instead of three.
 */
interface ConvFold {
  bn: number;
  relu: number;
}

const foldsOf = new WeakMap<CompiledGraph, Map<number, ConvFold>>();

function convFolds(g: CompiledGraph): Map<number, ConvFold> {
  let folds = foldsOf.get(g);
  if (folds) return folds;
  folds = new Map();
  // consumers[v]: the nodes reading value v (value 0 is the input, value i + 1 node i's output).
  const consumers: number[][] = Array.from({ length: g.nodes.length + 1 }, () => []);
  g.nodes.forEach((node, i) => node.inputs.forEach((v) => consumers[v].push(i)));
  const only = (i: number): number => (consumers[i + 1].length === 1 && g.output !== i ? consumers[i + 1][0] : -1);
  g.nodes.forEach((node, i) => {
    if (node.spec.op !== "conv2d") return;
    const bn = only(i);
    if (bn < 0 || g.nodes[bn].spec.op !== "batchnorm") return;
    const next = only(bn);
    folds.set(i, { bn, relu: next >= 0 && g.nodes[next].spec.op === "relu" ? next : -1 });
  });
  foldsOf.set(g, folds);
  return folds;
}

/** How many conv2d → BatchNorm [→ ReLU] chains inference mode runs as one convolution (diagnostics and tests). */
export function inferenceFusions(g: CompiledGraph): number {
  return convFolds(g).size;
}

/** Logits [N, outputs] for inputs [N, inputSize]. */
export function graphForward(g: CompiledGraph, params: Params, x: Tensor, opts: GraphRunOptions = {}): Tensor {
  const values: Tensor[] = [toInternal(x, g.inputShape)];
  const p = (name: string) => {
    const t = params[name];
    if (!t) throw new RangeError(`graph: missing parameter ${name}`);
    return t;
  };
  const folds = opts.training ? null : convFolds(g);
  /** Nodes computed by a fold: their value is the fused convolution's (nothing else reads what they skip). */
  const folded = new Map<number, Tensor>();
  for (const [i, node] of g.nodes.entries()) {
    const n = node.spec;
    const a = values[node.inputs[0]];
    const done = folded.get(i);
    if (done) {
      values.push(done);
      continue;
    }
    const fold = folds?.get(i);
    if (fold && n.op === "conv2d") {
      const y = foldedConv(n, g.nodes[fold.bn].spec, a, p, fold.relu >= 0);
      folded.set(fold.bn, y);
      if (fold.relu >= 0) folded.set(fold.relu, y);
      values.push(y);
      continue;
    }
    let y: Tensor;
    switch (n.op) {
      case "conv2d":
        y = sp.conv2dGeneral(a, p(`${n.name}.weight`), {
          stride: n.stride,
          padding: n.padding,
          dilation: n.dilation,
          groups: n.groups,
        });
        if (n.bias) y = op.add(y, p(`${n.name}.bias`));
        break;
      case "linear":
        y = op.matmul(a, p(`${n.name}.weight`), false, true);
        if (n.bias) y = op.add(y, p(`${n.name}.bias`));
        break;
      case "batchnorm": {
        let mean: Tensor, variance: Tensor;
        if (opts.training && !opts.detachBatchStats) {
          // Batch statistics differentiated through: one fused op (elementwise.batchNormTraining).
          const bn = ew.batchNormTraining(a, p(`${n.name}.weight`), p(`${n.name}.bias`), n.eps);
          opts.onBatchStats?.(n.name, bn.mean, bn.variance, a.size / a.shape[a.shape.length - 1]);
          y = bn.y;
          break;
        }
        if (opts.training) {
          const m = ew.channelMoments(a);
          opts.onBatchStats?.(n.name, m.mean, m.variance, a.size / a.shape[a.shape.length - 1]);
          mean = opts.detachBatchStats ? ew.stopGradient(m.mean) : m.mean;
          variance = opts.detachBatchStats ? ew.stopGradient(m.variance) : m.variance;
        } else {
          mean = p(`${n.name}.running_mean`);
          variance = p(`${n.name}.running_var`);
        }
        y = ew.batchNorm(a, mean, variance, p(`${n.name}.weight`), p(`${n.name}.bias`), n.eps);
        break;
      }
      case "layernorm":
        y = ew.layerNorm(a, p(`${n.name}.weight`), p(`${n.name}.bias`), n.eps);
        break;
      case "maxpool2d":
        y = sp.maxPool2dGeneral(a, { kernel: n.kernel, stride: n.stride ?? n.kernel, padding: n.padding });
        break;
      case "avgpool2d":
        y = sp.avgPool2dGeneral(a, {
          kernel: n.kernel,
          stride: n.stride ?? n.kernel,
          padding: n.padding,
          countIncludePad: n.countIncludePad,
        });
        break;
      case "global_avgpool":
        y = sp.globalAvgPool(a);
        break;
      case "flatten": {
        const batch = a.shape[0];
        // PyTorch flattens (C, H, W); engine images are (H, W, C).
        const nchw =
          a.shape.length === 4 && a.shape[3] > 1 && a.shape[1] * a.shape[2] > 1 ? sp.permute(a, [0, 3, 1, 2]) : a;
        y = op.reshape(nchw, [batch, a.size / batch]);
        break;
      }
      case "add":
        y = node.inputs.slice(1).reduce((acc, i) => op.add(acc, values[i]), a);
        break;
      case "concat":
        y = sp.concatChannels(node.inputs.map((i) => values[i]));
        break;
      case "relu":
        y = op.relu(a);
        break;
      case "tanh":
        y = op.tanh(a);
        break;
      case "sigmoid":
        y = ew.sigmoid(a);
        break;
      case "silu":
        y = ew.silu(a);
        break;
      case "leaky_relu":
        y = ew.leakyRelu(a, n.alpha);
        break;
      case "gelu":
        y = ew.gelu(a, n.approximate);
        break;
      case "softplus":
        y = ew.softplus(a, n.beta, n.threshold);
        break;
      case "identity":
        y = a;
        break;
      case "dropout":
        y = opts.training && opts.dropoutRng && n.p > 0 ? op.mulConst(a, dropoutMask(a, n.p, opts.dropoutRng)) : a;
        break;
    }
    values.push(y);
  }
  const out = values[g.output + 1];
  return out.shape.length === 2 ? out : op.reshape(out, [out.shape[0], out.size / out.shape[0]]);
}

/**
 * conv2d → BatchNorm (running statistics) [→ ReLU] as one convolution: with k = γ/√(var + eps) per output channel,
 * weights w·k and bias β − mean·k (+ the convolution's own bias·k). The same function as the three nodes (rounding
 * differs in the last float32 bits), differentiable in the input and every parameter through the folding ops.
 */
function foldedConv(
  n: Extract<GraphNodeSpec, { op: "conv2d" }>,
  bn: GraphNodeSpec,
  a: Tensor,
  p: (name: string) => Tensor,
  relu: boolean,
): Tensor {
  if (bn.op !== "batchnorm") throw new Error(`graph: ${bn.name} is not a BatchNorm`);
  const w = p(`${n.name}.weight`);
  const cout = w.shape[0];
  const k = ew.mulB(p(`${bn.name}.weight`), ew.powScalar(op.affine(p(`${bn.name}.running_var`), 1, bn.eps), -0.5));
  const wk = ew.mulB(w, op.reshape(k, [cout, 1, 1, 1]));
  let bias = ew.subB(p(`${bn.name}.bias`), ew.mulB(p(`${bn.name}.running_mean`), k));
  if (n.bias) bias = ew.addB(bias, ew.mulB(p(`${n.name}.bias`), k));
  const o = { stride: n.stride, padding: n.padding, dilation: n.dilation, groups: n.groups };
  return sp.conv2dBiasAct(a, wk, bias, o, relu ? "relu" : "none");
}

/** PyTorch's inverted dropout mask: 0 with probability p, else 1/(1 − p) (all zeros when p = 1). */
function dropoutMask(a: Tensor, p: number, rng: { uniform(): number }): Storage {
  const mask = hostValues(a.dtype, a.size);
  const keep = p >= 1 ? 0 : 1 / (1 - p);
  for (let i = 0; i < mask.length; i++) mask[i] = rng.uniform() < p ? 0 : keep;
  return toStorage(mask); // host-drawn noise is uploaded on a device backend (an upload, not a read-back)
}
