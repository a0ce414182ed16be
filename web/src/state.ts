/**
 * The playground's whole state, and its round trip through the URL hash (#data=moons&lr=0.1&…), so that any view
 * can be shared and a reload restores it. Keys are the CLI's flag names (gcx train --l2 …), values are validated
 * and anything unknown or out of range falls back to the default.
 */
import { SYNTHETIC_NAMES, type SyntheticName } from "../../src/data/synthetic.js";
import type { Activation } from "../../src/models/spec.js";
import { INIT_SCHEMES, type InitScheme } from "../../src/models/init.js";

/** The activations of src/models/spec.ts (listed here so that the bundle does not pull in its zod schemas). */
export const ACTIVATIONS = ["relu", "tanh", "identity"] as const satisfies readonly Activation[];

export const OPTIMIZERS = ["sgd", "adam"] as const;
export type OptimizerName = (typeof OPTIMIZERS)[number];

export interface State {
  data: SyntheticName;
  noise: number;
  size: number;
  classes: number;
  depth: number;
  width: number;
  activation: Activation;
  init: InitScheme;
  initScale: number;
  optimizer: OptimizerName;
  lr: number;
  batchSize: number;
  seed: number;
  stepsPerFrame: number;
  l2: number;
  spectral: number;
  flatness: number;
  gc: number;
  gcProbes: number;
  inputNoise: number;
  labelNoise: number;
}

export const DEFAULT_STATE: State = {
  data: "moons",
  noise: 0.1,
  size: 200,
  classes: 3,
  depth: 2,
  width: 16,
  activation: "relu",
  init: "he",
  initScale: 1,
  optimizer: "sgd",
  lr: 0.03,
  batchSize: 32,
  seed: 1,
  stepsPerFrame: 5,
  l2: 0,
  spectral: 0,
  flatness: 0,
  gc: 0,
  gcProbes: 0,
  inputNoise: 0,
  labelNoise: 0,
};

/** How a changed field takes effect: a new data set and model, or new training settings on the same model. */
export type Effect = "reset" | "train" | "none";

interface Base<K extends keyof State> {
  key: K;
  /** Name in the URL (the CLI flag without dashes). */
  param: string;
  label: string;
  group: "Data" | "Network" | "Training" | "Regularizers";
  effect: Effect;
  help?: string;
}
export interface EnumField<K extends keyof State = keyof State> extends Base<K> {
  kind: "enum";
  values: readonly string[];
}
export interface NumberField<K extends keyof State = keyof State> extends Base<K> {
  kind: "number";
  min: number;
  max: number;
  integer?: boolean;
  /** Offered values (a select); without them a slider from min to max in `step`s. */
  presets?: readonly number[];
  step?: number;
}
export type Field = EnumField | NumberField;

const STRENGTHS = [0, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1];

export const FIELDS: readonly Field[] = [
  { key: "data", param: "data", label: "Data set", group: "Data", effect: "reset", kind: "enum", values: SYNTHETIC_NAMES, help: "sine: 1-D regression; moons, circles, spirals: 2-D classification" },
  { key: "noise", param: "noise", label: "Noise", group: "Data", effect: "reset", kind: "number", min: 0, max: 0.5, step: 0.01 },
  { key: "size", param: "size", label: "Examples (train = test)", group: "Data", effect: "reset", kind: "number", min: 20, max: 1000, step: 10, integer: true },
  { key: "classes", param: "classes", label: "Spiral arms", group: "Data", effect: "reset", kind: "number", min: 2, max: 6, step: 1, integer: true },
  { key: "depth", param: "depth", label: "Hidden layers", group: "Network", effect: "reset", kind: "number", min: 0, max: 6, step: 1, integer: true },
  { key: "width", param: "width", label: "Neurons per layer", group: "Network", effect: "reset", kind: "number", min: 1, max: 64, step: 1, integer: true },
  { key: "activation", param: "activation", label: "Activation", group: "Network", effect: "reset", kind: "enum", values: ACTIVATIONS },
  { key: "init", param: "init", label: "Initialization", group: "Network", effect: "reset", kind: "enum", values: INIT_SCHEMES, help: "weight std² = gain/fan: He 2/fan_in, Glorot 2/(fan_in+fan_out), LeCun 1/fan_in" },
  { key: "initScale", param: "init-scale", label: "Init scale", group: "Network", effect: "reset", kind: "number", min: 0.1, max: 4, step: 0.05 },
  { key: "seed", param: "seed", label: "Seed", group: "Network", effect: "reset", kind: "number", min: 0, max: 999999, integer: true, help: "drives data, initialization, batches and noise" },
  { key: "optimizer", param: "optimizer", label: "Optimizer", group: "Training", effect: "train", kind: "enum", values: OPTIMIZERS },
  { key: "lr", param: "lr", label: "Learning rate", group: "Training", effect: "train", kind: "number", min: 1e-5, max: 10, presets: [1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1, 3] },
  { key: "batchSize", param: "batch-size", label: "Batch size", group: "Training", effect: "train", kind: "number", min: 1, max: 1000, integer: true, presets: [1, 2, 4, 8, 16, 32, 64, 128, 256] },
  { key: "stepsPerFrame", param: "steps-per-frame", label: "Steps per frame", group: "Training", effect: "none", kind: "number", min: 1, max: 100, integer: true, presets: [1, 2, 5, 10, 20, 50, 100] },
  { key: "l2", param: "l2", label: "L2 λ (T1)", group: "Regularizers", effect: "train", kind: "number", min: 0, max: 100, presets: STRENGTHS, help: "λ·Σ‖W‖_F², weight decay" },
  { key: "spectral", param: "spectral", label: "Spectral λ (T2)", group: "Regularizers", effect: "train", kind: "number", min: 0, max: 100, presets: STRENGTHS, help: "λ·Σ‖W‖_op², by power iteration" },
  { key: "flatness", param: "flatness", label: "Flatness λ (T3/T4)", group: "Regularizers", effect: "train", kind: "number", min: 0, max: 100, presets: STRENGTHS, help: "λ·‖∇_θ L‖², explicit gradient regularization" },
  { key: "gc", param: "gc", label: "GC penalty α (X)", group: "Regularizers", effect: "train", kind: "number", min: 0, max: 100, presets: STRENGTHS, help: "α·GC of the batch, by double backprop" },
  { key: "gcProbes", param: "gc-probes", label: "GC penalty probes", group: "Regularizers", effect: "train", kind: "number", min: 0, max: 64, integer: true, presets: [0, 1, 2, 4, 8], help: "0 = exact Jacobians; n = unbiased estimate with n random probes" },
  { key: "inputNoise", param: "input-noise", label: "Input noise σ (T5)", group: "Regularizers", effect: "train", kind: "number", min: 0, max: 10, presets: [0, 0.01, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5] },
  { key: "labelNoise", param: "label-noise", label: "Label noise p (T5)", group: "Regularizers", effect: "train", kind: "number", min: 0, max: 1, presets: [0, 0.05, 0.1, 0.2, 0.3, 0.5] },
];

function parseField(f: Field, raw: string): State[keyof State] | undefined {
  if (f.kind === "enum") return f.values.includes(raw) ? (raw as State[keyof State]) : undefined;
  const v = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(v) || v < f.min || v > f.max) return undefined;
  if (f.integer && !Number.isInteger(v)) return undefined;
  return v;
}

/** Parameters of a URL hash or query string ("#a=1&b=2", "?a=1" or "a=1"). */
export function paramsOf(hash: string): URLSearchParams {
  return new URLSearchParams(hash.replace(/^[#?]/, ""));
}

/** The state a URL hash describes; missing or invalid values take their defaults. */
export function parseState(hash: string): State {
  const p = paramsOf(hash);
  const s: Record<string, unknown> = { ...DEFAULT_STATE };
  for (const f of FIELDS) {
    const raw = p.get(f.param);
    if (raw === null) continue;
    const v = parseField(f, raw);
    if (v !== undefined) s[f.key] = v;
  }
  return s as unknown as State;
}

/** The URL hash (without '#') for a state; every field is written so a shared link does not depend on defaults. */
export function serializeState(s: State): string {
  const p = new URLSearchParams();
  for (const f of FIELDS) p.set(f.param, String(s[f.key]));
  return p.toString();
}

/** Which effect a change from `a` to `b` needs: the strongest among the changed fields. */
export function effectOf(a: State, b: State): Effect {
  let effect: Effect = "none";
  for (const f of FIELDS) {
    if (a[f.key] === b[f.key]) continue;
    if (f.effect === "reset") return "reset";
    if (f.effect === "train") effect = "train";
  }
  return effect;
}

/** Writes the state into the address bar without adding a history entry. */
export function writeUrl(s: State, extra?: URLSearchParams): void {
  let hash = serializeState(s);
  if (extra && [...extra.keys()].length) hash += "&" + extra.toString();
  history.replaceState(null, "", `${location.pathname}${location.search}#${hash}`);
}
