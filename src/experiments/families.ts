/**
 * The paper's experiment families (PAPER.md section 3) as declarative, versioned configs. Each varies one knob
 * over a grid with several seeds on data we can ship; a claim's verdict is computed from the results
 * (claims.ts), never assumed. Bump `version` when a family's settings change: trials are keyed by it.
 */
import type { TrainConfig } from "../training/config.js";
import { defaultCnnSpec } from "../models/spec.js";

export type Profile = "quick" | "full" | "conv";
export const PROFILES: readonly Profile[] = ["quick", "full", "conv"];
export type Expectation = "decreasing" | "increasing" | "peak" | "flat";

export interface KnobGrid {
  /** Name shown in reports, e.g. "λ (L2)". */
  label: string;
  /** TrainConfig key the knob sets, or a pseudo-key handled by the runner ("depth", "width"). */
  key: string;
  values: number[];
  log?: boolean;
  /** The family's baseline point (knob at zero; E5/E6: the default learning rate / batch size). Default: values[0]. */
  baseline?: number;
  /** The strongest regularization in the grid, for the effect size GC(strongest)/GC(baseline). Default: last value. */
  strongest?: number;
}

export interface ClaimDef {
  id: string;
  claim: string;
  expected: Expectation;
  /** Metric whose final value is related to the knob (default gc_train). */
  metric?: string;
  /** Restrict to trials whose `variant` equals this (E1 has several schemes). */
  variant?: string;
  /** For "flat"/per-layer claims: the band the per-layer factor's interval must lie in to agree. */
  band?: [number, number];
  /** Predicted per-layer factor (E1: 2^-1 for Glorot/LeCun, 1 for He). */
  predicted?: number;
  /** An extension of the 2022 paper (E8 input noise, E9 explicit GC penalty), labelled as such. */
  extension?: boolean;
  /** A sanity check (an identity that always holds), reported apart from the claims and not counted. */
  sanity?: boolean;
}

/** One (dataset, model) a family runs on. */
export interface Setup {
  /** "mnist", "fashion-mnist". */
  dataset: string;
  /** Short model name for tables ("mlp", "cnn"). */
  model: string;
  /** Overrides of the family's base config (data, model, steps...). */
  config: Partial<TrainConfig>;
  /** Unregularized test accuracy below which the setup's rows are marked undertrained (shown, not counted). */
  accFloor: number;
}

/** A mechanism the paper's argument runs through, logged beside GC and related to the knob (not a claim). */
export interface MechanismDef {
  metric: string;
  label: string;
  /** Expected direction of the metric as the knob grows. */
  expected: "decreasing" | "increasing";
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
  /** The (dataset, model) pairs; each gets its own claim rows. Default: one setup from `base`. */
  setups?: Setup[];
  seeds: number[];
  claims: ClaimDef[];
  mechanisms?: MechanismDef[];
  /** Trained runs log about this many points (logEvery = total steps / logPoints), whatever their length. */
  logPoints?: number;
}

/** A quick, reduced-width CNN (conv3×3-8, pool, conv3×3-16, pool, dense): about 50 ms an SGD step at batch 64. */
export const SMALL_CNN = defaultCnnSpec([28, 28, 1], 10, [8, 16]);

/**
 * Undertrained floors on the unregularized (baseline) test accuracy, per dataset: about what a linear softmax
 * classifier reaches on a 4,000-image subset, so a row below it has not learned the task beyond a linear model.
 */
const FLOOR = { mnist: 0.85, "fashion-mnist": 0.75 } as const;

const mlpSetups = (model: string): Setup[] => [
  { dataset: "mnist", model: "mlp", config: { data: "mnist", model }, accFloor: FLOOR.mnist },
  {
    dataset: "fashion-mnist",
    model: "mlp",
    config: { data: "fashion-mnist", model },
    accFloor: FLOOR["fashion-mnist"],
  },
];
const cnnSetups = (datasets: ("mnist" | "fashion-mnist")[]): Setup[] =>
  datasets.map((d) => ({
    dataset: d,
    model: "cnn",
    config: { data: d, model: SMALL_CNN, measures: ["norms"] },
    accFloor: FLOOR[d],
  }));

/** Shared base for the quick profile: a 4,000-image subset, a small MLP, short training, 21 logged points. */
const quickBase: Partial<TrainConfig> = {
  limit: 4000,
  steps: 600,
  batchSize: 64,
  lr: 0.05,
  logEvery: 30,
  checkpointEvery: 300,
  evalSize: 1000,
  gcSize: 200,
  measures: ["norms", "output-grad"],
};

/** The conv profile: the small CNN on a Fashion-MNIST subset; fewer logged points (an evaluation costs ~0.5 s). */
const convBase: Partial<TrainConfig> = {
  limit: 4000,
  steps: 400,
  batchSize: 64,
  lr: 0.05,
  logEvery: 40,
  checkpointEvery: 200,
  evalSize: 500,
  gcSize: 100,
  measures: ["norms"],
};

const fullBase: Partial<TrainConfig> = {
  epochs: 10,
  batchSize: 128,
  lr: 0.05,
  logEvery: 500,
  checkpointEvery: 500,
  evalSize: 2000,
  gcSize: 500,
  measures: ["norms", "output-grad", "loss-grad"],
};

/** Logged points per run in each profile (the paper's figures are GC against training time). */
export const LOG_POINTS: Record<Profile, number> = { quick: 20, full: 20, conv: 10 };

export function families(profile: Profile): FamilyDef[] {
  const q = profile === "quick";
  const conv = profile === "conv";
  const base = conv ? convBase : q ? quickBase : fullBase;
  const setups = conv
    ? cnnSetups(["fashion-mnist"])
    : q
      ? mlpSetups("mlp:784-64-64-10")
      : [...mlpSetups("mlp:784-256-256-10"), ...cnnSetups(["mnist", "fashion-mnist"])];
  const seeds = q || conv ? [0, 1, 2] : [0, 1, 2, 3, 4];
  const version = 2;
  const sweep = (
    id: string,
    title: string,
    knob: KnobGrid,
    claim: string,
    expected: Expectation,
    extra: Partial<TrainConfig> = {},
    more: Partial<ClaimDef> = {},
  ): FamilyDef => ({
    id,
    version,
    title,
    description: claim,
    kind: "train",
    knob,
    base: { ...base, ...extra },
    setups,
    seeds,
    claims: [{ id, claim, expected, ...more }],
    logPoints: LOG_POINTS[profile],
  });
  const withHessian = { measures: [...(base.measures ?? []), "hessian-trace" as const] };
  const trained: FamilyDef[] = [
    sweep(
      "E2",
      "L2 / weight decay",
      { key: "l2", label: "λ (L2)", values: [0, 1e-4, 1e-3, 1e-2], log: true },
      "Larger L2 penalty → lower GC (T1)",
      "decreasing",
    ),
    sweep(
      "E3",
      "Spectral-norm penalty",
      { key: "spectral", label: "λ (spectral)", values: [0, 1e-3, 1e-2, 1e-1], log: true },
      "Stronger spectral penalty → lower GC (T2)",
      "decreasing",
    ),
    {
      ...sweep(
        "E4",
        "Flatness penalty",
        { key: "flatness", label: "λ on ‖∇θL‖²", values: [0, 1e-2, 1e-1, 0.3], log: true },
        "Stronger flatness penalty → lower GC (T3/T4)",
        "decreasing",
        withHessian,
      ),
      mechanisms: [{ metric: "hessian_trace", label: "Hessian trace Tr(∇²θL)", expected: "decreasing" }],
    },
    {
      ...sweep(
        "E5",
        "Learning rate",
        {
          key: "lr",
          label: "learning rate h",
          values: q || conv ? [0.02, 0.05, 0.1, 0.2] : [0.01, 0.02, 0.05, 0.1, 0.2],
          log: true,
          baseline: 0.05,
          strongest: 0.2,
        },
        "Larger learning rate → lower GC (T4)",
        "decreasing",
        withHessian,
      ),
      // Runs are compared at equal gradient-flow time h·steps, which isolates the implicit regularizer (h/4)‖∇L‖².
      description:
        "Larger learning rate → lower GC (T4). Each run trains for the same gradient-flow time h·steps (h = 0.05 for the base number of steps), so the only difference is the implicit regularizer (h/4)‖∇θL‖² of the modified loss. Baseline: the default h = 0.05.",
      mechanisms: [{ metric: "hessian_trace", label: "Hessian trace Tr(∇²θL)", expected: "decreasing" }],
    },
    {
      ...sweep(
        "E6",
        "Batch size",
        {
          key: "batchSize",
          label: "batch size B",
          values: q ? [8, 16, 64, 256] : [8, 16, 32, 64, 128, 512],
          log: true,
          baseline: 64,
          strongest: 8,
        },
        "Smaller batch (fixed h) → lower GC (T4)",
        "increasing",
        { ...withHessian, steps: undefined, epochs: q ? 9.6 : 10 },
      ),
      description: `Smaller batch (fixed h = 0.05) → lower GC (T4). Every batch size trains for the same number of epochs (${q ? 9.6 : 10}, i.e. the same number of examples seen), not the same number of steps. Baseline: the default batch 64.`,
      mechanisms: [{ metric: "hessian_trace", label: "Hessian trace Tr(∇²θL)", expected: "increasing" }],
    },
    {
      ...sweep(
        "E7",
        "Label noise",
        { key: "labelNoise", label: "label-noise probability p", values: [0, 0.1, 0.2, 0.4] },
        "More label noise → lower GC (T5)",
        "decreasing",
      ),
      description:
        "More label noise (labels resampled uniformly with probability p, fresh at every step) → lower GC (T5). Training loss and accuracy are measured on the clean labels.",
      mechanisms: [{ metric: "param_grad_sq", label: "mean ‖∇θ g‖²", expected: "decreasing" }],
    },
    sweep(
      "E8",
      "Input noise (extension)",
      { key: "inputNoise", label: "input-noise σ", values: [0, 0.1, 0.3, 1], log: true },
      "More input noise → lower GC (T5; extension of the 2022 paper)",
      "decreasing",
      {},
      { extension: true },
    ),
    sweep(
      "E9",
      "Explicit GC penalty (extension)",
      {
        key: "gc",
        label: "α (GC penalty)",
        values: q || conv ? [0, 1e-3, 1e-2, 1e-1] : [0, 1e-4, 1e-3, 1e-2, 1e-1],
        log: true,
      },
      "Larger α → lower GC (claim X, from the 2024 follow-up; extension of the 2022 paper)",
      "decreasing",
      q || conv ? { gcProbes: 2 } : {},
      { extension: true },
    ),
  ];
  if (conv) return trained.filter((f) => ["E2", "E5", "E7", "E9"].includes(f.id));
  const initBase = {
    data: "mnist",
    limit: 500,
    bias: 0,
    gcSize: q ? 200 : 1000,
    evalSize: 200,
    measures: ["norms" as const],
  };
  return [
    {
      id: "E1",
      version,
      title: "Initialization and depth",
      description:
        "GC at initialization of zero-bias ReLU MLPs of equal widths on MNIST test inputs, for 1-6 hidden layers and three initialization schemes (T6): each layer multiplies E‖J‖² by s²/2, so Glorot/LeCun halve the mean GC per layer (predicted factor 2^-1) while He keeps the mean exactly (factor 1); the median over networks drifts down with depth under He as the spread grows. The per-layer factor is exp(slope) of a least-squares fit of log GC on depth, with a bootstrap interval over seeds.",
      kind: "init",
      knob: { key: "depth", label: "hidden layers", values: [1, 2, 3, 4, 5, 6] },
      variants: [
        { name: "he", config: { init: "he" } },
        { name: "glorot", config: { init: "glorot" } },
        { name: "lecun", config: { init: "lecun" } },
        { name: "he ×2 scale", config: { init: "he", initScale: 2 } },
      ],
      base: { ...initBase, model: `width:${q ? 128 : 256}` },
      seeds: Array.from({ length: q ? 10 : 20 }, (_, i) => i),
      claims: [
        {
          id: "E1 glorot",
          claim: "Glorot init: mean GC falls with depth, factor ≈ 2^-1 per layer",
          expected: "decreasing",
          variant: "glorot",
          predicted: 0.5,
          band: [0.4, 0.6],
        },
        {
          id: "E1 lecun",
          claim: "LeCun init: mean GC falls with depth, factor ≈ 2^-1 per layer",
          expected: "decreasing",
          variant: "lecun",
          predicted: 0.5,
          band: [0.4, 0.6],
        },
        {
          id: "E1 he",
          claim: "He init: mean GC flat in depth (factor per layer in [0.9, 1.1])",
          expected: "flat",
          variant: "he",
          predicted: 1,
          band: [0.9, 1.1],
        },
      ],
    },
    {
      id: "E1s",
      version,
      title: "Initialization scale (sanity check)",
      description:
        "GC at initialization of a zero-bias He-initialized MLP as the weight scale multiplier s grows: GC scales exactly as s^(2L), an identity for zero-bias ReLU nets, so this is a sanity check, not a claim.",
      kind: "init",
      knob: { key: "initScale", label: "init scale", values: [0.25, 0.5, 1, 2, 4], log: true },
      base: { ...initBase, model: q ? "mlp:784-128-128-10" : "mlp:784-256-256-10", init: "he" },
      seeds: q ? [0, 1, 2] : [0, 1, 2, 3, 4],
      claims: [
        {
          id: "E1s",
          claim: "Larger initialization scale → higher GC (exactly s^(2L))",
          expected: "increasing",
          sanity: true,
        },
      ],
    },
    ...trained,
    {
      id: "B",
      version,
      title: "GC against its bounds (sanity check)",
      description:
        "Runs whose only purpose is to log GC beside the T1 (∏‖W‖_F²), T2 (min(d,k)∏‖W‖_op², with certified spectral norms) and T3 (first-layer transfer) bounds at every log step; with the other families, every trained MLP run is checked the same way. The bounds are inequalities that always hold for ReLU nets: sanity checks, not claims.",
      kind: "bounds",
      knob: { key: "l2", label: "λ (L2)", values: [0, 1e-3], log: true },
      base: { ...base, data: "mnist", model: q ? "mlp:784-64-64-10" : "mlp:784-256-256-10" },
      seeds: q ? [0, 1] : [0, 1, 2],
      logPoints: LOG_POINTS[profile],
      claims: [],
    },
    {
      id: "E10",
      version: 3,
      title: "Double descent in width",
      description:
        "One-hidden-layer ReLU MLPs of growing width trained with Adam to (near) interpolation on a 500-image subset with 20% fixed label corruption (cross-entropy): test loss and GC should peak together near the interpolation threshold (T7). The threshold is where the train accuracy on the corrupted labels first reaches about 100%; widths run 16× past it. Dead networks (constant output, GC 0) are dropped with a note.",
      kind: "train",
      knob: {
        key: "width",
        label: "hidden width",
        values: q ? [2, 3, 4, 6, 8, 12, 16, 32, 64, 128] : [2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128, 256, 512],
        log: true,
      },
      base: {
        limit: q ? 500 : 2000,
        labelCorruption: 0.2,
        optimizer: "adam",
        lr: 0.003,
        steps: q ? 2500 : 8000,
        batchSize: 100,
        checkpointEvery: q ? 1250 : 2000,
        evalSize: q ? 1000 : 2000,
        gcSize: q ? 200 : 500,
        measures: ["norms", "output-grad"],
      },
      setups: [
        { dataset: "mnist", model: "mlp", config: { data: "mnist" }, accFloor: 0 },
        { dataset: "fashion-mnist", model: "mlp", config: { data: "fashion-mnist" }, accFloor: 0 },
      ],
      seeds: q ? [0, 1, 2] : [0, 1, 2, 3, 4, 5],
      logPoints: LOG_POINTS[profile],
      claims: [
        { id: "E10", claim: "GC and test loss peak together as width grows (double descent, T7)", expected: "peak" },
      ],
    },
  ];
}
