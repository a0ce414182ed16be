/** `loadOnnx`: an ONNX file exported by torch (opsets 11–17) as a gcx graph model with its parameters. */
import { UserError } from "../../util/errors.js";
import { readFileBounded } from "../../util/files.js";
import { MAX_WEIGHTS_BYTES, type LoadedModel } from "../io.js";
import { compileNetwork } from "../network.js";
import { parseModelSpec } from "../spec.js";
import { onnxToGraph } from "./convert.js";
import { decodeOnnx } from "./decode.js";
import { foldShapes } from "./shapes.js";
import { checkSupported } from "./support.js";

/** Whether a path names an ONNX file (by its `.onnx` extension). */
export function isOnnxPath(path: string): boolean {
  return /\.onnx$/i.test(path);
}

/**
 * Loads an ONNX file exported by `torch.onnx.export` (opsets 11–17) as a graph model with its parameters;
 * an unsupported op or attribute is a one-line UserError naming the node.
 */
export function loadOnnx(file: string): LoadedModel {
  const decoded = decodeOnnx(readFileBounded(file, MAX_WEIGHTS_BYTES, "ONNX model"), file);
  const input = decoded.graph.inputs[0];
  const dims = input?.shape?.slice(1) ?? [];
  if (!input || dims.length === 0 || dims.some((d) => typeof d !== "number" || d <= 0)) {
    throw new UserError(
      `${file}: the model's input must have fixed sizes after the batch dimension (got [${(input?.shape ?? []).map(String)}])`,
    );
  }
  const model = foldShapes(decoded, dims as number[]);
  checkSupported(model);
  const { spec: raw, params } = onnxToGraph(model);
  const parsed = parseModelSpec(raw);
  if (!parsed.ok)
    throw new UserError(`${file}: cannot be expressed as a gcx graph model: ${parsed.problems.join("; ")}`);
  const net = compileNetwork(parsed.spec);
  for (const info of net.params) {
    const t = params[info.name];
    if (!t || t.shape.join() !== info.shape.join())
      throw new UserError(
        `${file}: parameter ${info.name} has shape [${t?.shape ?? "missing"}], the graph needs [${info.shape}]`,
      );
    const bad = t.data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new UserError(`${file}: parameter ${info.name} holds a non-finite value at index ${bad}`);
  }
  return { spec: parsed.spec, net, params };
}
