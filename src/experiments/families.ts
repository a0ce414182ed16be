/**
 * The paper's experiment families (PAPER.md section 3) as declarative, versioned configs. Each varies one knob
 * over a grid with several seeds on data we can ship; a claim's verdict is computed from the results
 * (claims.ts), never assumed. Bump `version` when a family's settings change: trials are keyed by it.
 */
import type { TrainConfig } from "../training/config.js";

export type Profile = "quick" | "full";
export type Expectation = "decreasing" | "increasing" | "peak" | "flat";

export interface KnobGrid {
  /** Name shown in reports, e.g. "λ (L2)". */
  label: string;
  /** TrainConfig key the knob sets, or a pseudo-key handled by the runner ("depth", "width"). */
  key: string;
  values: number[];
  log?: boolean;
}

export interface ClaimDef {
  id: string;
  claim: string;
  expected: Expectation;
  /** Metric whose final value is related to the knob (default gc_train). */
  metric?: string;
  /** Restrict to trials whose `variant` equals this (E1 has several schemes). */
  variant?: string;
}

export interface FamilyDef {
  id: string;
  version: number;
  title: string;
  description: string;
  /**
   * "train": train and log; "init": measure at initialization only; "bounds": train and log, reported only through
   * the bounds section (family B), which also covers every other trained family's runs.
   */
  kind: "train" | "init" | "bounds";
  knob: KnobGrid;
  /** Variants crossed with the knob grid (E1: initialization schemes). */
  variants?: { name: string; config: Partial<TrainConfig> }[];
  base: Partial<TrainConfig>;
  seeds: number[];
  claims: ClaimDef[];
}

/** Shared base for the quick profile: MNIST subset, a small MLP, short training. */
const quickMnist: Partial<TrainConfig> = {
  data: "mnist",
  limit: 4000,
  model: "mlp:784-64-64-10",
  steps: 800,
  batchSize: 64,
  lr: 0.05,
  logEvery: 200,
  checkpointEvery: 200,
  evalSize: 1000,
  gcSize: 200,
  measures: ["norms", "output-grad"],
};

const fullMnist: Partial<TrainConfig> = {
  data: "mnist",
  model: "mlp:784-256-256-10",
  epochs: 10,
  batchSize: 128,
  lr: 0.05,
  logEvery: 500,
  checkpointEvery: 500,
  evalSize: 2000,
  gcSize: 500,
  measures: ["norms", "output-grad", "loss-grad"],
};

export function families(profile: Profile): FamilyDef[] {
  const q = profile === "quick";
  const base = q ? quickMnist : fullMnist;
  const seeds = q ? [0, 1, 2, 3] : [0, 1, 2, 3, 4];
  const sweep = (id: string, title: string, key: string, label: string, values: number[], claim: string, expected: Expectation, extra: Partial<TrainConfig> = {}, log = true): FamilyDef => ({
    id,
    version: 1,
    title,
    description: claim,
    kind: "train",
    knob: { key, label, values, log },
    base: { ...base, ...extra },
    seeds,
    claims: [{ id, claim, expected }],
  });
  return [
    {
      id: "E1",
      version: 1,
      title: "Initialization and depth",
      description:
        "GC at initialization of zero-bias ReLU MLPs of equal widths on MNIST test inputs, for depth 1-6 hidden layers and three initialization schemes (T6): each layer multiplies E‖J‖² by about s²/2, so Glorot/LeCun halve GC per layer while He keeps it flat; a larger init scale raises GC.",
      kind: "init",
      knob: { key: "depth", label: "hidden layers", values: [1, 2, 3, 4, 5, 6] },
      variants: [
        { name: "he", config: { init: "he" } },
        { name: "glorot", config: { init: "glorot" } },
        { name: "lecun", config: { init: "lecun" } },
        { name: "he ×2 scale", config: { init: "he", initScale: 2 } },
      ],
      base: { data: "mnist", limit: 500, model: `width:${q ? 128 : 256}`, bias: 0, gcSize: q ? 200 : 1000, evalSize: 200, measures: ["norms"] },
      seeds: q ? [0, 1, 2, 3, 4] : [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
      claims: [
        { id: "E1 glorot", claim: "Glorot init: GC falls with depth (≈2^-L)", expected: "decreasing", variant: "glorot" },
        { id: "E1 lecun", claim: "LeCun init: GC falls with depth (≈2^-L)", expected: "decreasing", variant: "lecun" },
        { id: "E1 he", claim: "He init: GC roughly flat in depth", expected: "flat", variant: "he" },
      ],
    },
    {
      id: "E1s",
      version: 1,
      title: "Initialization scale",
      description: "GC at initialization of a He-initialized MLP as the weight scale multiplier grows (T6: each layer multiplies E‖J‖² by s²/2).",
      kind: "init",
      knob: { key: "initScale", label: "init scale", values: [0.25, 0.5, 1, 2, 4], log: true },
      base: { data: "mnist", limit: 500, model: q ? "mlp:784-128-128-10" : "mlp:784-256-256-10", init: "he", bias: 0, gcSize: q ? 200 : 1000, evalSize: 200, measures: ["norms"] },
      seeds: q ? [0, 1, 2] : [0, 1, 2, 3, 4],
      claims: [{ id: "E1 scale", claim: "Larger initialization scale → higher GC", expected: "increasing" }],
    },
    sweep("E2", "L2 / weight decay", "l2", "λ (L2)", [0, 1e-4, 1e-3, 1e-2], "Larger L2 penalty → lower GC (T1)", "decreasing"),
    sweep("E3", "Spectral-norm penalty", "spectral", "λ (spectral)", [0, 1e-3, 1e-2, 1e-1], "Stronger spectral penalty → lower GC (T2)", "decreasing"),
    sweep("E4", "Flatness penalty", "flatness", "λ on ‖∇θL‖²", [0, 1e-2, 1e-1, 1], "Stronger flatness penalty → lower GC (T3/T4)", "decreasing"),
    {
      ...sweep("E5", "Learning rate", "lr", "learning rate h", q ? [0.01, 0.03, 0.1, 0.3] : [0.005, 0.01, 0.03, 0.1, 0.3], "Larger learning rate → lower GC (implicit gradient regularization, T4)", "decreasing"),
      // Runs are compared at equal gradient-flow time h·steps, which isolates the implicit regularizer (h/4)‖∇L‖².
      description: "Larger learning rate → lower GC (T4). Each run trains for the same gradient-flow time h·steps, so the only difference is the implicit regularizer (h/4)‖∇θL‖² of the modified loss.",
      claims: [{ id: "E5", claim: "Larger learning rate → lower GC (T4)", expected: "decreasing" }],
    },
    sweep("E6", "Batch size", "batchSize", "batch size B", q ? [8, 32, 128, 512] : [8, 16, 32, 64, 128, 512], "Smaller batch (fixed h) → lower GC (T4)", "increasing"),
    sweep("E7", "Label noise", "labelNoise", "label-noise probability p", [0, 0.1, 0.2, 0.4], "More label noise → lower GC (T5)", "decreasing", {}, false),
    sweep("E8", "Input noise", "inputNoise", "input-noise σ", [0, 0.1, 0.3, 1], "More input noise → lower GC (T5)", "decreasing"),
    sweep("E9", "Explicit GC penalty", "gc", "α (GC penalty)", q ? [0, 1e-3, 1e-2, 1e-1] : [0, 1e-4, 1e-3, 1e-2, 1e-1], "Larger α → lower GC (claim X)", "decreasing", q ? { gcProbes: 2 } : {}),
    {
      id: "B",
      version: 1,
      title: "GC against its bounds",
      description:
        "Runs whose only purpose is to log GC beside the T1 (∏‖W‖_F²), T2 (min(d,k)∏‖W‖_op²) and T3 (first-layer transfer) bounds at every log step; with the other families, every trained run is checked the same way.",
      kind: "bounds",
      knob: { key: "l2", label: "λ (L2)", values: [0, 1e-3], log: true },
      base: { ...base, logEvery: q ? 100 : 250 },
      seeds: q ? [0, 1] : [0, 1, 2],
      claims: [],
    },
    {
      id: "E10",
      version: 2,
      title: "Double descent in width",
      description:
        "One-hidden-layer ReLU MLPs of growing width trained to convergence on a small MNIST subset with 20% fixed label corruption: test loss and GC should peak together near the interpolation threshold (T7).",
      kind: "train",
      // Finer around the interpolation threshold (≈ 6 hidden units for 500 examples × 10 classes in the quick profile).
      knob: { key: "width", label: "hidden width", values: q ? [2, 3, 4, 6, 8, 12, 16, 32, 64, 128] : [2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128, 256, 512], log: true },
      base: { data: "mnist", limit: q ? 500 : 2000, labelCorruption: 0.2, optimizer: "adam", lr: 0.003, steps: q ? 1500 : 6000, batchSize: 100, logEvery: q ? 500 : 1000, checkpointEvery: q ? 500 : 1000, evalSize: q ? 1000 : 2000, gcSize: q ? 200 : 500, measures: ["norms", "output-grad"] },
      seeds: q ? [0, 1, 2, 3, 4] : [0, 1, 2, 3, 4, 5],
      claims: [{ id: "E10", claim: "GC and test loss peak together as width grows (double descent, T7)", expected: "peak" }],
    },
  ];
}
