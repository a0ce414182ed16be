/**
 * ONNX import, second half: turn a decoded, folded, checked ONNX model (decode.ts, shapes.ts, support.ts) into a
 * gcx graph model (graphSpec.ts) with its parameters, so GC, its estimate, the companion measures and fine-tuning
 * run on it like on any other model.
 *
 * Each ONNX op maps to one graph node, except the forms torch 1.13 exports for GELU (Div, Erf, Add, Mul, Mul) and
 * LayerNorm (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add), which are recognized whole, and Pad
 * (constant 0), which folds into the convolution or pooling that reads it. Node names are the torch module paths
 * recovered from initializer names (`fc.weight` → `fc`) or ONNX scopes (`/layer1/layer1.0/conv1/Conv` →
 * `layer1.0.conv1`), so parameters keep PyTorch's names. Anything else is one line naming the node, never a guess.
 */
import { Tensor } from "../../engine/tensor.js";
import { UserError } from "../../util/errors.js";
import type { GraphNodeSpec, GraphSpec } from "../graphSpec.js";
import type { Params } from "../params.js";
import { quote } from "./types.js";
import type { OnnxModel, OnnxNode, OnnxTensor } from "./types.js";

export interface ConvertedOnnx {
  spec: GraphSpec;
  params: Params;
}

const NAME_OK = /^[A-Za-z0-9_.:/-]+$/;

/** The torch module path an ONNX node name encodes: "/layer2/layer2.0/downsample/downsample.0/Conv" → "layer2.0.downsample.0". */
export function modulePath(nodeName: string): string {
  const segs = nodeName.split("/").filter(Boolean);
  segs.pop(); // the op
  const path: string[] = [];
  for (const s of segs) {
    const dot = s.lastIndexOf(".");
    // Sequential children repeat their parent's name ("layer1" then "layer1.0"): the child replaces it.
    if (dot > 0 && path.length > 0 && s.startsWith(path[path.length - 1] + ".")) path[path.length - 1] = s;
    else path.push(s);
  }
  return path.join(".");
}

function toFloat32(t: OnnxTensor): Float32Array {
  if (t.data instanceof Float32Array) return t.data;
  if (t.data instanceof BigInt64Array) return Float32Array.from(t.data, (v) => Number(v));
  return Float32Array.from(t.data);
}

export function onnxToGraph(model: OnnxModel): ConvertedOnnx {
  const { graph, file } = model;
  const init = graph.initializers;
  if (graph.inputs.length !== 1)
    throw new UserError(
      `${file}: the model has ${graph.inputs.length} inputs; gcx measures models with exactly one input`,
    );
  if (graph.outputs.length !== 1)
    throw new UserError(`${file}: the model has ${graph.outputs.length} outputs; gcx needs exactly one (the logits)`);
  const inShape = graph.inputs[0].shape;
  if (
    !inShape ||
    !(inShape.length === 2 || inShape.length === 4) ||
    inShape.slice(1).some((d) => typeof d !== "number" || d <= 0)
  ) {
    throw new UserError(
      `${file}: input ${quote(graph.inputs[0].name)} has shape [${(inShape ?? []).map(String)}]; gcx needs [N, D] or [N, C, H, W] with fixed sizes after the batch`,
    );
  }
  const example = inShape.slice(1) as number[];
  const producer = new Map<string, OnnxNode>();
  const consumers = new Map<string, OnnxNode[]>();
  for (const n of graph.nodes) {
    for (const o of n.outputs) producer.set(o, n);
    for (const i of n.inputs) if (i) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  }
  const alias = new Map<string, string>([[graph.inputs[0].name, "input"]]);
  const nodes: GraphNodeSpec[] = [];
  const params: Params = {};
  const used = new Set<string>(["input"]);
  const consumed = new Set<OnnxNode>();
  const rank = new Map<string, number>([["input", example.length === 1 ? 2 : 4]]); // engine ranks: [N, F] or [N, H, W, C]

  const fail = (n: OnnxNode, why: string): never => {
    throw new UserError(`${file}: node ${quote(n.name)} (${n.opType}, opset ${model.opsetVersion}): ${why}`);
  };
  const src = (n: OnnxNode, tensor: string): string => {
    const a = alias.get(tensor);
    if (a === undefined)
      fail(
        n,
        `input ${quote(tensor)} is not computed by a supported node (constants other than weights are not supported here)`,
      );
    return a!;
  };
  const constant = (name: string): OnnxTensor | undefined => init.get(name);
  const scalar = (name: string): number | undefined => {
    const t = constant(name);
    return t && t.data.length === 1 ? Number(t.data[0]) : undefined;
  };
  const weightOf = (n: OnnxNode, name: string, what: string): OnnxTensor => {
    const t = constant(name);
    if (!t) fail(n, `its ${what} ${quote(name)} is computed, not a stored weight`);
    return t!;
  };
  const uniqueName = (base: string): string => {
    let name = base.replace(/[^A-Za-z0-9_.:/-]/g, "_") || "node";
    if (!NAME_OK.test(name)) name = "node";
    let k = 1;
    const start = name;
    while (used.has(name)) name = `${start}_${k++}`;
    used.add(name);
    return name;
  };
  /** A module name for a node with parameters: from its weight's name when that is "<module>.weight". */
  const moduleName = (n: OnnxNode, weightName: string | undefined): string => {
    const m = weightName && /^(.+)\.weight$/.exec(weightName);
    if (m && NAME_OK.test(m[1]) && !used.has(m[1])) {
      used.add(m[1]);
      return m[1];
    }
    return uniqueName(modulePath(n.name) || n.name);
  };
  const emit = (n: OnnxNode, spec: GraphNodeSpec, output: string, outRank: number): void => {
    nodes.push(spec);
    alias.set(output, spec.name);
    rank.set(spec.name, outRank);
  };
  const param = (name: string, t: Tensor) => {
    params[name] = t;
  };
  const onlyConsumer = (tensor: string): OnnxNode | undefined => {
    const c = consumers.get(tensor) ?? [];
    return c.length === 1 ? c[0] : undefined;
  };
  /** Pads [t, l, b, r] of a Pad node that reads an image and pads only H and W with zeros; null otherwise. */
  const padOf = (p: OnnxNode): [number, number, number, number] | null => {
    const padsName = p.inputs[1];
    const pads = padsName ? constant(padsName) : undefined;
    const raw = pads
      ? Array.from(pads.data, Number)
      : Array.isArray(p.attributes.pads)
        ? (p.attributes.pads as number[])
        : null;
    if (!raw || raw.length !== 8) return null;
    const value = p.inputs[2] ? scalar(p.inputs[2]) : 0;
    if (value !== 0 || (p.attributes.mode !== undefined && p.attributes.mode !== "constant")) return null;
    // ONNX pads: [n0, c0, h0, w0, n1, c1, h1, w1].
    if (raw[0] || raw[1] || raw[4] || raw[5] || raw.some((v) => v < 0)) return null;
    return [raw[2], raw[3], raw[6], raw[7]];
  };
  /** The input of a conv/pool, with a preceding zero Pad folded into its padding. */
  const paddedInput = (
    n: OnnxNode,
    pads: number[],
  ): { input: string; padding: [number, number, number, number]; viaPad: boolean } => {
    const own: [number, number, number, number] = [pads[0] ?? 0, pads[1] ?? 0, pads[2] ?? 0, pads[3] ?? 0];
    const p = producer.get(n.inputs[0]);
    if (p?.opType === "Pad") {
      const extra = padOf(p);
      if (!extra) fail(p, "only zero padding of the height and width feeding a convolution or pooling is supported");
      consumed.add(p);
      return {
        input: src(p, p.inputs[0]),
        padding: [own[0] + extra![0], own[1] + extra![1], own[2] + extra![2], own[3] + extra![3]],
        viaPad: true,
      };
    }
    return { input: src(n, n.inputs[0]), padding: own, viaPad: false };
  };
  const pair = (v: unknown, dflt: [number, number]): [number, number] =>
    Array.isArray(v) && v.length === 2 ? [Number(v[0]), Number(v[1])] : dflt;
  const onnxPads = (v: unknown): number[] =>
    Array.isArray(v) && v.length === 4 ? [v[0], v[1], v[2], v[3]].map(Number) : [0, 0, 0, 0];

  for (const n of graph.nodes) {
    if (consumed.has(n)) continue;
    const out = n.outputs[0];
    switch (n.opType) {
      case "Identity":
      case "Dropout":
        alias.set(out, src(n, n.inputs[0]));
        break;
      case "Pad":
        // Folded into its consumer (paddedInput); a Pad feeding anything else is not supported.
        if (!(consumers.get(out) ?? []).every((c) => ["Conv", "AveragePool", "MaxPool"].includes(c.opType)))
          fail(n, "padding is supported only directly before a convolution or pooling");
        break;
      case "Conv": {
        const w = weightOf(n, n.inputs[1], "weight");
        if (w.dims.length !== 4) fail(n, "only 2-D convolutions are supported");
        const [o, ig, kh, kw] = w.dims;
        const kernel = pair(n.attributes.kernel_shape, [kh, kw]);
        if (kernel[0] !== kh || kernel[1] !== kw)
          fail(n, `kernel_shape [${kernel}] does not match the weight's [${kh}, ${kw}]`);
        const { input, padding } = paddedInput(n, onnxPads(n.attributes.pads));
        const name = moduleName(n, n.inputs[1]);
        const data = toFloat32(w),
          ohwi = new Float32Array(data.length);
        for (let a = 0; a < o; a++)
          for (let c = 0; c < ig; c++)
            for (let y = 0; y < kh; y++)
              for (let x = 0; x < kw; x++)
                ohwi[((a * kh + y) * kw + x) * ig + c] = data[((a * ig + c) * kh + y) * kw + x];
        param(`${name}.weight`, new Tensor(ohwi, [o, kh, kw, ig]));
        const hasBias = n.inputs.length > 2 && n.inputs[2] !== "";
        if (hasBias) param(`${name}.bias`, new Tensor(toFloat32(weightOf(n, n.inputs[2], "bias")), [o]));
        emit(
          n,
          {
            name,
            op: "conv2d",
            inputs: [input],
            out: o,
            kernel: [kh, kw],
            stride: pair(n.attributes.strides, [1, 1]),
            padding,
            dilation: pair(n.attributes.dilations, [1, 1]),
            groups: Number(n.attributes.group ?? 1),
            bias: hasBias,
          },
          out,
          4,
        );
        break;
      }
      case "Gemm":
      case "MatMul": {
        const input = src(n, n.inputs[0]);
        if (rank.get(input) !== 2) fail(n, "a matrix product needs a [N, F] input (flatten first)");
        const w = weightOf(n, n.inputs[1], "weight");
        if (w.dims.length !== 2) fail(n, "the weight must be a matrix");
        const transB = n.opType === "Gemm" && Number(n.attributes.transB ?? 0) === 1;
        const [outF, inF] = transB ? w.dims : [w.dims[1], w.dims[0]];
        const data = toFloat32(w);
        const wt = transB ? data : new Float32Array(data.length);
        if (!transB) for (let i = 0; i < inF; i++) for (let j = 0; j < outF; j++) wt[j * inF + i] = data[i * outF + j];
        let biasName: string | undefined = n.opType === "Gemm" && n.inputs[2] ? n.inputs[2] : undefined;
        let output = out;
        if (n.opType === "MatMul") {
          // torch exports a bias-carrying Linear as MatMul followed by Add(·, bias) when it is not a Gemm.
          const add = onlyConsumer(out);
          const other = add?.opType === "Add" ? add.inputs.find((i) => i !== out) : undefined;
          if (add && other && constant(other)?.dims.join() === String(outF)) {
            biasName = other;
            output = add.outputs[0];
            consumed.add(add);
          }
        }
        const name = moduleName(n, n.opType === "Gemm" ? n.inputs[1] : undefined);
        param(`${name}.weight`, new Tensor(wt, [outF, inF]));
        if (biasName) {
          const b = weightOf(n, biasName, "bias");
          if (b.data.length !== outF) fail(n, `bias has ${b.data.length} values for ${outF} outputs`);
          param(`${name}.bias`, new Tensor(toFloat32(b), [outF]));
        }
        emit(n, { name, op: "linear", inputs: [input], out: outF, bias: biasName !== undefined }, output, 2);
        break;
      }
      case "BatchNormalization": {
        const input = src(n, n.inputs[0]);
        const [scale, bias, mean, variance] = n.inputs
          .slice(1, 5)
          .map((i, k) => weightOf(n, i, ["scale", "bias", "mean", "variance"][k]));
        const name = moduleName(n, n.inputs[1]);
        const c = scale.data.length;
        param(`${name}.weight`, new Tensor(toFloat32(scale), [c]));
        param(`${name}.bias`, new Tensor(toFloat32(bias), [c]));
        param(`${name}.running_mean`, new Tensor(toFloat32(mean), [c]));
        param(`${name}.running_var`, new Tensor(toFloat32(variance), [c]));
        param(`${name}.num_batches_tracked`, new Tensor(new Float32Array(1), []));
        const eps = Number(n.attributes.epsilon ?? 1e-5);
        // ONNX momentum weights the old running value; torch's weights the new batch statistic.
        const momentum = 1 - Number(n.attributes.momentum ?? 0.9);
        emit(
          n,
          {
            name,
            op: "batchnorm",
            inputs: [input],
            eps,
            momentum: Math.min(1, Math.max(0, Number(momentum.toFixed(6)))),
          },
          out,
          rank.get(input)!,
        );
        break;
      }
      case "LayerNormalization": {
        const input = src(n, n.inputs[0]);
        if (rank.get(input) !== 2) fail(n, "layer normalization is supported on [N, F] inputs");
        const scale = weightOf(n, n.inputs[1], "scale");
        const name = moduleName(n, n.inputs[1]);
        param(`${name}.weight`, new Tensor(toFloat32(scale), [scale.data.length]));
        const b = n.inputs[2] ? toFloat32(weightOf(n, n.inputs[2], "bias")) : new Float32Array(scale.data.length);
        param(`${name}.bias`, new Tensor(b, [scale.data.length]));
        emit(n, { name, op: "layernorm", inputs: [input], eps: Number(n.attributes.epsilon ?? 1e-5) }, out, 2);
        break;
      }
      case "Relu":
      case "Sigmoid":
      case "Tanh": {
        const op = n.opType === "Relu" ? "relu" : n.opType === "Sigmoid" ? "sigmoid" : "tanh";
        const input = src(n, n.inputs[0]);
        emit(n, { name: uniqueName(modulePath(n.name) || op), op, inputs: [input] }, out, rank.get(input)!);
        break;
      }
      case "LeakyRelu": {
        const input = src(n, n.inputs[0]);
        emit(
          n,
          {
            name: uniqueName(modulePath(n.name) || "leaky_relu"),
            op: "leaky_relu",
            inputs: [input],
            alpha: Number(n.attributes.alpha ?? 0.01),
          },
          out,
          rank.get(input)!,
        );
        break;
      }
      case "Softplus": {
        // ONNX Softplus is log(1 + e^x) exactly; a threshold far above any float32 logit keeps that meaning.
        const input = src(n, n.inputs[0]);
        emit(
          n,
          {
            name: uniqueName(modulePath(n.name) || "softplus"),
            op: "softplus",
            inputs: [input],
            beta: 1,
            threshold: 1e30,
          },
          out,
          rank.get(input)!,
        );
        break;
      }
      case "Gelu": {
        const input = src(n, n.inputs[0]);
        emit(
          n,
          {
            name: uniqueName(modulePath(n.name) || "gelu"),
            op: "gelu",
            inputs: [input],
            approximate: n.attributes.approximate === "tanh" ? "tanh" : "none",
          },
          out,
          rank.get(input)!,
        );
        break;
      }
      case "MaxPool":
      case "AveragePool": {
        const kernel = pair(n.attributes.kernel_shape, [0, 0]);
        const { input, padding, viaPad } = paddedInput(n, onnxPads(n.attributes.pads));
        const stride = pair(n.attributes.strides, [1, 1]);
        const name = uniqueName(modulePath(n.name) || (n.opType === "MaxPool" ? "maxpool" : "avgpool"));
        if (n.opType === "MaxPool") {
          if (viaPad)
            fail(
              n,
              "zero padding before a max pooling changes its meaning (torch pads max pooling with -inf); not supported",
            );
          emit(n, { name, op: "maxpool2d", inputs: [input], kernel, stride, padding }, out, 4);
        } else {
          const own = Number(n.attributes.count_include_pad ?? 0) === 1;
          const ownPads = onnxPads(n.attributes.pads).some((v) => v > 0);
          // torch exports count_include_pad=True as Pad + AveragePool: the padded zeros are counted.
          if (viaPad && ownPads && !own) fail(n, "mixes explicit zero padding with padding that is not counted");
          emit(
            n,
            { name, op: "avgpool2d", inputs: [input], kernel, stride, padding, countIncludePad: viaPad || own },
            out,
            4,
          );
        }
        break;
      }
      case "GlobalAveragePool": {
        const input = src(n, n.inputs[0]);
        emit(n, { name: uniqueName(modulePath(n.name) || "avgpool"), op: "global_avgpool", inputs: [input] }, out, 4);
        break;
      }
      case "Flatten":
      case "Reshape": {
        const input = src(n, n.inputs[0]);
        if (n.opType === "Reshape") {
          const target = constant(n.inputs[1]);
          const t = target ? Array.from(target.data, Number) : [];
          if (!(t.length === 2 && t[1] === -1))
            fail(n, `only a reshape to [batch, -1] (x.view(x.size(0), -1)) is supported, got [${t}]`);
        }
        if (rank.get(input) === 2) alias.set(out, input);
        else emit(n, { name: uniqueName(modulePath(n.name) || "flatten"), op: "flatten", inputs: [input] }, out, 2);
        break;
      }
      case "Concat": {
        const inputs = n.inputs.map((i) => src(n, i));
        if (Number(n.attributes.axis) !== 1)
          fail(n, "only concatenation along the channel/feature axis (1) is supported");
        emit(n, { name: uniqueName(modulePath(n.name) || "concat"), op: "concat", inputs }, out, rank.get(inputs[0])!);
        break;
      }
      case "Add": {
        if (n.inputs.some((i) => constant(i)))
          fail(
            n,
            "adding a constant is supported only inside the GELU and LayerNorm forms torch exports, or as a MatMul's bias",
          );
        const inputs = n.inputs.map((i) => src(n, i));
        emit(n, { name: uniqueName(modulePath(n.name) || "add"), op: "add", inputs }, out, rank.get(inputs[0])!);
        break;
      }
      case "Div": {
        const g = matchGelu(n);
        if (!g) fail(n, "division is supported only inside the GELU and LayerNorm forms torch exports");
        const input = src(n, n.inputs[0]);
        emit(
          n,
          { name: uniqueName(modulePath(n.name) || "gelu"), op: "gelu", inputs: [input], approximate: "none" },
          g!.output,
          rank.get(input)!,
        );
        for (const c of g!.nodes) consumed.add(c);
        break;
      }
      case "ReduceMean": {
        const ln = matchLayerNorm(n);
        if (!ln) fail(n, "ReduceMean is supported only inside the LayerNorm form torch exports");
        const input = src(n, n.inputs[0]);
        if (rank.get(input) !== 2) fail(n, "layer normalization is supported on [N, F] inputs");
        const name = moduleName(n, ln!.weight);
        const w = weightOf(n, ln!.weight, "scale"),
          b = weightOf(n, ln!.bias, "bias");
        param(`${name}.weight`, new Tensor(toFloat32(w), [w.data.length]));
        param(`${name}.bias`, new Tensor(toFloat32(b), [b.data.length]));
        emit(n, { name, op: "layernorm", inputs: [input], eps: ln!.eps }, ln!.output, 2);
        for (const c of ln!.nodes) consumed.add(c);
        break;
      }
      default:
        fail(n, "this op is supported only inside the GELU and LayerNorm forms torch exports");
    }
  }

  function matchGelu(div: OnnxNode): { output: string; nodes: OnnxNode[] } | null {
    // x/√2 → Erf → +1 → ·x → ·0.5 (the last two in either order of operands).
    const x = div.inputs[0];
    const c = scalar(div.inputs[1]);
    if (c === undefined || Math.abs(c - Math.SQRT2) > 1e-5) return null;
    const erf = onlyConsumer(div.outputs[0]);
    if (erf?.opType !== "Erf") return null;
    const add = onlyConsumer(erf.outputs[0]);
    const one = add?.opType === "Add" ? add.inputs.find((i) => i !== erf.outputs[0]) : undefined;
    if (!add || one === undefined || scalar(one) !== 1) return null;
    const mul = onlyConsumer(add.outputs[0]);
    if (mul?.opType !== "Mul" || !mul.inputs.includes(x)) return null;
    const half = onlyConsumer(mul.outputs[0]);
    const h = half?.opType === "Mul" ? half.inputs.find((i) => i !== mul.outputs[0]) : undefined;
    if (!half || h === undefined || scalar(h) !== 0.5) return null;
    return { output: half.outputs[0], nodes: [erf, add, mul, half] };
  }

  function matchLayerNorm(
    rm: OnnxNode,
  ): { output: string; nodes: OnnxNode[]; eps: number; weight: string; bias: string } | null {
    const x = rm.inputs[0];
    const axes = rm.attributes.axes;
    if (!(Array.isArray(axes) && axes.length === 1 && (axes[0] === -1 || axes[0] === 1))) return null;
    const subs = (consumers.get(rm.outputs[0]) ?? []).filter((c) => c.opType === "Sub" && c.inputs[0] === x);
    if (subs.length !== 1 || (consumers.get(rm.outputs[0]) ?? []).length !== 1) return null;
    const sub = subs[0];
    const subUses = consumers.get(sub.outputs[0]) ?? [];
    const pow = subUses.find((c) => c.opType === "Pow" && scalar(c.inputs[1]) === 2);
    const div = subUses.find((c) => c.opType === "Div" && c.inputs[0] === sub.outputs[0]);
    if (!pow || !div || subUses.length !== 2) return null;
    const rm2 = onlyConsumer(pow.outputs[0]);
    if (rm2?.opType !== "ReduceMean") return null;
    const addEps = onlyConsumer(rm2.outputs[0]);
    const epsName = addEps?.opType === "Add" ? addEps.inputs.find((i) => i !== rm2.outputs[0]) : undefined;
    const eps = epsName !== undefined ? scalar(epsName) : undefined;
    if (!addEps || eps === undefined) return null;
    const sqrt = onlyConsumer(addEps.outputs[0]);
    if (sqrt?.opType !== "Sqrt" || div.inputs[1] !== sqrt.outputs[0]) return null;
    const mul = onlyConsumer(div.outputs[0]);
    const weight = mul?.opType === "Mul" ? mul.inputs.find((i) => i !== div.outputs[0]) : undefined;
    if (!mul || !weight || !constant(weight)) return null;
    const addB = onlyConsumer(mul.outputs[0]);
    const bias = addB?.opType === "Add" ? addB.inputs.find((i) => i !== mul.outputs[0]) : undefined;
    if (!addB || !bias || !constant(bias)) return null;
    return {
      output: addB.outputs[0],
      nodes: [sub, pow, rm2, addEps, sqrt, div, mul, addB],
      eps: Number(eps.toPrecision(6)),
      weight,
      bias,
    };
  }

  const output = alias.get(graph.outputs[0].name);
  if (!output || output === "input")
    throw new UserError(`${file}: the output ${quote(graph.outputs[0].name)} is not computed by the graph`);
  const spec: GraphSpec = { kind: "graph", input: example as [number] | [number, number, number], nodes, output };
  return { spec, params };
}
