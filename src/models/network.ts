/**
 * A network compiled from its spec: the ordered layers, parameter names and shapes, and the forward pass written
 * with engine ops (so it is differentiable to any order in inputs and parameters).
 *
 * Parameters are named `layers.{i}.weight` / `layers.{i}.bias`, i counting the dense and conv layers from 0.
 * In memory a dense weight is [out, in] (PyTorch nn.Linear) and a conv weight is [out, kh, kw, in] (so a conv is
 * one matmul on NHWC patches); files store conv weights as PyTorch's [out, in, kh, kw] (see io.ts).
 */
import { Tensor, allocLike, type Data } from "../engine/tensor.js";
import type { Storage } from "../engine/storage.js";
import * as op from "../engine/ops.js";
import * as ew from "../engine/elementwise.js";
import { onDevice } from "../engine/backend.js";
import { noGrad } from "../engine/graph.js";
import type { Activation, ModelSpec } from "./spec.js";
import { UserError } from "../util/errors.js";
import { erfScalar, maxPoolArgmax, windowGeometry } from "../engine/kernels.js";
import { compileGraph, graphForward, type CompiledGraph, type GraphRunOptions } from "./graph.js";
import type { ParamInfo, Params } from "./params.js";

export type { ParamInfo, Params } from "./params.js";

/** One step of a chain model (`mlp`, `cnn`) as compiled: dense, conv, activation, pooling or flatten. */
export type Layer =
  | { type: "dense"; index: number; inSize: number; outSize: number }
  | {
      type: "conv";
      index: number;
      inShape: [number, number, number];
      outShape: [number, number, number];
      kernel: number;
      stride: number;
      padding: "same" | "valid";
    }
  | { type: "act"; fn: Activation }
  | { type: "maxpool" | "avgpool"; size: number; stride: number; inShape: [number, number, number] }
  | { type: "flatten" };

/** A compiled model: its layers (chains) or graph, input and output sizes and the parameters it expects. */
export interface Network {
  readonly spec: ModelSpec;
  readonly layers: readonly Layer[];
  readonly inputSize: number;
  readonly outputSize: number;
  readonly params: readonly ParamInfo[];
  /** Graph models (kind "graph"); chains (mlp, cnn) leave it undefined. */
  readonly graph?: CompiledGraph;
}

/** Compiles a validated model description into a {@link Network} (shapes checked, parameters listed). */
export function compileNetwork(spec: ModelSpec): Network {
  if (spec.kind === "graph") {
    const c = compileGraph(spec);
    return { spec, layers: [], inputSize: c.inputSize, outputSize: c.outputSize, params: c.params, graph: c.graph };
  }
  const layers: Layer[] = [];
  const params: ParamInfo[] = [];
  let index = 0;
  const addDense = (inSize: number, outSize: number) => {
    layers.push({ type: "dense", index, inSize, outSize });
    params.push({
      name: `layers.${index}.weight`,
      shape: [outSize, inSize],
      fanIn: inSize,
      fanOut: outSize,
      kind: "weight",
    });
    params.push({ name: `layers.${index}.bias`, shape: [outSize], fanIn: inSize, fanOut: outSize, kind: "bias" });
    index++;
  };
  if (spec.kind === "mlp") {
    const s = spec.sizes;
    for (let l = 0; l + 1 < s.length; l++) {
      addDense(s[l], s[l + 1]);
      if (l + 2 < s.length && spec.activation !== "identity") layers.push({ type: "act", fn: spec.activation });
    }
    return { spec, layers, inputSize: s[0], outputSize: s[s.length - 1], params };
  }
  // CNN: track the shape through the layers. Before flatten it is [h, w, c]; after, a flat size.
  let image: [number, number, number] | null = [spec.input[0], spec.input[1], spec.input[2]];
  let flat = 0;
  for (const [pos, l] of spec.layers.entries()) {
    const where = `layers.${pos} (${l.type})`;
    switch (l.type) {
      case "conv": {
        if (!image) throw new UserError(`model: ${where} comes after flatten/dense`);
        const [h, w, c] = image;
        const outH = l.padding === "same" ? Math.ceil(h / l.stride) : Math.floor((h - l.kernel) / l.stride) + 1;
        const outW = l.padding === "same" ? Math.ceil(w / l.stride) : Math.floor((w - l.kernel) / l.stride) + 1;
        if (outH <= 0 || outW <= 0)
          throw new UserError(`model: ${where} kernel ${l.kernel} does not fit a ${h}x${w} input`);
        const outShape: [number, number, number] = [outH, outW, l.filters];
        layers.push({
          type: "conv",
          index,
          inShape: image,
          outShape,
          kernel: l.kernel,
          stride: l.stride,
          padding: l.padding,
        });
        const k2 = l.kernel * l.kernel;
        params.push({
          name: `layers.${index}.weight`,
          shape: [l.filters, l.kernel, l.kernel, c],
          fanIn: c * k2,
          fanOut: l.filters * k2,
          kind: "weight",
        });
        params.push({
          name: `layers.${index}.bias`,
          shape: [l.filters],
          fanIn: c * k2,
          fanOut: l.filters * k2,
          kind: "bias",
        });
        index++;
        image = outShape;
        break;
      }
      case "maxpool":
      case "avgpool": {
        if (!image) throw new UserError(`model: ${where} comes after flatten/dense`);
        const stride = l.stride ?? l.size;
        const [h, w, c]: [number, number, number] = image;
        const outH: number = Math.floor((h - l.size) / stride) + 1;
        const outW: number = Math.floor((w - l.size) / stride) + 1;
        if (outH <= 0 || outW <= 0)
          throw new UserError(`model: ${where} window ${l.size} does not fit a ${h}x${w} input`);
        layers.push({ type: l.type, size: l.size, stride, inShape: image });
        image = [outH, outW, c];
        break;
      }
      case "flatten":
        if (image) {
          flat = image[0] * image[1] * image[2];
          image = null;
          layers.push({ type: "flatten" });
        }
        break;
      case "dense": {
        if (image) {
          flat = image[0] * image[1] * image[2];
          image = null;
          layers.push({ type: "flatten" });
        }
        addDense(flat, l.units);
        flat = l.units;
        break;
      }
      default:
        if (l.type !== "identity") layers.push({ type: "act", fn: l.type });
    }
  }
  if (image) throw new UserError("model: a CNN must end with a dense layer (its outputs are the logits)");
  const [h, w, c] = spec.input;
  return { spec, layers, inputSize: h * w * c, outputSize: flat, params };
}

function activation(fn: Activation, z: Tensor): Tensor {
  switch (fn) {
    case "relu":
      return op.relu(z);
    case "tanh":
      return op.tanh(z);
    case "sigmoid":
      return ew.sigmoid(z);
    case "gelu":
      return ew.gelu(z, "none");
    case "identity":
      return z;
  }
}

const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/**
 * σ'(z) elementwise for pre-activations z, in closed form: relu 1[z > 0] (0 at 0, as PyTorch), tanh 1 − tanh²z,
 * sigmoid s(1 − s), gelu Φ(z) + z·φ(z), identity 1. Measurement code (forward tangents, closed-form Jacobians) uses it.
 */
export function activationDerivative(fn: Activation, z: Data): Data {
  const d = allocLike(z, z.length);
  for (let i = 0; i < z.length; i++) {
    const v = z[i];
    switch (fn) {
      case "relu":
        d[i] = v > 0 ? 1 : 0;
        break;
      case "tanh": {
        const t = Math.tanh(v);
        d[i] = 1 - t * t;
        break;
      }
      case "sigmoid": {
        const s = v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v));
        d[i] = s * (1 - s);
        break;
      }
      case "gelu":
        d[i] = 0.5 * (1 + erfScalar(v * Math.SQRT1_2)) + v * INV_SQRT_2PI * Math.exp(-0.5 * v * v);
        break;
      case "identity":
        d[i] = 1;
        break;
    }
  }
  return d;
}

/**
 * Logits [batch, outputSize] for inputs x [batch, inputSize]. `capture`, if given, sees each layer's input and
 * output (companion measures use the dense layers' pre-activations).
 */
export function forward(
  net: Network,
  params: Params,
  x: Tensor,
  capture?: (layer: Layer, input: Tensor, output: Tensor) => void,
  run?: GraphRunOptions,
): Tensor {
  if (net.graph) return graphForward(net.graph, params, x, run);
  const batch = x.shape[0];
  let h = x;
  for (let li = 0; li < net.layers.length; li++) {
    const layer = net.layers[li];
    const input = h;
    switch (layer.type) {
      case "dense": {
        // A dense layer followed by ReLU runs as one fused op (the activation layer is then skipped).
        const next = net.layers[li + 1];
        const fuse = next?.type === "act" && next.fn === "relu" && !capture; // capture wants pre-activations
        h = op.linear(
          h,
          params[`layers.${layer.index}.weight`],
          params[`layers.${layer.index}.bias`],
          fuse ? "relu" : "none",
        );
        if (fuse) li++;
        break;
      }
      case "conv":
        if (h.shape.length !== 4) h = op.reshape(h, [batch, ...layer.inShape]);
        h = op.add(
          op.conv2d(h, params[`layers.${layer.index}.weight`], layer.stride, layer.padding),
          params[`layers.${layer.index}.bias`],
        );
        break;
      case "act":
        h = activation(layer.fn, h);
        break;
      case "maxpool":
      case "avgpool":
        if (h.shape.length !== 4) h = op.reshape(h, [batch, ...layer.inShape]);
        h =
          layer.type === "maxpool"
            ? op.maxPool2d(h, layer.size, layer.stride)
            : op.avgPool2d(h, layer.size, layer.stride);
        break;
      case "flatten":
        h = op.reshape(h, [batch, h.size / batch]);
        break;
    }
    capture?.(layer, input, h);
  }
  return h;
}

/**
 * Forward pass that also pushes `t` tangents per example through the network (forward-mode differentiation
 * with respect to the input). tangents: [batch·t, inputSize], the t tangents of each example contiguous.
 * Returns the logits and the output tangents [batch·t, outputSize].
 */
export function forwardWithTangents(
  net: Network,
  params: Params,
  x: Tensor,
  tangents: Tensor,
): { y: Tensor; ty: Tensor } {
  if (net.graph) throw new RangeError("forward-mode tangents are not implemented for graph models (use reverse mode)");
  const batch = x.shape[0];
  const t = tangents.shape[0] / batch;
  let h = x,
    th = tangents;
  const asImage = (a: Tensor, n: number, shape: [number, number, number]) =>
    a.shape.length === 4 ? a : op.reshape(a, [n, ...shape]);
  for (const layer of net.layers) {
    switch (layer.type) {
      case "dense": {
        const w = params[`layers.${layer.index}.weight`];
        h = op.add(op.matmul(h, w, false, true), params[`layers.${layer.index}.bias`]);
        th = op.matmul(th, w, false, true);
        break;
      }
      case "conv": {
        const w = params[`layers.${layer.index}.weight`];
        h = op.add(
          op.conv2d(asImage(h, batch, layer.inShape), w, layer.stride, layer.padding),
          params[`layers.${layer.index}.bias`],
        );
        th = op.conv2d(asImage(th, batch * t, layer.inShape), w, layer.stride, layer.padding);
        break;
      }
      case "act": {
        if (layer.fn === "identity") break;
        const d = onDevice()
          ? activationDerivativeOnDevice(layer.fn, h, batch, t)
          : repeatPerTangent(activationDerivative(layer.fn, h.data), batch, t);
        h = activation(layer.fn, h);
        th = op.mulConst(th, d);
        break;
      }
      case "maxpool":
      case "avgpool": {
        h = asImage(h, batch, layer.inShape);
        th = asImage(th, batch * t, layer.inShape);
        if (layer.type === "avgpool") {
          h = op.avgPool2d(h, layer.size, layer.stride);
          th = op.avgPool2d(th, layer.size, layer.stride);
        } else {
          // Tangents follow the argmax chosen by the primal inputs.
          const pooled = op.maxPool2d(h, layer.size, layer.stride);
          th = maxPoolTangents(h, pooled, th, batch, t, layer.size, layer.stride);
          h = pooled;
        }
        break;
      }
      case "flatten":
        h = op.reshape(h, [batch, h.size / batch]);
        th = op.reshape(th, [batch * t, th.size / (batch * t)]);
        break;
    }
  }
  return { y: h, ty: th };
}

/**
 * σ'(z) as ops on a device backend (no read-back), repeated for the t tangents of each example: the closed forms of
 * {@link activationDerivative} written with engine ops (equal to rounding, not bit for bit).
 */
function activationDerivativeOnDevice(fn: Activation, z: Tensor, batch: number, t: number): Storage {
  return noGrad(() => {
    let d: Tensor;
    switch (fn) {
      case "relu":
        d = new Tensor(op.reluMaskStorage(z), z.shape);
        break;
      case "tanh":
        d = op.tanhDerivativeOf(op.tanh(z));
        break;
      case "sigmoid": {
        const s = ew.sigmoid(z);
        d = ew.mulB(s, op.affine(s, -1, 1));
        break;
      }
      case "gelu": {
        const cdf = op.affine(ew.erf(op.scale(z, Math.SQRT1_2)), 0.5, 0.5);
        d = ew.addB(cdf, ew.mulB(z, op.scale(op.exp(op.scale(ew.mulB(z, z), -0.5)), INV_SQRT_2PI)));
        break;
      }
      case "identity":
        d = op.onesLike(z);
        break;
    }
    if (t === 1) return d.storage;
    const per = d.size / batch;
    return ew.broadcastTo(op.reshape(d, [batch, 1, per]), [batch, t, per]).storage;
  });
}

function repeatPerTangent(d: Float32Array | Float64Array, batch: number, t: number): Float32Array | Float64Array {
  if (t === 1) return d;
  const per = d.length / batch;
  const out = new (d.constructor as Float64ArrayConstructor)(d.length * t);
  for (let b = 0; b < batch; b++) {
    const src = d.subarray(b * per, (b + 1) * per);
    for (let j = 0; j < t; j++) out.set(src, (b * t + j) * per);
  }
  return out;
}

function maxPoolTangents(
  h: Tensor,
  pooled: Tensor,
  th: Tensor,
  batch: number,
  t: number,
  size: number,
  stride: number,
): Tensor {
  // Recover the primal argmax indices, then offset them into each tangent's copy of the example.
  const idx = maxPoolArgmax(h.data, windowGeometry(h.shape, size, size, stride, "valid"));
  const inPer = h.size / batch,
    outPer = idx.length / batch;
  const tidx = new Int32Array(idx.length * t);
  for (let b = 0; b < batch; b++)
    for (let j = 0; j < t; j++)
      for (let o = 0; o < outPer; o++)
        tidx[(b * t + j) * outPer + o] = idx[b * outPer + o] - b * inPer + (b * t + j) * inPer;
  return op.gather(th, tidx, [batch * t, ...pooled.shape.slice(1)]);
}
