/**
 * The playground's whole state, and its round trip through the URL hash (#data=moons&lr=0.1&…), so that any view
 * can be shared and a reload restores it. Keys are the CLI's flag names (gcx train --l2 …), values are validated
 * and anything unknown or out of range falls back to the default.
 */
import { SYNTHETIC_NAMES, type SyntheticName } from "../../src/data/synthetic.js";
import type { Activation } from "../../src/models/spec.js";
import { INIT_SCHEMES, type InitScheme } from "../../src/models/init.js";

/** The activations of src/models/spec.ts (listed here so that the bundle does not pull in its zod schemas). */
export const ACTIVATIONS = ["relu", "tanh", "sigmoid", "gelu", "identity"] as const satisfies readonly Activation[];

/** Colour scale of the ‖∂g/∂x‖² heatmap: fixed decades shared by every run and frame, or fitted to each frame. */
export const SCALES = ["fixed", "auto"] as const;
export type ScaleName = (typeof SCALES)[number];
/** The fixed scale's range (log10): 10⁻³ to 10³. */
export const FIXED_SCALE: readonly [number, number] = [-3, 3];

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
  /** Test examples per training example (the test split has round(size·testRatio) examples). */
  testRatio: number;
  /** Hidden widths, one per layer ("64-32-16"); empty: `depth` layers of `width`. */
  hidden: string;
  scale: ScaleName;
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
  testRatio: 1,
  hidden: "",
  scale: "fixed",
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
  group: "Data" | "Network" | "Training" | "Regularizers" | "View";
  effect: Effect;
  /** One visible line of help under the control (what it does, in plain words). */
  help: string;
}
export interface TextField<K extends keyof State = keyof State> extends Base<K> {
  kind: "text";
  /** The value is valid when it matches (an empty string always is). */
  pattern: RegExp;
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
export type Field = EnumField | NumberField | TextField;

const STRENGTHS = [0, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1];

export const FIELDS: readonly Field[] = [
  {
    key: "data",
    param: "data",
    label: "Data set",
    group: "Data",
    effect: "reset",
    kind: "enum",
    values: SYNTHETIC_NAMES,
    help: "sine: 1-D regression; the others: 2-D classification",
  },
  {
    key: "noise",
    param: "noise",
    label: "Noise",
    group: "Data",
    effect: "reset",
    kind: "number",
    min: 0,
    max: 0.5,
    step: 0.01,
    help: "std of the Gaussian noise on the inputs (sine: on the targets; blobs: their spread)",
  },
  {
    key: "size",
    param: "size",
    label: "Training examples",
    group: "Data",
    effect: "reset",
    kind: "number",
    min: 20,
    max: 1000,
    step: 10,
    integer: true,
    help: "points in the training set (filled dots); GC is their mean",
  },
  {
    key: "testRatio",
    param: "test-ratio",
    label: "Test / train ratio",
    group: "Data",
    effect: "reset",
    kind: "number",
    min: 0.1,
    max: 4,
    presets: [0.25, 0.5, 1, 2],
    help: "test points (rings) per training point, drawn independently",
  },
  {
    key: "classes",
    param: "classes",
    label: "Classes",
    group: "Data",
    effect: "reset",
    kind: "number",
    min: 2,
    max: 6,
    step: 1,
    integer: true,
    help: "spiral arms or Gaussian blobs (the other sets have 2)",
  },
  {
    key: "depth",
    param: "depth",
    label: "Hidden layers",
    group: "Network",
    effect: "reset",
    kind: "number",
    min: 0,
    max: 6,
    step: 1,
    integer: true,
    help: "0 = a linear (affine) model",
  },
  {
    key: "width",
    param: "width",
    label: "Neurons per layer",
    group: "Network",
    effect: "reset",
    kind: "number",
    min: 1,
    max: 64,
    step: 1,
    integer: true,
    help: "the same width for every hidden layer",
  },
  {
    key: "hidden",
    param: "hidden",
    label: "Per-layer widths",
    group: "Network",
    effect: "reset",
    kind: "text",
    pattern: /^([1-9]\d?(-[1-9]\d?){0,5})?$/,
    help: "e.g. 32-16-8 (up to 6 layers of 1–99) overrides the two above; empty = off",
  },
  {
    key: "activation",
    param: "activation",
    label: "Activation",
    group: "Network",
    effect: "reset",
    kind: "enum",
    values: ACTIVATIONS,
    help: "hidden-layer nonlinearity (gelu = x·Φ(x))",
  },
  {
    key: "init",
    param: "init",
    label: "Initialization",
    group: "Network",
    effect: "reset",
    kind: "enum",
    values: INIT_SCHEMES,
    help: "weight std² = gain/fan: He 2/fan_in, Glorot 2/(fan_in+fan_out), LeCun 1/fan_in",
  },
  {
    key: "initScale",
    param: "init-scale",
    label: "Init scale (T6)",
    group: "Network",
    effect: "reset",
    kind: "number",
    min: 0.1,
    max: 4,
    step: 0.05,
    help: "multiplies the initial weights; T6: smaller start → lower GC",
  },
  {
    key: "seed",
    param: "seed",
    label: "Seed",
    group: "Network",
    effect: "reset",
    kind: "number",
    min: 0,
    max: 999999,
    integer: true,
    help: "an integer 0–999999; drives data, initialization, batches and noise",
  },
  {
    key: "optimizer",
    param: "optimizer",
    label: "Optimizer",
    group: "Training",
    effect: "train",
    kind: "enum",
    values: OPTIMIZERS,
    help: "plain SGD, or Adam (adaptive steps)",
  },
  {
    key: "lr",
    param: "lr",
    label: "Learning rate (T4)",
    group: "Training",
    effect: "train",
    kind: "number",
    min: 1e-5,
    max: 10,
    presets: [1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1, 3],
    help: "step size; T4: larger steps implicitly lower GC",
  },
  {
    key: "batchSize",
    param: "batch-size",
    label: "Batch size (T4)",
    group: "Training",
    effect: "train",
    kind: "number",
    min: 1,
    max: 1000,
    integer: true,
    presets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    help: "examples per step; T4: smaller batches implicitly lower GC",
  },
  {
    key: "stepsPerFrame",
    param: "steps-per-frame",
    label: "Steps per frame",
    group: "Training",
    effect: "none",
    kind: "number",
    min: 1,
    max: 100,
    integer: true,
    presets: [1, 2, 5, 10, 20, 50, 100],
    help: "optimization steps between two pictures",
  },
  {
    key: "l2",
    param: "l2",
    label: "L2 λ (T1)",
    group: "Regularizers",
    effect: "train",
    kind: "number",
    min: 0,
    max: 100,
    presets: STRENGTHS,
    help: "T1: λ·Σ‖W‖²_F, weight decay; it lowers the bound ∏‖W‖²_F on GC",
  },
  {
    key: "spectral",
    param: "spectral",
    label: "Spectral λ (T2)",
    group: "Regularizers",
    effect: "train",
    kind: "number",
    min: 0,
    max: 100,
    presets: STRENGTHS,
    help: "T2: λ·Σ‖W‖²_op (power iteration); it lowers the Lipschitz bound",
  },
  {
    key: "flatness",
    param: "flatness",
    label: "Flatness λ (T3)",
    group: "Regularizers",
    effect: "train",
    kind: "number",
    min: 0,
    max: 100,
    presets: STRENGTHS,
    help: "T3: λ·‖∇_θ L‖², flat minima (explicit gradient regularization)",
  },
  {
    key: "gc",
    param: "gc",
    label: "GC penalty α (X)",
    group: "Regularizers",
    effect: "train",
    kind: "number",
    min: 0,
    max: 100,
    presets: STRENGTHS,
    help: "X: α·GC of the batch added to the loss (double backprop)",
  },
  {
    key: "gcProbes",
    param: "gc-probes",
    label: "GC penalty probes",
    group: "Regularizers",
    effect: "train",
    kind: "number",
    min: 0,
    max: 64,
    integer: true,
    presets: [0, 1, 2, 4, 8],
    help: "0 = exact Jacobians; n = unbiased estimate with n random probes",
  },
  {
    key: "inputNoise",
    param: "input-noise",
    label: "Input noise σ (T5)",
    group: "Regularizers",
    effect: "train",
    kind: "number",
    min: 0,
    max: 10,
    presets: [0, 0.01, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5],
    help: "T5: fresh Gaussian noise on each batch's inputs",
  },
  {
    key: "labelNoise",
    param: "label-noise",
    label: "Label noise p (T5)",
    group: "Regularizers",
    effect: "train",
    kind: "number",
    min: 0,
    max: 1,
    presets: [0, 0.05, 0.1, 0.2, 0.3, 0.5],
    help: "T5: each step, a label is replaced by a random class with probability p",
  },
  {
    key: "scale",
    param: "scale",
    label: "Heatmap colours",
    group: "View",
    effect: "none",
    kind: "enum",
    values: SCALES,
    help: "fixed: 10⁻³–10³ for every run and frame (comparable); auto: fitted to each frame",
  },
];

/** The value of a field written as text (URL or control), or undefined when it is not valid there. */
export function parseField(f: Field, raw: string): State[keyof State] | undefined {
  if (f.kind === "enum") return f.values.includes(raw) ? raw : undefined;
  if (f.kind === "text") return f.pattern.test(raw) ? raw : undefined;
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

/** Hidden-layer widths of a state: `hidden` when given, else `depth` layers of `width`. */
export function hiddenWidths(s: State): number[] {
  if (s.hidden) return s.hidden.split("-").map(Number);
  return Array.from({ length: s.depth }, () => s.width);
}

/** Test examples of a state. */
export function testSize(s: State): number {
  return Math.max(1, Math.round(s.size * s.testRatio));
}

/** Settings that make each data set learn with the default network (applied when the data set control changes). */
export const DATA_DEFAULTS: Record<SyntheticName, Partial<State>> = {
  sine: { noise: 0.1, optimizer: "adam", lr: 0.01 },
  moons: { noise: 0.1, optimizer: "sgd", lr: 0.03 },
  circles: { noise: 0.05, optimizer: "sgd", lr: 0.1 },
  spirals: { noise: 0, optimizer: "adam", lr: 0.01, depth: 3, width: 32 },
  xor: { noise: 0.05, optimizer: "sgd", lr: 0.1 },
  blobs: { noise: 0.25, optimizer: "sgd", lr: 0.03 },
};

/** Writes the state into the address bar without adding a history entry. */
export function writeUrl(s: State, extra?: URLSearchParams): void {
  let hash = serializeState(s);
  if (extra && [...extra.keys()].length) hash += "&" + extra.toString();
  history.replaceState(null, "", `${location.pathname}${location.search}#${hash}`);
}
