/**
 * Turns a `--model` argument into a network with parameters: a saved model directory, or a spec to initialize
 * fresh — `mlp:784-256-256-10[:relu|tanh|identity]`, `cnn` (the default small CNN for the data's image shape),
 * or a JSON model description. With no argument: the built-in default, a He-initialized MLP with two hidden
 * layers of 256 sized to the data (784-256-256-10 on MNIST).
 */
import { existsSync, statSync } from "node:fs";
import type { Dataset } from "../data/dataset.js";
import { inputSize } from "../data/dataset.js";
import { UserError } from "../util/errors.js";
import { initParams, type InitOptions } from "./init.js";
import { join } from "node:path";
import { loadModel, MODEL_FILE, readModelSpec, type LoadedModel } from "./io.js";
import { compileNetwork } from "./network.js";
import { parseResnetArg, resnetSpec } from "./zoo.js";
import { isOnnxPath, loadOnnx } from "./onnx/load.js";
import { ACTIVATIONS, defaultCnnSpec, parseModelSpec, type Activation, type ModelSpec } from "./spec.js";

export const DEFAULT_HIDDEN = [256, 256];

/** A model found from a command-line style argument, with where it came from. */
export interface ResolvedModel extends LoadedModel {
  /** Where it came from, for reports: a directory path or "init:<spec>". */
  source: string;
}

export function defaultSpecFor(ds: Dataset): ModelSpec {
  return { kind: "mlp", sizes: [inputSize(ds), ...DEFAULT_HIDDEN, ds.numOutputs], activation: "relu" };
}

export function parseModelArg(arg: string, ds: Dataset): ModelSpec {
  const text = arg.trim();
  if (text.startsWith("{")) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new UserError(`--model: malformed JSON (${(e as Error).message})`);
    }
    const r = parseModelSpec(json);
    if (!r.ok) throw new UserError(`--model: invalid model description: ${r.problems.join("; ")}`);
    return r.spec;
  }
  if (text === "cnn") {
    if (!ds.imageShape) throw new UserError(`--model cnn needs image data; "${ds.name}" is not an image data set`);
    return defaultCnnSpec([...ds.imageShape], ds.numOutputs);
  }
  const res = parseResnetArg(text);
  if (typeof res === "string") throw new UserError(`--model ${res}`);
  if (res) {
    if (!ds.imageShape) throw new UserError(`--model ${text} needs image data; "${ds.name}" is not an image data set`);
    const [h, w, c] = ds.imageShape;
    return resnetSpec(res.depth, [c, h, w], ds.numOutputs, res.width);
  }
  const m = /^mlp:(\d+(?:-\d+)+)(?::(\w+))?$/.exec(text);
  if (m) {
    const sizes = m[1].split("-").map(Number);
    if (sizes.some((s) => s <= 0)) throw new UserError(`--model ${arg}: layer sizes must be positive`);
    const act = (m[2] ?? "relu") as Activation;
    if (!ACTIVATIONS.includes(act))
      throw new UserError(`--model ${arg}: unknown activation "${m[2]}"; choose one of: ${ACTIVATIONS.join(", ")}`);
    return { kind: "mlp", sizes, activation: act };
  }
  throw new UserError(
    `--model "${arg}" is neither a model directory nor a model spec (mlp:784-256-10[:relu|tanh|identity], cnn, resnet:8|18|20[:wN], an .onnx file, or JSON)`,
  );
}

/**
 * The architecture a `--model` argument (or a config's model entry) stands for, without allocating its parameters:
 * for budget checks before anything large is built.
 */
export function specForModelArg(arg: string | Record<string, unknown> | undefined, ds: Dataset): ModelSpec {
  if (arg !== undefined && typeof arg === "object") {
    const r = parseModelSpec(arg);
    if (!r.ok) throw new UserError(`config: model: ${r.problems.join("; ")}`);
    return r.spec;
  }
  if (arg !== undefined && isOnnxPath(arg) && existsSync(arg)) return loadOnnx(arg).spec;
  if (arg !== undefined && existsSync(arg)) {
    if (!statSync(arg).isDirectory()) throw new UserError(`${arg}: not a model directory (nor an .onnx file)`);
    const spec = readModelSpec(arg);
    try {
      compileNetwork(spec);
    } catch (e) {
      // As loadModel says it: name the file that holds the impossible architecture.
      if (e instanceof UserError)
        throw new UserError(
          `${join(arg, MODEL_FILE)}: invalid model description: ${e.message.replace(/^model: /, "")}`,
        );
      throw e;
    }
    return spec;
  }
  return arg === undefined ? defaultSpecFor(ds) : parseModelArg(arg, ds);
}

/**
 * The model a `--model` argument names: a model directory, an ONNX file, a spec string (`mlp:2-64-2`, `cnn`,
 * `resnet:8`), a JSON description, or (undefined) the default MLP for the dataset, freshly initialized with `init`.
 */
export function resolveModel(arg: string | undefined, ds: Dataset, init: InitOptions): ResolvedModel {
  if (arg !== undefined && isOnnxPath(arg) && existsSync(arg)) return { ...loadOnnx(arg), source: arg };
  if (arg !== undefined && existsSync(arg)) return { ...loadModel(arg), source: arg };
  const spec = arg === undefined ? defaultSpecFor(ds) : parseModelArg(arg, ds);
  const net = compileNetwork(spec);
  const params = initParams(net, init);
  const desc =
    spec.kind === "mlp"
      ? `mlp:${spec.sizes.join("-")}:${spec.activation}`
      : spec.kind === "cnn"
        ? "cnn"
        : (arg ?? "graph");
  return {
    spec,
    net,
    params,
    source: `init:${desc} (${init.scheme}-${init.distribution}, scale ${init.scale}, seed ${init.seed})`,
  };
}
