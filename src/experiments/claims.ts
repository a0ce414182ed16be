/**
 * Verdicts from data: the Spearman rank correlation between a knob and a final metric across all trials, with a
 * bootstrap confidence interval that resamples seeds within each knob value; its sign against the expectation
 * decides. Peaks (double descent) and per-layer factors in depth (E1, against a band) have their own tests. Nothing here reads the expectation
 * before the data are summarized.
 */
import { Rng } from "../util/rng.js";
import type { Expectation } from "./families.js";

export type Verdict = "agrees" | "disagrees" | "inconclusive";
/** A claim's summary over its (dataset, model) rows. */
export type SummaryVerdict = Verdict | "mixed";

export interface Point {
  knob: number;
  value: number;
  seed: number;
}

function ranks(xs: number[]): number[] {
  const idx = xs.map((x, i) => [x, i] as const).sort((a, b) => a[0] - b[0]);
  const r = new Array<number>(xs.length);
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j + 1 < idx.length && idx[j + 1][0] === idx[i][0]) j++;
    for (let k = i; k <= j; k++) r[idx[k][1]] = (i + j) / 2 + 1; // average rank for ties
    i = j + 1;
  }
  return r;
}

export function spearman(x: number[], y: number[]): number {
  const rx = ranks(x),
    ry = ranks(y);
  const n = x.length;
  const mx = rx.reduce((a, b) => a + b, 0) / n,
    my = ry.reduce((a, b) => a + b, 0) / n;
  let sxy = 0,
    sxx = 0,
    syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (rx[i] - mx) * (ry[i] - my);
    sxx += (rx[i] - mx) ** 2;
    syy += (ry[i] - my) ** 2;
  }
  return sxx === 0 || syy === 0 ? 0 : sxy / Math.sqrt(sxx * syy);
}

/** Resamples the points of each knob value with replacement (stratified bootstrap over seeds). */
function resample(points: Point[], rng: Rng): Point[] {
  const groups = new Map<number, Point[]>();
  for (const p of points) groups.set(p.knob, [...(groups.get(p.knob) ?? []), p]);
  const out: Point[] = [];
  for (const g of groups.values()) for (let i = 0; i < g.length; i++) out.push(g[rng.int(g.length)]);
  return out;
}

export interface CorrelationResult {
  rho: number;
  ciLow: number;
  ciHigh: number;
  verdict: Verdict;
}

export function monotoneVerdict(
  points: Point[],
  expected: "decreasing" | "increasing",
  resamples = 2000,
  seed = 0,
): CorrelationResult {
  const finite = points.filter((p) => Number.isFinite(p.value));
  const rho = spearman(
    finite.map((p) => p.knob),
    finite.map((p) => p.value),
  );
  const rng = new Rng(seed);
  const boots: number[] = [];
  for (let b = 0; b < resamples; b++) {
    const s = resample(finite, rng);
    boots.push(
      spearman(
        s.map((p) => p.knob),
        s.map((p) => p.value),
      ),
    );
  }
  boots.sort((a, b) => a - b);
  const ciLow = boots[Math.floor(0.025 * resamples)],
    ciHigh = boots[Math.ceil(0.975 * resamples) - 1];
  // Orient the interval so that positive means "as expected"; agreement needs all of it above zero.
  const [lo, hi] = expected === "decreasing" ? [-ciHigh, -ciLow] : [ciLow, ciHigh];
  const verdict: Verdict = lo > 0 ? "agrees" : hi < 0 ? "disagrees" : "inconclusive";
  return { rho, ciLow, ciHigh, verdict };
}

function meansByKnob(points: Point[]): { knob: number; mean: number }[] {
  return centersByKnob(points, "mean").map((x) => ({ knob: x.knob, mean: x.c }));
}

/**
 * Double descent: both mean curves have their maximum inside the grid, at most one grid step apart. The verdict
 * bootstraps seeds within each knob value: agrees when that holds in at least 95 % of resamples, disagrees when the
 * test-loss peak is interior but the GC peak is elsewhere in at least 95 %, inconclusive otherwise (including a
 * sweep whose test loss has no interior peak, i.e. it missed the interpolation threshold).
 */
export function peakVerdict(
  gc: Point[],
  testLoss: Point[],
  resamples = 2000,
  seed = 0,
): { gcPeak: number; lossPeak: number; support: number; verdict: Verdict } {
  const argmax = (m: { mean: number }[]) => m.reduce((best, v, i) => (v.mean > m[best].mean ? i : best), 0);
  const outcome = (g: Point[], l: Point[]): "together" | "apart" | "no-peak" => {
    const gm = meansByKnob(g),
      lm = meansByKnob(l);
    const gi = argmax(gm),
      li = argmax(lm);
    if (li === 0 || li === lm.length - 1) return "no-peak";
    return gi > 0 && gi < gm.length - 1 && Math.abs(gi - li) <= 1 ? "together" : "apart";
  };
  const g = meansByKnob(gc),
    l = meansByKnob(testLoss);
  const rng = new Rng(seed);
  let together = 0,
    apart = 0;
  for (let b = 0; b < resamples; b++) {
    // Resample whole seeds per knob value, the same seeds for both curves (they come from the same runs).
    const picks = new Map<number, number[]>();
    for (const p of gc) picks.set(p.knob, [...(picks.get(p.knob) ?? []), p.seed]);
    const chosen = new Map<number, number[]>();
    for (const [k, seeds] of picks)
      chosen.set(
        k,
        seeds.map(() => seeds[rng.int(seeds.length)]),
      );
    const pick = (pts: Point[]) =>
      [...chosen].flatMap(([k, seeds]) =>
        seeds.map((s) => pts.find((p) => p.knob === k && p.seed === s)!).filter(Boolean),
      );
    const o = outcome(pick(gc), pick(testLoss));
    if (o === "together") together++;
    else if (o === "apart") apart++;
  }
  const support = together / resamples;
  const verdict: Verdict = support >= 0.95 ? "agrees" : apart / resamples >= 0.95 ? "disagrees" : "inconclusive";
  return { gcPeak: g[argmax(g)].knob, lossPeak: l[argmax(l)].knob, support, verdict };
}

/** Percentile interval [2.5 %, 97.5 %] of bootstrap draws (sorted in place); NaN draws are dropped. */
function interval(boots: number[]): [number, number] {
  const b = boots.filter(Number.isFinite).sort((x, y) => x - y);
  if (!b.length) return [NaN, NaN];
  return [b[Math.floor(0.025 * b.length)], b[Math.ceil(0.975 * b.length) - 1]];
}

export interface Estimate {
  value: number;
  ciLow: number;
  ciHigh: number;
}

/** Mean (or median) of the values at each knob value. */
function centersByKnob(points: Point[], center: "mean" | "median"): { knob: number; c: number }[] {
  const groups = new Map<number, number[]>();
  for (const p of points) if (Number.isFinite(p.value)) groups.set(p.knob, [...(groups.get(p.knob) ?? []), p.value]);
  return [...groups.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([knob, v]) => {
      if (center === "mean") return { knob, c: v.reduce((a, b) => a + b, 0) / v.length };
      const s = [...v].sort((a, b) => a - b),
        m = s.length >> 1;
      return { knob, c: s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2 };
    });
}

/**
 * Per-layer factor of GC in depth: exp of the least-squares slope of log(center GC) on depth, where center is the
 * mean (or median) over networks at each depth; 95 % bootstrap interval resampling networks within each depth.
 */
export function perLayerFactor(
  points: Point[],
  center: "mean" | "median" = "mean",
  resamples = 2000,
  seed = 0,
): Estimate {
  const fit = (ps: Point[]) => {
    const c = centersByKnob(ps, center).filter((x) => x.c > 0);
    if (c.length < 2) return NaN;
    const mx = c.reduce((a, x) => a + x.knob, 0) / c.length,
      my = c.reduce((a, x) => a + Math.log(x.c), 0) / c.length;
    let sxy = 0,
      sxx = 0;
    for (const x of c) {
      sxy += (x.knob - mx) * (Math.log(x.c) - my);
      sxx += (x.knob - mx) ** 2;
    }
    return Math.exp(sxy / sxx);
  };
  const rng = new Rng(seed);
  const [ciLow, ciHigh] = interval(Array.from({ length: resamples }, () => fit(resample(points, rng))));
  return { value: fit(points), ciLow, ciHigh };
}

/** An interval against a band: inside it agrees, disjoint from it disagrees, overlapping its edge is inconclusive. */
export function bandVerdict(e: Estimate, band: [number, number]): Verdict {
  if (!Number.isFinite(e.ciLow) || !Number.isFinite(e.ciHigh)) return "inconclusive";
  if (e.ciLow >= band[0] && e.ciHigh <= band[1]) return "agrees";
  return e.ciHigh < band[0] || e.ciLow > band[1] ? "disagrees" : "inconclusive";
}

/**
 * Effect size: mean value at knob `strongest` over mean value at knob `baseline` (e.g. GC(strongest λ)/GC(λ = 0)),
 * with a 95 % bootstrap interval resampling seeds within each knob value.
 */
export function effectRatio(
  points: Point[],
  baseline: number,
  strongest: number,
  resamples = 2000,
  seed = 0,
): Estimate {
  const ratio = (ps: Point[]) => {
    const m = centersByKnob(ps, "mean");
    const b = m.find((x) => x.knob === baseline)?.c,
      s = m.find((x) => x.knob === strongest)?.c;
    return b === undefined || s === undefined || b === 0 ? NaN : s / b;
  };
  const rng = new Rng(seed);
  const [ciLow, ciHigh] = interval(Array.from({ length: resamples }, () => ratio(resample(points, rng))));
  return { value: ratio(points), ciLow, ciHigh };
}

/** One logged point of a run: training loss (on clean labels) and a metric (GC). */
export interface ProgressPoint {
  step: number;
  loss: number;
  value: number;
}

/**
 * The metric where a run first reaches training loss `level`: linear interpolation in the loss between the last
 * logged point above the level and the first at or below it. Null when the run never reaches the level.
 */
export function valueAtLoss(curve: ProgressPoint[], level: number): number | null {
  const pts = curve.filter((p) => Number.isFinite(p.loss) && Number.isFinite(p.value)).sort((a, b) => a.step - b.step);
  for (let i = 0; i < pts.length; i++) {
    if (pts[i].loss > level) continue;
    if (i === 0) return pts[0].value;
    const a = pts[i - 1],
      b = pts[i];
    const t = (a.loss - level) / (a.loss - b.loss);
    return a.value + t * (b.value - a.value);
  }
  return null;
}

/**
 * The matched-progress level: the loosest training loss every given run reaches, i.e. the largest of the runs'
 * lowest logged losses.
 */
export function commonLossLevel(curves: ProgressPoint[][]): number {
  let level = -Infinity;
  for (const c of curves) {
    const lowest = c.reduce((m, p) => (Number.isFinite(p.loss) ? Math.min(m, p.loss) : m), Infinity);
    if (Number.isFinite(lowest)) level = Math.max(level, lowest);
  }
  return level;
}

/** Summary over a claim's counted rows: agrees only if all agree, disagrees only if all disagree, else mixed. */
export function summaryVerdict(verdicts: Verdict[]): SummaryVerdict {
  if (!verdicts.length) return "inconclusive";
  if (verdicts.every((v) => v === "agrees")) return "agrees";
  if (verdicts.every((v) => v === "disagrees")) return "disagrees";
  return "mixed";
}

export function expectationText(e: Expectation): string {
  return {
    decreasing: "knob ↑ → GC ↓ (ρ < 0)",
    increasing: "knob ↑ → GC ↑ (ρ > 0)",
    peak: "GC peaks with test loss",
    flat: "GC flat in depth (ratio per layer ≈ 1)",
  }[e];
}
