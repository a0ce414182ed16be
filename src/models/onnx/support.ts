/**
 * What the ONNX import accepts: the ops gcx graph models can express (GRAPH_FORMAT.md), in the default domain at
 * opsets 11–17, without attributes whose meaning the conversion would not honour. Run it on a folded model
 * (foldShapes), so that the Shape/Gather/... arithmetic of `view(x.size(0), -1)` is gone.
 */
import { UserError } from "../../util/errors.js";
import { quote } from "./types.js";
import type { OnnxAttribute, OnnxModel, OnnxNode } from "./types.js";

export const MIN_OPSET = 11;
export const MAX_OPSET = 17;

export const SUPPORTED_OPS: ReadonlySet<string> = new Set([
  "Gemm",
  "MatMul",
  "Add",
  "Sub",
  "Mul",
  "Div",
  "Pow",
  "Sqrt",
  "Erf",
  "ReduceMean",
  "LayerNormalization",
  "Conv",
  "BatchNormalization",
  "Relu",
  "LeakyRelu",
  "Gelu",
  "Sigmoid",
  "Tanh",
  "Softplus",
  "MaxPool",
  "AveragePool",
  "GlobalAveragePool",
  "Flatten",
  "Reshape",
  "Concat",
  "Pad",
  "Identity",
  "Dropout",
  "Constant",
  "Transpose",
]);

/** Every problem found, one line each (`<file>: node "<name>" (<op>, opset <n>): <problem>`). */
export function unsupportedProblems(model: OnnxModel): string[] {
  const file = model.file;
  const opset = model.opsetVersion;
  if (opset < MIN_OPSET || opset > MAX_OPSET) {
    return [
      `${file}: opset ${opset} of the default ONNX domain is not supported (only ${MIN_OPSET} to ${MAX_OPSET}; re-export with opset_version in that range)`,
    ];
  }
  const init = model.graph.initializers;
  const problems: string[] = [];
  for (const n of model.graph.nodes) {
    const say = (problem: string): void => {
      problems.push(`${file}: node ${quote(n.name)} (${opLabel(n)}, opset ${opset}): ${problem}`);
    };
    if (n.domain !== "") {
      say(`op ${opLabel(n)} of domain ${quote(n.domain)} is not supported`);
      continue;
    }
    if (!SUPPORTED_OPS.has(n.opType)) {
      const hint = SHAPE_OPS.has(n.opType) ? " (shape arithmetic that could not be folded to constants)" : "";
      say(`op ${opLabel(n)} is not supported${hint}`);
      continue;
    }
    for (const p of attributeProblems(n, init)) say(p);
  }
  return problems;
}

/** Throws a one-line UserError for the first problem (with a count of the others), if any. */
export function checkSupported(model: OnnxModel): void {
  const problems = unsupportedProblems(model);
  if (problems.length === 0) return;
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? "s" : ""})` : "";
  throw new UserError(problems[0] + more);
}

const SHAPE_OPS: ReadonlySet<string> = new Set([
  "Shape",
  "Gather",
  "Unsqueeze",
  "Squeeze",
  "Slice",
  "Cast",
  "Range",
  "ConstantOfShape",
  "Expand",
  "Equal",
  "Where",
]);

function opLabel(n: OnnxNode): string {
  const op = n.opType.length > 60 ? n.opType.slice(0, 60) + "…" : n.opType;
  return quote(op).slice(1, -1);
}

function attributeProblems(n: OnnxNode, init: OnnxModel["graph"]["initializers"]): string[] {
  const a = n.attributes;
  const out: string[] = [];
  const intAttr = (name: string, def: number): number => (typeof a[name] === "number" ? a[name] : def);
  const str = (name: string, def: string): string => (typeof a[name] === "string" ? a[name] : def);
  const not = (name: string, allowed: (v: OnnxAttribute) => boolean, what: string): void => {
    if (name in a && !allowed(a[name])) out.push(`${name}=${show(a[name])} is not supported (${what})`);
  };
  const usedOutput = (k: number): boolean => (n.outputs[k] ?? "") !== "";
  const twoD = (name: string): void => {
    const k = a[name];
    if (Array.isArray(k) && k.length !== 2)
      out.push(`${name}=${show(k)}: only 2-D ${n.opType === "Conv" ? "convolutions" : "pooling"} are supported`);
  };
  switch (n.opType) {
    case "Conv":
      not("auto_pad", (v) => v === "NOTSET" || v === "", "only NOTSET; export with explicit padding");
      twoD("kernel_shape");
      if (n.inputs[1] && init.has(n.inputs[1]) && init.get(n.inputs[1])!.dims.length !== 4) {
        out.push(
          `weight ${quote(n.inputs[1])} has ${init.get(n.inputs[1])!.dims.length} dimensions: only 2-D convolutions are supported`,
        );
      }
      break;
    case "MaxPool":
      not("auto_pad", (v) => v === "NOTSET" || v === "", "only NOTSET");
      not("ceil_mode", (v) => v === 0, "only 0");
      not("storage_order", (v) => v === 0, "only 0");
      not("dilations", (v) => Array.isArray(v) && v.every((d) => d === 1), "only 1");
      twoD("kernel_shape");
      if (usedOutput(1)) out.push("the Indices output is not supported");
      break;
    case "AveragePool":
      not("auto_pad", (v) => v === "NOTSET" || v === "", "only NOTSET");
      not("ceil_mode", (v) => v === 0, "only 0");
      twoD("kernel_shape");
      break;
    case "Pad": {
      const mode = str("mode", "constant");
      if (mode !== "constant") out.push(`mode=${quote(mode)} is not supported (only "constant")`);
      if (n.inputs[1] && !init.has(n.inputs[1])) out.push(`pads ${quote(n.inputs[1])} are not constant`);
      const cv = n.inputs[2] ? init.get(n.inputs[2]) : undefined;
      if (n.inputs[2] && !cv) out.push(`the padding value ${quote(n.inputs[2])} is not constant`);
      if (cv && Array.from(cv.data, Number).some((x) => x !== 0)) out.push("only padding with zeros is supported");
      if (n.inputs[3]) out.push("the axes input is not supported");
      break;
    }
    case "Gemm":
      not("transA", (v) => v === 0, "only 0");
      not("alpha", (v) => v === 1, "only 1");
      not("beta", (v) => v === 1, "only 1");
      break;
    case "Reshape":
      not("allowzero", (v) => v === 0, "only 0");
      if (n.inputs[1] && !init.has(n.inputs[1])) out.push(`the target shape ${quote(n.inputs[1])} is not constant`);
      break;
    case "Flatten":
      not("axis", (v) => v === 1, "only 1: [N, ...] → [N, features]");
      break;
    case "LayerNormalization":
      not("axis", (v) => v === -1, "only -1: normalizing over the last dimension");
      break;
    case "BatchNormalization":
      not("training_mode", (v) => v === 0, "only inference");
      if (usedOutput(1) || usedOutput(2)) out.push("training-mode outputs (running mean/var) are not supported");
      break;
    case "Dropout":
      if (usedOutput(1)) out.push("the mask output is not supported");
      if (n.inputs[2]) {
        const t = init.get(n.inputs[2]);
        if (!t || Array.from(t.data, Number).some((x) => x !== 0)) out.push("training_mode must be a constant false");
      }
      break;
    case "Gelu":
      not("approximate", (v) => v === "none" || v === "tanh", 'only "none" or "tanh"');
      break;
    case "ReduceMean":
      if (intAttr("noop_with_empty_axes", 0) !== 0) out.push("noop_with_empty_axes=1 is not supported");
      break;
  }
  return out;
}

function show(v: OnnxAttribute): string {
  if (typeof v === "number") return String(v);
  if (typeof v === "string") return quote(v);
  if (Array.isArray(v))
    return `[${v.map((e) => (typeof e === "string" ? quote(e) : String(e))).join(",")}]`.slice(0, 100);
  return `tensor [${v.dims}]`;
}
