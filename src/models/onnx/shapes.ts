/**
 * Static shape inference and constant folding of the shape arithmetic that exporters (torch.onnx) emit.
 *
 * `x.view(x.size(0), -1)` exports as Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])). The batch size is
 * not known statically, so the first dimension of the model input is tracked as the symbol BATCH, through shape
 * inference (Conv, Gemm, pooling, ...) and through the folded shape vectors themselves. foldShapes then:
 *  - turns every node whose inputs are all static (initializers, Constant outputs, Shape of a tensor whose shape is
 *    known) and whose value is fully numeric into an initializer (Constant nodes included);
 *  - rewrites a Reshape whose target is static except for a leading BATCH into a Reshape with an initializer target
 *    in which the batch is written as 0: ONNX Reshape's "copy this dimension from the input" (allowzero = 0), which
 *    is exactly view(x.size(0), ...). Exports made with a fixed batch (no dynamic_axes) have torch's own folded
 *    target [exportBatch, ...]; its leading entry is read as the batch the same way;
 *  - removes the nodes and initializers nothing reachable from the graph outputs uses any more.
 * Everything else is left as it is (checkSupported then reports what remains unsupported).
 */
import { UserError } from "../../util/errors.js";
import { numel, quote } from "./types.js";
import type { OnnxDType, OnnxModel, OnnxNode, OnnxTensor } from "./types.js";

/** The symbolic batch dimension. */
export const BATCH = "batch" as const;
/** A dimension (or an element of a folded shape vector): a number, the batch, or null (not known statically). */
export type Dim = number | typeof BATCH | null;

/** A static value: small tensors only (shape vectors, scalars), elements as numbers or symbols. */
interface Static {
  dtype: OnnxDType;
  dims: number[];
  v: Dim[];
}

/** Static values larger than this are not evaluated (shape arithmetic is tiny; weights are not folded through). */
const MAX_STATIC_ELEMENTS = 1 << 16;

const INT_TYPES: ReadonlySet<OnnxDType> = new Set(["int64", "int32", "int16", "int8", "uint16", "uint8", "bool"]);

/** TensorProto.DataType codes (Cast's `to`). */
const CAST_TO: ReadonlyMap<number, OnnxDType> = new Map([
  [1, "float32"],
  [2, "uint8"],
  [3, "int8"],
  [4, "uint16"],
  [5, "int16"],
  [6, "int32"],
  [7, "int64"],
  [9, "bool"],
  [10, "float16"],
  [11, "float64"],
]);

export interface ShapeAnalysis {
  /** Every tensor's inferred shape (undefined: not inferred). */
  shapes: Map<string, Dim[]>;
  /** The export-time batch size when the model input declares a numeric first dimension, else null. */
  exportBatch: number | null;
}

/**
 * Infers the shape of every tensor of the graph for one example of shape `inputShape` (PyTorch order, without the
 * batch dimension, like the `input` of a gcx graph model). The batch dimension is BATCH.
 */
export function inferShapes(model: OnnxModel, inputShape: number[]): ShapeAnalysis {
  const a = new Analysis(model, inputShape);
  a.run();
  return { shapes: a.shapes, exportBatch: a.exportBatch };
}

/** Folds static shape arithmetic into initializers and drops dead nodes; returns a new model (the input is unchanged). */
export function foldShapes(model: OnnxModel, inputShape: number[]): OnnxModel {
  const a = new Analysis(model, inputShape);
  a.run();
  const initializers = new Map(model.graph.initializers);
  for (const [name, t] of a.folded) initializers.set(name, t);
  const nodes: OnnxNode[] = [];
  for (const n of model.graph.nodes) {
    if (a.foldedNodes.has(n)) continue;
    const target = a.reshapeTargets.get(n);
    if (target) {
      let name = `${n.inputs[1]}::static`;
      while (initializers.has(name) || a.names.has(name)) name += "_";
      initializers.set(name, target);
      nodes.push({ ...n, inputs: [n.inputs[0], name, ...n.inputs.slice(2)] });
    } else {
      nodes.push(n);
    }
  }
  // Dead code: keep what the graph outputs need.
  const live = new Set(model.graph.outputs.map((o) => o.name));
  const kept: OnnxNode[] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    if (!n.outputs.some((o) => o !== "" && live.has(o))) continue;
    kept.push(n);
    for (const x of n.inputs) if (x !== "") live.add(x);
  }
  kept.reverse();
  for (const name of [...initializers.keys()]) if (!live.has(name)) initializers.delete(name);
  return { ...model, opsets: { ...model.opsets }, graph: { ...model.graph, initializers, nodes: kept } };
}

class Analysis {
  readonly shapes = new Map<string, Dim[]>();
  readonly statics = new Map<string, Static>();
  /** Folded outputs → their values as initializers. */
  readonly folded = new Map<string, OnnxTensor>();
  readonly foldedNodes = new Set<OnnxNode>();
  /** Reshape nodes whose target becomes a new initializer (batch written as 0). */
  readonly reshapeTargets = new Map<OnnxNode, OnnxTensor>();
  /** Those targets with the batch as BATCH (for shape inference). */
  private readonly resolvedTargets = new Map<OnnxNode, Dim[]>();
  readonly exportBatch: number | null;
  /** All tensor names in the graph (to name new initializers). */
  readonly names = new Set<string>();
  private readonly opset: number;

  constructor(
    private readonly model: OnnxModel,
    inputShape: number[],
  ) {
    const g = model.graph;
    const file = model.file;
    this.opset = model.opsetVersion;
    if (g.inputs.length !== 1) {
      throw new UserError(
        `${file}: the model has ${g.inputs.length} inputs (${g.inputs.map((i) => quote(i.name)).join(", ")}); only models with one input are supported`,
      );
    }
    if (!inputShape.every((d) => Number.isSafeInteger(d) && d > 0)) {
      throw new UserError(`${file}: input shape [${inputShape}] must be positive integers`);
    }
    const input = g.inputs[0];
    const declared = input.shape;
    let exportBatch: number | null = null;
    if (declared) {
      const shown = `[${declared.map((d) => (d === null ? "?" : typeof d === "string" ? quote(d) : String(d))).join(", ")}]`;
      if (declared.length !== inputShape.length + 1) {
        throw new UserError(
          `${file}: input ${quote(input.name)} has shape ${shown} (the first dimension is the batch), which does not fit an example of shape [${inputShape}]`,
        );
      }
      declared.slice(1).forEach((d, i) => {
        if (typeof d === "number" && d !== inputShape[i]) {
          throw new UserError(
            `${file}: input ${quote(input.name)} has shape ${shown} (the first dimension is the batch), which does not fit an example of shape [${inputShape}]`,
          );
        }
      });
      if (typeof declared[0] === "number") exportBatch = declared[0];
    }
    this.exportBatch = exportBatch;
    this.shapes.set(input.name, [BATCH, ...inputShape]);
    for (const [name, t] of g.initializers) {
      this.names.add(name);
      this.shapes.set(name, [...t.dims]);
      if (numel(t.dims) <= MAX_STATIC_ELEMENTS) this.statics.set(name, fromTensor(t));
    }
    for (const n of g.nodes) for (const o of n.outputs) this.names.add(o);
  }

  run(): void {
    for (const n of this.model.graph.nodes) this.visit(n);
  }

  private visit(n: OnnxNode): void {
    if (n.domain !== "") return;
    // Constant: its value is an initializer as it stands.
    if (n.opType === "Constant" && n.outputs.length === 1) {
      const t = constantValue(n);
      if (t) {
        this.folded.set(n.outputs[0], t);
        this.foldedNodes.add(n);
        this.shapes.set(n.outputs[0], [...t.dims]);
        if (numel(t.dims) <= MAX_STATIC_ELEMENTS) this.statics.set(n.outputs[0], fromTensor(t));
      }
      return;
    }
    const ins = n.inputs.map((i) => (i === "" ? undefined : this.statics.get(i)));
    const allStatic = n.inputs.every((i, k) => i === "" || ins[k] !== undefined);
    let outs: Static[] | null = null;
    if (n.opType === "Shape") {
      const s = this.shapes.get(n.inputs[0]);
      if (s) outs = [shapeOp(n, s)];
    } else if (allStatic) {
      outs = this.evaluate(n, ins);
    }
    if (outs && outs.length === n.outputs.length && !n.outputs.includes("")) {
      n.outputs.forEach((o, k) => {
        this.statics.set(o, outs[k]);
        this.shapes.set(o, [...outs[k].dims]);
      });
      const tensors = outs.map(toTensor);
      if (tensors.every((t) => t !== null)) {
        n.outputs.forEach((o, k) => this.folded.set(o, tensors[k]));
        this.foldedNodes.add(n);
      }
      return;
    }
    if (n.opType === "Reshape") this.reshapeTarget(n);
    const shapes = this.infer(n);
    if (shapes) n.outputs.forEach((o, k) => shapes[k] && o !== "" && this.shapes.set(o, shapes[k]));
  }

  /** A Reshape of a non-static tensor with a static target: make the target an initializer if the batch allows. */
  private reshapeTarget(n: OnnxNode): void {
    const target = this.statics.get(n.inputs[1] ?? "");
    const data = this.shapes.get(n.inputs[0]);
    if (!target || !data || target.dims.length !== 1 || n.attributes.allowzero === 1 || data[0] !== BATCH) return;
    const v = [...target.v];
    // A fixed-batch export: torch folded x.size(0) into the export batch size.
    if (this.exportBatch !== null && v[0] === this.exportBatch) v[0] = BATCH;
    if (v[0] !== BATCH || !v.slice(1).every((x) => typeof x === "number")) return;
    this.reshapeTargets.set(n, {
      dims: [v.length],
      dtype: "int64",
      data: BigInt64Array.from(v, (x) => (x === BATCH ? 0n : BigInt(x!))),
    });
    this.resolvedTargets.set(n, v);
  }

  /** Output shapes of a node whose inputs are not all static (undefined entries: unknown). */
  private infer(n: OnnxNode): (Dim[] | undefined)[] | null {
    const s = (k: number): Dim[] | undefined => (n.inputs[k] ? this.shapes.get(n.inputs[k]) : undefined);
    const st = (k: number): Static | undefined => (n.inputs[k] ? this.statics.get(n.inputs[k]) : undefined);
    const x = s(0);
    const ai = (name: string, def: number): number =>
      typeof n.attributes[name] === "number" ? n.attributes[name] : def;
    const ais = (name: string): number[] | undefined =>
      Array.isArray(n.attributes[name]) ? (n.attributes[name] as number[]) : undefined;
    switch (n.opType) {
      case "Relu":
      case "LeakyRelu":
      case "Gelu":
      case "Sigmoid":
      case "Tanh":
      case "Softplus":
      case "Erf":
      case "Sqrt":
      case "Identity":
      case "Elu":
      case "Selu":
      case "HardSigmoid":
      case "HardSwish":
      case "Softmax":
      case "LogSoftmax":
      case "Neg":
      case "Abs":
      case "Exp":
      case "Log":
      case "Cast":
      case "BatchNormalization":
      case "LayerNormalization":
      case "InstanceNormalization":
      case "Dropout":
      case "Clip":
      case "Mish":
      case "Softsign":
      case "Reciprocal":
        return [x];
      case "Add":
      case "Sub":
      case "Mul":
      case "Div":
      case "Pow":
      case "Max":
      case "Min": {
        const b = s(1);
        return [x && b ? broadcast(x, b) : undefined];
      }
      case "Gemm": {
        const b = s(1);
        if (!x || !b || x.length !== 2 || b.length !== 2) return null;
        const m = ai("transA", 0) ? x[1] : x[0];
        const nn = ai("transB", 0) ? b[0] : b[1];
        return [[m, nn]];
      }
      case "MatMul": {
        const b = s(1);
        if (!x || !b || x.length === 0 || b.length === 0) return null;
        if (x.length === 1 && b.length === 1) return [[]];
        if (b.length === 1) return [x.slice(0, -1)];
        if (x.length === 1) return [[...b.slice(0, -2), b[b.length - 1]]];
        const batch = broadcast(x.slice(0, -2), b.slice(0, -2));
        return [[...batch, x[x.length - 2], b[b.length - 1]]];
      }
      case "Conv":
      case "MaxPool":
      case "AveragePool": {
        if (!x || x.length < 3) return null;
        const spatial = x.length - 2;
        let kernel = ais("kernel_shape");
        let channels: Dim = x[1];
        if (n.opType === "Conv") {
          const w = s(1);
          if (!w || w.length !== x.length) return null;
          kernel = kernel ?? (w.slice(2).every((d) => typeof d === "number") ? (w.slice(2) as number[]) : undefined);
          channels = w[0];
        }
        if (!kernel || kernel.length !== spatial) return null;
        const strides = ais("strides") ?? new Array<number>(spatial).fill(1);
        const dil = ais("dilations") ?? new Array<number>(spatial).fill(1);
        const pads = ais("pads") ?? new Array<number>(2 * spatial).fill(0);
        const autoPad = typeof n.attributes.auto_pad === "string" ? n.attributes.auto_pad : "NOTSET";
        const ceil = ai("ceil_mode", 0) === 1;
        const out: Dim[] = [x[0], channels];
        for (let i = 0; i < spatial; i++) {
          const h = x[2 + i];
          if (typeof h !== "number" || !(strides[i] > 0)) {
            out.push(null);
            continue;
          }
          const k = (kernel[i] - 1) * (dil[i] ?? 1) + 1;
          if (autoPad === "SAME_UPPER" || autoPad === "SAME_LOWER") {
            out.push(Math.ceil(h / strides[i]));
            continue;
          }
          const p = autoPad === "VALID" ? 0 : (pads[i] ?? 0) + (pads[i + spatial] ?? 0);
          const span = h + p - k;
          if (span < 0) {
            out.push(null);
            continue;
          }
          let o = (ceil ? Math.ceil(span / strides[i]) : Math.floor(span / strides[i])) + 1;
          // As PyTorch: the last window must start inside the input or the leading padding.
          if (ceil && (o - 1) * strides[i] >= h + (pads[i] ?? 0)) o--;
          out.push(o);
        }
        return [out];
      }
      case "GlobalAveragePool":
      case "GlobalMaxPool":
        return [x && x.length >= 3 ? [x[0], x[1], ...x.slice(2).map(() => 1)] : undefined];
      case "Flatten": {
        if (!x) return null;
        let axis = ai("axis", 1);
        if (axis < 0) axis += x.length;
        return [[product(x.slice(0, axis)), product(x.slice(axis))]];
      }
      case "Reshape": {
        const t = this.resolvedTargets.get(n) ?? st(1)?.v;
        if (!x || !t) return null;
        return [reshapeDims(x, t, n.attributes.allowzero === 1)];
      }
      case "Transpose": {
        if (!x) return null;
        const perm = ais("perm") ?? x.map((_, i) => x.length - 1 - i);
        return [perm.map((p) => x[p] ?? null)];
      }
      case "Concat": {
        const all = n.inputs.map((_, k) => s(k));
        if (all.some((a) => !a) || !x) return null;
        let axis = ai("axis", 0);
        if (axis < 0) axis += x.length;
        return [
          x.map((d, i) =>
            i === axis
              ? sum(all.map((a) => a![i] ?? null))
              : (all.map((a) => a![i]).find((e) => typeof e === "number") ?? d),
          ),
        ];
      }
      case "Pad": {
        const pads = this.opset >= 11 ? st(1)?.v : ais("pads");
        if (!x || !pads || pads.length !== 2 * x.length) return null;
        return [
          x.map((d, i) =>
            typeof d === "number" && typeof pads[i] === "number" && typeof pads[i + x.length] === "number"
              ? d + pads[i] + (pads[i + x.length] as number)
              : pads[i] === 0 && pads[i + x.length] === 0
                ? d
                : null,
          ),
        ];
      }
      case "ReduceMean":
      case "ReduceSum":
      case "ReduceMax":
      case "ReduceMin": {
        if (!x) return null;
        const axesV = ais("axes") ?? st(1)?.v;
        const keep = ai("keepdims", 1) === 1;
        if (!axesV) return [keep ? x.map(() => 1) : []];
        if (!axesV.every((a) => typeof a === "number")) return null;
        const axes = axesV.map((a) => (a < 0 ? a + x.length : a));
        return [keep ? x.map((d, i) => (axes.includes(i) ? 1 : d)) : x.filter((_, i) => !axes.includes(i))];
      }
      case "Unsqueeze":
      case "Squeeze": {
        const axesV = this.opset >= 13 ? st(1)?.v : ais("axes");
        if (!x) return null;
        const r = squeezeDims(n.opType, x, axesV);
        return r ? [r] : null;
      }
      default:
        return null;
    }
  }

  /** Evaluates a node on static inputs; null when the op is not evaluated here or the inputs do not fit. */
  private evaluate(n: OnnxNode, ins: (Static | undefined)[]): Static[] | null {
    const x = ins[0];
    const attr = n.attributes;
    const ai = (name: string, def: number): number => (typeof attr[name] === "number" ? attr[name] : def);
    switch (n.opType) {
      case "Identity":
        return x ? [x] : null;
      case "Dropout":
        return x && n.outputs.length === 1 ? [x] : null;
      case "Gather": {
        const idx = ins[1];
        if (!x || !idx || x.dims.length === 0) return null;
        let axis = ai("axis", 0);
        if (axis < 0) axis += x.dims.length;
        if (axis < 0 || axis >= x.dims.length) return null;
        const size = x.dims[axis];
        const outer = numel(x.dims.slice(0, axis));
        const inner = numel(x.dims.slice(axis + 1));
        const v: Dim[] = [];
        for (let o = 0; o < outer; o++) {
          for (const j of idx.v) {
            if (typeof j !== "number") return null;
            const jj = j < 0 ? j + size : j;
            if (!(jj >= 0 && jj < size)) return null;
            for (let i = 0; i < inner; i++) v.push(x.v[(o * size + jj) * inner + i]);
          }
        }
        return [{ dtype: x.dtype, dims: [...x.dims.slice(0, axis), ...idx.dims, ...x.dims.slice(axis + 1)], v }];
      }
      case "Unsqueeze":
      case "Squeeze": {
        if (!x) return null;
        const axes = this.opset >= 13 ? ins[1]?.v : (attr.axes as number[] | undefined);
        const dims = squeezeDims(n.opType, x.dims, axes);
        if (!dims?.every((d) => typeof d === "number")) return null;
        return [{ ...x, dims: dims }];
      }
      case "Concat": {
        const all = ins as Static[];
        if (all.length === 0 || all.some((a) => !a || a.dims.length !== x!.dims.length || a.dtype !== x!.dtype))
          return null;
        let axis = ai("axis", 0);
        const r = x!.dims.length;
        if (axis < 0) axis += r;
        if (axis < 0 || axis >= r) return null;
        if (!all.every((a) => a.dims.every((d, i) => i === axis || d === x!.dims[i]))) return null;
        const outer = numel(x!.dims.slice(0, axis));
        const v: Dim[] = [];
        for (let o = 0; o < outer; o++) {
          for (const a of all) {
            const chunk = numel(a.dims.slice(axis));
            for (let i = 0; i < chunk; i++) v.push(a.v[o * chunk + i]);
          }
        }
        const dims = [...x!.dims];
        dims[axis] = all.reduce((acc, a) => acc + a.dims[axis], 0);
        return [{ dtype: x!.dtype, dims, v }];
      }
      case "Cast": {
        const to = CAST_TO.get(ai("to", 0));
        if (!x || !to) return null;
        const isInt = INT_TYPES.has(to);
        const v = x.v.map((e) => (typeof e !== "number" ? (isInt ? e : null) : castValue(e, to)));
        if (v.some((e) => e === null && !isInt)) return null;
        return [{ dtype: to, dims: x.dims, v }];
      }
      case "Slice":
        return x ? slice(x, n, ins, this.opset) : null;
      case "Reshape": {
        const t = ins[1];
        if (!x || !t || t.dims.length !== 1) return null;
        const dims = reshapeDims(x.dims, t.v, attr.allowzero === 1);
        if (!dims.every((d) => typeof d === "number") || numel(dims) !== x.v.length) return null;
        return [{ ...x, dims: dims }];
      }
      case "Add":
      case "Sub":
      case "Mul":
      case "Div": {
        const y = ins[1];
        if (!x || !y || x.dtype !== y.dtype) return null;
        return elementwise(n.opType, x, y);
      }
      default:
        return null;
    }
  }
}

function fromTensor(t: OnnxTensor): Static {
  const v = new Array<Dim>(t.data.length);
  for (let i = 0; i < t.data.length; i++) v[i] = Number(t.data[i]);
  return { dtype: t.dtype, dims: [...t.dims], v };
}

/** A static value as an initializer, or null if an element is symbolic or unknown. */
function toTensor(s: Static): OnnxTensor | null {
  if (!s.v.every((e) => typeof e === "number")) return null;
  const v = s.v;
  const dims = [...s.dims];
  switch (s.dtype) {
    case "float32":
    case "float16":
      return { dims, dtype: s.dtype, data: Float32Array.from(v) };
    case "float64":
      return { dims, dtype: s.dtype, data: Float64Array.from(v) };
    case "int64":
      return { dims, dtype: s.dtype, data: BigInt64Array.from(v, (e) => clampInt64(e)) };
    default:
      return { dims, dtype: s.dtype, data: Int32Array.from(v) };
  }
}

function clampInt64(e: number): bigint {
  if (Number.isNaN(e)) return 0n;
  if (e >= 2 ** 63) return 2n ** 63n - 1n;
  if (e <= -(2 ** 63)) return -(2n ** 63n);
  return BigInt(Math.trunc(e));
}

function constantValue(n: OnnxNode): OnnxTensor | null {
  const a = n.attributes;
  const v = a.value;
  if (v !== undefined && typeof v === "object" && !Array.isArray(v)) return v;
  if (typeof a.value_float === "number") return { dims: [], dtype: "float32", data: Float32Array.of(a.value_float) };
  if (Array.isArray(a.value_floats))
    return { dims: [a.value_floats.length], dtype: "float32", data: Float32Array.from(a.value_floats as number[]) };
  if (typeof a.value_int === "number")
    return { dims: [], dtype: "int64", data: BigInt64Array.of(clampInt64(a.value_int)) };
  if (Array.isArray(a.value_ints))
    return {
      dims: [a.value_ints.length],
      dtype: "int64",
      data: BigInt64Array.from(a.value_ints as number[], clampInt64),
    };
  return null;
}

function shapeOp(n: OnnxNode, s: Dim[]): Static {
  const r = s.length;
  const norm = (k: number): number => Math.min(Math.max(k < 0 ? k + r : k, 0), r);
  const start = norm(typeof n.attributes.start === "number" ? n.attributes.start : 0);
  const end = norm(typeof n.attributes.end === "number" ? n.attributes.end : r);
  const v = s.slice(start, Math.max(start, end));
  return { dtype: "int64", dims: [v.length], v };
}

function product(ds: Dim[]): Dim {
  let p = 1;
  let batch = false;
  for (const d of ds) {
    if (d === null) return null;
    if (d === BATCH) {
      if (batch) return null;
      batch = true;
    } else p *= d;
  }
  return batch ? (p === 1 ? BATCH : null) : p;
}

function sum(ds: Dim[]): Dim {
  let s = 0;
  for (const d of ds) {
    if (typeof d !== "number") return null;
    s += d;
  }
  return s;
}

/** Multidirectional (numpy) broadcasting of two shapes. */
function broadcast(a: Dim[], b: Dim[]): Dim[] {
  const r = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < r; i++) {
    const x = i < r - a.length ? 1 : a[i - (r - a.length)];
    const y = i < r - b.length ? 1 : b[i - (r - b.length)];
    out.push(x === 1 ? y : y === 1 ? x : x === y ? x : null);
  }
  return out;
}

/** Reshape's output shape: 0 copies the input dimension (unless allowzero), -1 is inferred. */
function reshapeDims(input: Dim[], target: Dim[], allowZero: boolean): Dim[] {
  const out: Dim[] = target.map((t, i) => (t === 0 && !allowZero ? (input[i] ?? null) : t));
  const free = out.findIndex((d) => d === -1);
  if (free < 0) return out;
  const inBatch = input.filter((d) => d === BATCH).length;
  const outBatch = out.filter((d) => d === BATCH).length;
  const inNum = input.filter((d): d is number => typeof d === "number");
  const outNum = out.filter((d, i): d is number => typeof d === "number" && i !== free);
  if (
    input.some((d) => d === null) ||
    out.some((d, i) => d === null || (i !== free && d === -1)) ||
    inBatch > 1 ||
    outBatch > inBatch
  ) {
    out[free] = null;
    return out;
  }
  const p = inNum.reduce((a, b) => a * b, 1);
  const q = outNum.reduce((a, b) => a * b, 1);
  const r = q > 0 && p % q === 0 ? p / q : null;
  // view(-1, features) of a batched tensor: the free dimension absorbs the batch.
  out[free] = inBatch === outBatch ? r : r === 1 ? BATCH : null;
  return out;
}

function squeezeDims(op: string, dims: Dim[], axesV: Dim[] | undefined): Dim[] | null {
  if (op === "Unsqueeze") {
    if (!axesV?.every((a) => typeof a === "number")) return null;
    const r = dims.length + axesV.length;
    const axes = axesV.map((a) => (a < 0 ? a + r : a));
    if (axes.some((a) => a < 0 || a >= r) || new Set(axes).size !== axes.length) return null;
    const out: Dim[] = [];
    let k = 0;
    for (let i = 0; i < r; i++) out.push(axes.includes(i) ? 1 : dims[k++]);
    return out;
  }
  if (!axesV) return dims.every((d) => typeof d === "number") ? dims.filter((d) => d !== 1) : null;
  if (!axesV.every((a) => typeof a === "number")) return null;
  const axes = axesV.map((a) => (a < 0 ? a + dims.length : a));
  if (axes.some((a) => a < 0 || a >= dims.length || (dims[a] !== 1 && dims[a] !== null))) return null;
  return dims.filter((_, i) => !axes.includes(i));
}

function castValue(e: number, to: OnnxDType): number {
  switch (to) {
    case "float32":
    case "float16":
      return Math.fround(e);
    case "float64":
      return e;
    case "bool":
      return e !== 0 ? 1 : 0;
    case "int32":
      return Math.trunc(e) | 0;
    case "int16":
      return (Math.trunc(e) << 16) >> 16;
    case "int8":
      return (Math.trunc(e) << 24) >> 24;
    case "uint16":
      return Math.trunc(e) & 0xffff;
    case "uint8":
      return Math.trunc(e) & 0xff;
    default:
      return Math.trunc(e);
  }
}

function elementwise(op: string, x: Static, y: Static): Static[] | null {
  const dims = broadcast(x.dims, y.dims);
  if (!dims.every((d) => typeof d === "number")) return null;
  const out = dims;
  const isInt = INT_TYPES.has(x.dtype);
  const index = (s: Static, flat: number): number => {
    // Map an output index to the (broadcast) input index.
    let idx = 0;
    let stride = 1;
    let rem = flat;
    const off = out.length - s.dims.length;
    const strides: number[] = [];
    for (let i = s.dims.length - 1; i >= 0; i--) {
      strides[i] = stride;
      stride *= s.dims[i];
    }
    for (let i = out.length - 1; i >= 0; i--) {
      const c = rem % out[i];
      rem = Math.floor(rem / out[i]);
      const j = i - off;
      if (j >= 0 && s.dims[j] !== 1) idx += c * strides[j];
    }
    return idx;
  };
  const v: Dim[] = [];
  for (let k = 0; k < numel(out); k++) {
    const a = x.v[index(x, k)];
    const b = y.v[index(y, k)];
    if (typeof a !== "number" || typeof b !== "number") return null;
    let r =
      op === "Add"
        ? a + b
        : op === "Sub"
          ? a - b
          : op === "Mul"
            ? a * b
            : isInt
              ? b === 0
                ? NaN
                : Math.trunc(a / b)
              : a / b;
    if (isInt && !Number.isFinite(r)) return null;
    if (x.dtype === "float32") r = Math.fround(r);
    v.push(r);
  }
  return [{ dtype: x.dtype, dims: out, v }];
}

function slice(x: Static, n: OnnxNode, ins: (Static | undefined)[], opset: number): Static[] | null {
  const r = x.dims.length;
  const get = (k: number, name: string): Dim[] | undefined =>
    opset >= 10 ? ins[k]?.v : Array.isArray(n.attributes[name]) ? (n.attributes[name] as number[]) : undefined;
  const starts = get(1, "starts");
  const ends = get(2, "ends");
  if (!starts || !ends || starts.length !== ends.length) return null;
  const axes = get(3, "axes") ?? starts.map((_, i) => i);
  const steps = (opset >= 10 ? ins[4]?.v : undefined) ?? starts.map(() => 1);
  const all = [...starts, ...ends, ...axes, ...steps];
  if (!all.every((e) => typeof e === "number") || axes.length !== starts.length || steps.length !== starts.length)
    return null;
  const lo = x.dims.map(() => 0);
  const hi = [...x.dims];
  const st = x.dims.map(() => 1);
  for (let i = 0; i < starts.length; i++) {
    let a = axes[i] as number;
    if (a < 0) a += r;
    if (a < 0 || a >= r) return null;
    const d = x.dims[a];
    const step = steps[i] as number;
    if (step === 0) return null;
    const clamp = (v: number, neg: boolean): number => {
      if (v < 0) v += d;
      return step > 0 ? Math.min(Math.max(v, 0), d) : Math.min(Math.max(v, neg ? -1 : 0), d - 1);
    };
    lo[a] = clamp(starts[i] as number, false);
    hi[a] = clamp(ends[i] as number, true);
    st[a] = step;
  }
  const outDims = x.dims.map((_, i) => Math.max(0, Math.ceil((hi[i] - lo[i]) / st[i])));
  const strides: number[] = [];
  let s = 1;
  for (let i = r - 1; i >= 0; i--) {
    strides[i] = s;
    s *= x.dims[i];
  }
  const v: Dim[] = [];
  const total = numel(outDims);
  for (let k = 0; k < total; k++) {
    let rem = k;
    let idx = 0;
    for (let i = r - 1; i >= 0; i--) {
      const c = rem % outDims[i];
      rem = Math.floor(rem / outDims[i]);
      idx += (lo[i] + c * st[i]) * strides[i];
    }
    v.push(x.v[idx]);
  }
  return [{ dtype: x.dtype, dims: outDims, v }];
}
