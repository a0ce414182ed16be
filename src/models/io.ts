/**
 * Saved models: a directory with `model.json` (the architecture) and `weights.safetensors` (tensors
 * `layers.{i}.weight` [out, in] or, for conv layers, [out, in, kh, kw], and `layers.{i}.bias` [out]: PyTorch's
 * conventions, so a model trained in PyTorch can be measured here). Files are written to a temporary name and
 * renamed, so a crash never leaves a half-written model.
 */
import { mkdirSync } from "node:fs";
import { constants as bufferConstants } from "node:buffer";
import { onFile, pathKind, readFileBounded, readJsonFile, writeFileAtomic } from "../util/files.js";
import { join } from "node:path";
import { Tensor } from "../engine/tensor.js";
import { UserError } from "../util/errors.js";
import { compileNetwork, type Network, type Params } from "./network.js";
import { parseModelSpec, type ModelSpec } from "./spec.js";
import { decodeSafetensors, encodeSafetensors, type StoredTensor } from "./safetensors.js";

export const MODEL_FILE = "model.json";
export const WEIGHTS_FILE = "weights.safetensors";

/**
 * Largest weights file read. Weights are read whole into one Buffer, so the bound is what a Buffer can hold
 * (buffer.constants.MAX_LENGTH: 4 GiB on 64-bit Node 20, more on later versions), capped at 16 GiB: far above
 * the models measured here (a full ResNet-18 in float32 is ~45 MB) yet a clear one-line refusal, rather than an
 * allocation failure, for anything that could not be decoded anyway.
 */
export const MAX_WEIGHTS_BYTES = Math.min(bufferConstants.MAX_LENGTH, 16 * 1024 ** 3);

/** A model ready to run: its description, compiled network and parameters. */
export interface LoadedModel {
  spec: ModelSpec;
  net: Network;
  params: Params;
}

export { writeFileAtomic };

/** Writes a model directory: `model.json` (the spec) and `weights.safetensors` (the parameters, PyTorch layouts). */
export function saveModel(dir: string, spec: ModelSpec, params: Params, metadata?: Record<string, string>): void {
  const net = compileNetwork(spec);
  onFile("create", dir, () => mkdirSync(dir, { recursive: true }));
  const stored: Record<string, StoredTensor> = {};
  for (const info of net.params) {
    const t = params[info.name];
    const isConv = info.shape.length === 4;
    stored[info.name] = isConv
      ? { shape: ohwiToOihwShape(t.shape), data: ohwiToOihw(t) }
      : { shape: [...t.shape], data: t.data };
  }
  // Weights first, then the spec: a directory with a model.json always has matching weights beside it.
  writeFileAtomic(join(dir, WEIGHTS_FILE), encodeSafetensors(stored, metadata));
  writeFileAtomic(join(dir, MODEL_FILE), JSON.stringify(spec, null, 2) + "\n");
}

export function readModelSpec(dir: string): ModelSpec {
  const file = join(dir, MODEL_FILE);
  if (pathKind(file) === "missing")
    throw new UserError(`${dir}: no ${MODEL_FILE} (a model directory holds ${MODEL_FILE} and ${WEIGHTS_FILE})`);
  const r = parseModelSpec(readJsonFile(file, "model description"));
  if (!r.ok) throw new UserError(`${file}: invalid model description: ${r.problems.join("; ")}`);
  return r.spec;
}

/** Reads a model directory written by {@link saveModel} (or by PyTorch with the same layout); checks shapes and finiteness. */
export function loadModel(dir: string): LoadedModel {
  if (pathKind(dir) !== "directory") throw new UserError(`${dir}: not a model directory`);
  const spec = readModelSpec(dir);
  let net: Network;
  try {
    net = compileNetwork(spec);
  } catch (e) {
    // "model: layers.2 (conv) kernel 5 does not fit a 3x3 input": say which file holds that model.
    if (e instanceof UserError)
      throw new UserError(`${join(dir, MODEL_FILE)}: invalid model description: ${e.message.replace(/^model: /, "")}`);
    throw e;
  }
  const file = join(dir, WEIGHTS_FILE);
  if (pathKind(file) === "missing") throw new UserError(`${dir}: no ${WEIGHTS_FILE}`);
  const stored = decodeSafetensors(readFileBounded(file, MAX_WEIGHTS_BYTES, "safetensors weights file"), file);
  const params: Params = {};
  for (const info of net.params) {
    const s = Object.hasOwn(stored, info.name) ? stored[info.name] : undefined;
    if (!s) throw new UserError(`${file}: missing tensor "${info.name}" required by ${MODEL_FILE}`);
    const isConv = info.shape.length === 4;
    const expected = isConv ? ohwiToOihwShape(info.shape) : info.shape;
    if (s.shape.length !== expected.length || s.shape.some((v, i) => v !== expected[i])) {
      throw new UserError(`${file}: tensor "${info.name}" has shape [${s.shape}], ${MODEL_FILE} needs [${expected}]`);
    }
    const bad = s.data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0)
      throw new UserError(`${file}: tensor "${info.name}" holds a non-finite value (${s.data[bad]}) at index ${bad}`);
    const data = s.data instanceof Float32Array ? s.data : Float32Array.from(s.data);
    params[info.name] = isConv ? oihwToOhwi(data, expected) : new Tensor(data, info.shape);
  }
  return { spec, net, params };
}

function ohwiToOihwShape(shape: readonly number[]): number[] {
  const [o, h, w, i] = shape;
  return [o, i, h, w];
}

function ohwiToOihw(t: Tensor): Float32Array | Float64Array {
  const [o, h, w, i] = t.shape;
  const out = new (t.data.constructor as Float32ArrayConstructor)(t.size);
  for (let a = 0; a < o; a++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let c = 0; c < i; c++) out[((a * i + c) * h + y) * w + x] = t.data[((a * h + y) * w + x) * i + c];
  return out;
}

function oihwToOhwi(data: Float32Array, oihw: readonly number[]): Tensor {
  const [o, i, h, w] = oihw;
  const out = new Float32Array(data.length);
  for (let a = 0; a < o; a++)
    for (let c = 0; c < i; c++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) out[((a * h + y) * w + x) * i + c] = data[((a * i + c) * h + y) * w + x];
  return new Tensor(out, [o, h, w, i]);
}
