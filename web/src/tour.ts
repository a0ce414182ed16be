/**
 * The guided tour: one preset per claim of the paper (PAPER.md, T1–T7 and X) plus the 1-D sine picture. Each is a
 * sentence and a ready comparison (a URL hash: base run, compared runs, steps to run at once), and says which way
 * the numbers should move, so the page can show whether this run bears the claim out. A claim that our own
 * reproduction does not confirm (T7) is shown as such, with no expected direction staged for it.
 */
import type { Metrics } from "./session.js";

export interface Expectation {
  /** The measurement compared across runs. */
  metric: "gcTrain";
  /** Run indices expected from highest to lowest value. */
  order: number[];
  /** The phrase for "the claim holds here", e.g. "GC is lower with L2". */
  says: string;
}

export interface TourStop {
  id: string;
  tag: string;
  title: string;
  text: string;
  /** The hash (without autorun), in the URL's own names. */
  hash: string;
  /** Steps run at once for the base run (compared runs scale by their steps per frame). */
  steps: number;
  expect: Expectation | null;
}

const MOONS: Record<string, string> = {
  data: "moons",
  size: "200",
  noise: "0.1",
  depth: "2",
  width: "16",
  activation: "relu",
  init: "he",
  "init-scale": "1",
  seed: "1",
  optimizer: "sgd",
  lr: "0.1",
  "batch-size": "32",
  "steps-per-frame": "5",
  scale: "fixed",
};

/** The moons base run with some settings changed, and the runs to compare, as a hash. */
function moons(changes: Record<string, string>, compare: string): string {
  return `${new URLSearchParams({ ...MOONS, ...changes })}&compare=${encodeURIComponent(compare)}`;
}

export const TOUR: readonly TourStop[] = [
  {
    id: "T1",
    tag: "T1",
    title: "Weight decay lowers GC",
    text: "L2 shrinks every weight matrix, and GC ≤ ∏‖W_l‖²_F (the T1 bound) shrinks with them: the function flattens.",
    hash: moons({}, "l2:0.03"),
    steps: 300,
    expect: { metric: "gcTrain", order: [0, 1], says: "GC is lower with L2" },
  },
  {
    id: "T2",
    tag: "T2",
    title: "Spectral penalties lower GC",
    text: "Penalizing each layer's largest singular value caps the network's Lipschitz constant, and GC ≤ min(d,k)·∏‖W_l‖²_op.",
    hash: moons({}, "spectral:0.03"),
    steps: 300,
    expect: { metric: "gcTrain", order: [0, 1], says: "GC is lower with the spectral penalty" },
  },
  {
    id: "T3",
    tag: "T3",
    title: "Flat minima have low GC",
    text: "The flatness penalty λ‖∇_θL‖² steers training to flat minima; at the first layer ‖∇_x g‖ is bounded by ‖∇_W g‖, so flatness in the weights means flatness in the input.",
    hash: moons({}, "flatness:1"),
    steps: 300,
    expect: { metric: "gcTrain", order: [0, 1], says: "GC is lower with the flatness penalty" },
  },
  {
    id: "T4",
    tag: "T4",
    title: "Larger learning rates lower GC",
    text: "Gradient descent with step h implicitly adds (h/4)‖∇_θL‖² to the loss. Both runs travel the same lr·steps: 0.01 × 3000 steps against 0.1 × 300. On this small problem the effect is slight and need not show; the line below says what this run shows.",
    hash: moons({ lr: "0.01", "steps-per-frame": "10" }, "lr:0.1,steps-per-frame:1"),
    steps: 3000,
    expect: { metric: "gcTrain", order: [0, 1], says: "GC is lower with the larger learning rate" },
  },
  {
    id: "T5",
    tag: "T5",
    title: "Label noise lowers GC",
    text: "Labels replaced at random each step implicitly penalize ‖∇_θ g‖², which feeds T3: the noisy run settles on a flatter function.",
    hash: moons({}, "label-noise:0.2"),
    steps: 300,
    expect: { metric: "gcTrain", order: [0, 1], says: "GC is lower with label noise" },
  },
  {
    id: "T6",
    tag: "T6",
    title: "Standard initializations start with low GC, lower with depth",
    text: "With Glorot's init each ReLU layer halves E‖J‖² at the start: a deeper network begins flatter (no training: step 0).",
    hash: moons({ init: "glorot", depth: "1" }, "depth:4"),
    steps: 0,
    expect: { metric: "gcTrain", order: [0, 1], says: "GC at initialization is lower with 4 layers than with 1" },
  },
  {
    id: "T7",
    tag: "T7",
    title: "Double descent (not confirmed by our reproduction)",
    text: "The paper reports GC following the double-descent curve of the test loss as width grows. Our reproduction (gcx reproduce) does not confirm it, so nothing is staged here: three widths with label noise, and the numbers as they come.",
    hash: moons({ depth: "1", "label-noise": "0.1", width: "4" }, "width:16|width:64"),
    steps: 600,
    expect: null,
  },
  {
    id: "X",
    tag: "X",
    title: "An explicit GC penalty lowers GC",
    text: "Adding α·GC of each batch to the loss (double backprop) lowers GC directly, at a small cost in fit.",
    hash: moons({}, "gc:0.1"),
    steps: 300,
    expect: { metric: "gcTrain", order: [0, 1], says: "GC is lower with the GC penalty" },
  },
  {
    id: "sine",
    tag: "1-D",
    title: "The least-GC interpolant is piecewise linear",
    text: "In 1-D, GC is a discrete Dirichlet energy ∫g'². Among all functions through the training points the harmonic one, piecewise linear (dashed), has the least; compare its energy with the network's as it fits.",
    hash: "data=sine&size=20&noise=0&depth=2&width=32&activation=relu&init=he&init-scale=1&seed=1&optimizer=adam&lr=0.01&batch-size=20&steps-per-frame=10&scale=fixed",
    steps: 1500,
    expect: null,
  },
];

export function tourStop(id: string | null): TourStop | undefined {
  return TOUR.find((t) => t.id === id);
}

/**
 * Whether the runs' latest numbers show the expected order, and a sentence saying so with the numbers; for a 1-D
 * stop without a direction, the network's Dirichlet energy against the least-GC interpolant's.
 */
export function verdict(
  stop: TourStop,
  last: (Metrics | undefined)[],
  labels: string[],
  energy?: { net: number; interpolant: number },
): { holds: boolean | null; text: string } {
  const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3));
  if (!stop.expect && energy) {
    return {
      holds: null,
      text: `Dirichlet energy ∫g'² dx over the training range: network ${fmt(energy.net)}, least-GC interpolant ${fmt(energy.interpolant)} (${(energy.net / energy.interpolant).toFixed(2)}× the least possible for a function through the points).`,
    };
  }
  if (!stop.expect) {
    const shown = last
      .map((m, i) => (m ? `${labels[i] || "run"}: GC ${fmt(m.gcTrain)}, test loss ${fmt(m.testLoss)}` : ""))
      .filter(Boolean);
    return { holds: null, text: `No direction is claimed here. ${shown.join("; ")}.` };
  }
  const { metric, order, says } = stop.expect;
  const values = order.map((i) => last[i]?.[metric]);
  if (values.some((v) => v === undefined || !Number.isFinite(v))) return { holds: null, text: "" };
  const vs = values as number[];
  const holds = vs.every((v, i) => i === 0 || v < vs[i - 1]);
  const detail = order.map((i, j) => `${labels[i]}: ${fmt(vs[j])}`).join(" → ");
  return { holds, text: `${holds ? "✓ Seen here" : "✗ Not seen in this run"}: ${says} (GC ${detail}).` };
}
