/**
 * The claims table's rows: one per (claim, dataset, model) with its rank correlation, effect size, matched-progress
 * verdict, accuracy cost and flags, then one summary row per claim; sanity checks (E1s, the T1-T3 bounds) apart.
 */
import type { ClaimRow, Verdict as RowVerdict } from "../report/html.js";
import {
  bandVerdict,
  commonLossLevel,
  effectRatio,
  expectationText,
  monotoneVerdict,
  peakVerdict,
  perLayerFactor,
  summaryVerdict,
  valueAtLoss,
  type Point,
  type ProgressPoint,
  type Verdict,
} from "./claims.js";
import type { ClaimDef, FamilyDef, Setup } from "./families.js";
import type { TrialRow } from "../store/runStore.js";
import { setupName, setupsOf } from "./trials.js";

/** A finished trial with its setup ("dataset/model"), variant and logged metrics. */
export interface TrialData {
  row: TrialRow;
  variant: string;
  setup: string;
  metrics: Record<string, unknown>[];
}

/** A point more than this far (fraction of accuracy) below its family's baseline test accuracy is flagged. */
export const ACCURACY_COST_FLAG = 0.05;

export const num = (v: unknown): number => (typeof v === "number" ? v : NaN);
export const fmt = (v: number) =>
  Number.isFinite(v)
    ? Math.abs(v) >= 1e-3 && Math.abs(v) < 1e5
      ? Number(v.toPrecision(3)).toString()
      : v.toExponential(2)
    : "n/a";

export function finalPoints(trials: TrialData[], metric: string): Point[] {
  return trials.map((t) => ({ knob: t.row.knobValue, seed: t.row.seed, value: num(t.row.summary?.[metric]) }));
}

/** Mean of a final metric per knob value. */
export function meanByKnob(trials: TrialData[], metric: string): Map<number, number> {
  const acc = new Map<number, number[]>();
  for (const t of trials) {
    const v = num(t.row.summary?.[metric]);
    if (Number.isFinite(v)) acc.set(t.row.knobValue, [...(acc.get(t.row.knobValue) ?? []), v]);
  }
  return new Map([...acc].map(([k, v]) => [k, v.reduce((a, b) => a + b, 0) / v.length]));
}

/** A trained network that computes a constant (all ReLUs dead): zero GC. */
export const isDead = (t: TrialData) => !(num(t.row.summary?.gc_train) > 1e-9);

export interface SetupAnalysis {
  setup: Setup;
  trials: TrialData[];
  baselineKnob: number;
  strongestKnob: number;
  baselineAcc: number;
  flaggedKnobs: number[];
  undertrained: boolean;
  /** Matched-progress GC per trial (null when the run never reaches the level). */
  matched: { level: number; points: Point[]; unreached: number } | null;
}

/** Accuracy cost and matched-progress reading of one family on one setup. */
export function analyzeSetup(fam: FamilyDef, setup: Setup, trials: TrialData[]): SetupAnalysis {
  const values = fam.knob.values;
  const baselineKnob = fam.knob.baseline ?? values[0];
  const strongestKnob = fam.knob.strongest ?? values[values.length - 1];
  const acc = meanByKnob(trials, "test_acc");
  const baselineAcc = acc.get(baselineKnob) ?? NaN;
  const flaggedKnobs = [...acc]
    .filter(([, a]) => a < baselineAcc - ACCURACY_COST_FLAG)
    .map(([k]) => k)
    .sort((a, b) => a - b);
  let matched: SetupAnalysis["matched"] = null;
  if (fam.kind === "train" && fam.knob.key !== "width") {
    const curve = (t: TrialData): ProgressPoint[] =>
      t.metrics.map((m) => ({ step: num(m.step), loss: num(m.train_loss), value: num(m.gc_train) }));
    const level = commonLossLevel(trials.filter((t) => !flaggedKnobs.includes(t.row.knobValue)).map(curve));
    if (Number.isFinite(level)) {
      const points: Point[] = [];
      let unreached = 0;
      for (const t of trials) {
        const v = valueAtLoss(curve(t), level);
        if (v === null) unreached++;
        else points.push({ knob: t.row.knobValue, seed: t.row.seed, value: v });
      }
      matched = { level, points, unreached };
    }
  }
  return {
    setup,
    trials,
    baselineKnob,
    strongestKnob,
    baselineAcc,
    flaggedKnobs,
    undertrained: baselineAcc < setup.accFloor,
    matched,
  };
}

const distinctKnobs = (ps: Point[]) => new Set(ps.filter((p) => Number.isFinite(p.value)).map((p) => p.knob)).size;

function monotoneRow(c: ClaimDef, a: SetupAnalysis): Partial<ClaimRow> {
  const expected = c.expected as "decreasing" | "increasing";
  const pts = finalPoints(a.trials, c.metric ?? "gc_train");
  const r = monotoneVerdict(pts, expected);
  const kept = pts.filter((p) => !a.flaggedKnobs.includes(p.knob));
  const u = distinctKnobs(kept) >= 2 ? monotoneVerdict(kept, expected) : null;
  const m = a.matched && distinctKnobs(a.matched.points) >= 2 ? monotoneVerdict(a.matched.points, expected) : null;
  const e = effectRatio(pts, a.baselineKnob, a.strongestKnob);
  const acc = meanByKnob(a.trials, "test_acc");
  const worstDrop = Math.max(0, ...[...acc.values()].map((v) => a.baselineAcc - v));
  const flags: string[] = [];
  if (a.undertrained)
    flags.push(`undertrained: baseline test accuracy ${fmt(a.baselineAcc)} < floor ${a.setup.accFloor}`);
  if (a.flaggedKnobs.length)
    flags.push(`accuracy cost > ${100 * ACCURACY_COST_FLAG} pts at ${a.flaggedKnobs.join(", ")}`);
  if (a.matched?.unreached) flags.push(`${a.matched.unreached} run(s) never reach the matched loss`);
  return {
    rho: r.rho,
    ciLow: r.ciLow,
    ciHigh: r.ciHigh,
    verdict: r.verdict,
    effect: { label: `GC(${a.strongestKnob})/GC(${a.baselineKnob})`, ...e },
    unflagged: u
      ? { verdict: u.verdict, rho: u.rho, ciLow: u.ciLow, ciHigh: u.ciHigh }
      : { verdict: "inconclusive", rho: null, ciLow: null, ciHigh: null },
    matched: m
      ? {
          verdict: m.verdict,
          level: a.matched!.level,
          rho: m.rho,
          ciLow: m.ciLow,
          ciHigh: m.ciHigh,
          unreached: a.matched!.unreached,
        }
      : null,
    accuracy: { baseline: a.baselineAcc, worstDrop, flaggedKnobs: a.flaggedKnobs },
    flags,
    note: a.matched ? `matched at clean-label train loss ${fmt(a.matched.level)}` : undefined,
  };
}

/** E1: the per-layer factor of the mean GC (median shown beside it) against the band around the prediction. */
function depthRow(c: ClaimDef, a: SetupAnalysis): Partial<ClaimRow> {
  const pts = finalPoints(a.trials, c.metric ?? "gc_test");
  const mean = perLayerFactor(pts, "mean"),
    median = perLayerFactor(pts, "median");
  const r = monotoneVerdict(pts, "decreasing");
  const band = c.band ?? [0.75, 1.33];
  const contains = c.predicted !== undefined && mean.ciLow <= c.predicted && c.predicted <= mean.ciHigh;
  return {
    rho: r.rho,
    ciLow: r.ciLow,
    ciHigh: r.ciHigh,
    verdict: bandVerdict(mean, band),
    effect: { label: "per-layer factor (mean)", ...mean },
    note:
      `mean factor ${fmt(mean.value)} [${fmt(mean.ciLow)}, ${fmt(mean.ciHigh)}] vs band [${band.join(", ")}]` +
      (c.predicted !== undefined ? `, predicted ${c.predicted} ${contains ? "inside" : "outside"} the CI` : "") +
      `; median factor ${fmt(median.value)} [${fmt(median.ciLow)}, ${fmt(median.ciHigh)}]`,
  };
}

function peakRow(a: SetupAnalysis): Partial<ClaimRow> {
  const live = a.trials.filter((t) => !isDead(t));
  const dead = a.trials.length - live.length;
  const p = peakVerdict(finalPoints(live, "gc_train"), finalPoints(live, "test_loss"));
  const trainAcc = meanByKnob(live, "train_acc");
  const threshold = [...trainAcc].sort((x, y) => x[0] - y[0]).find(([, v]) => v >= 0.99)?.[0];
  const err = meanByKnob(live, "test_acc");
  const errPeak = [...err].reduce((best, cur) => (cur[1] < best[1] ? cur : best), [NaN, Infinity])[0];
  const widest = Math.max(...a.trials.map((t) => t.row.knobValue));
  const e = effectRatio(finalPoints(live, "gc_train"), widest, p.lossPeak);
  return {
    rho: null,
    ciLow: null,
    ciHigh: null,
    verdict: p.verdict,
    effect: { label: `GC(w=${p.lossPeak})/GC(w=${widest})`, ...e },
    flags: dead ? [`${dead} dead network(s) (constant output) dropped`] : [],
    note: `GC peaks at width ${p.gcPeak}, test loss at ${p.lossPeak}, test error at ${errPeak}; together in ${(100 * p.support).toFixed(0)}% of bootstrap resamples; interpolation (train acc ≥ 0.99 on the corrupted labels) from width ${threshold ?? "never"}`,
  };
}

/** Rows for every claim of a family on every setup, and one summary row per claim. */
export function familyClaimRows(fam: FamilyDef, trials: TrialData[]): { rows: ClaimRow[]; sanity: ClaimRow[] } {
  const rows: ClaimRow[] = [],
    sanity: ClaimRow[] = [];
  for (const c of fam.claims) {
    const perSetup: ClaimRow[] = [];
    for (const setup of setupsOf(fam)) {
      const ts = trials.filter((t) => t.setup === setupName(setup) && (!c.variant || t.variant === c.variant));
      const base: ClaimRow = {
        id: c.id,
        claim: c.claim,
        expected:
          c.expected === "flat" || c.band
            ? `per-layer factor in [${(c.band ?? [0.75, 1.33]).join(", ")}]`
            : expectationText(c.expected),
        knob: fam.knob.label,
        rho: null,
        ciLow: null,
        ciHigh: null,
        verdict: "inconclusive",
        kind: c.sanity ? "sanity" : "row",
        dataset: setup.dataset,
        model: setup.model,
        extension: c.extension,
        counted: true,
      };
      if (ts.length < 3) {
        perSetup.push({ ...base, counted: false, note: "too few finished trials" });
        continue;
      }
      const a = analyzeSetup(fam, setup, ts);
      let extra: Partial<ClaimRow>;
      if (c.sanity && fam.knob.key === "initScale") extra = scaleSanity(ts);
      else if (c.expected === "peak") extra = peakRow(a);
      else if (c.band) extra = depthRow(c, a);
      else extra = monotoneRow(c, a);
      perSetup.push({ ...base, ...extra, counted: !a.undertrained });
    }
    if (c.sanity) {
      sanity.push(...perSetup);
      continue;
    }
    rows.push(...perSetup);
    const counted = perSetup.filter((r) => r.counted !== false);
    // A claim whose every counted row is inconclusive is inconclusive, not mixed.
    const sv = (vs: (RowVerdict | undefined)[]): RowVerdict => {
      const list = vs.filter((v): v is Verdict => v !== undefined && v !== "mixed");
      const s = summaryVerdict(list);
      return s === "mixed" && list.every((v) => v === "inconclusive") ? "inconclusive" : s;
    };
    rows.push({
      id: c.id,
      claim: c.claim,
      expected: perSetup[0]?.expected ?? expectationText(c.expected),
      knob: fam.knob.label,
      rho: null,
      ciLow: null,
      ciHigh: null,
      kind: "summary",
      extension: c.extension,
      verdict: sv(counted.map((r) => r.verdict)),
      matched: counted.some((r) => r.matched)
        ? {
            verdict: sv(counted.map((r) => r.matched?.verdict)),
            level: null,
            rho: null,
            ciLow: null,
            ciHigh: null,
            unreached: counted.reduce((s, r) => s + (r.matched?.unreached ?? 0), 0),
          }
        : null,
      unflagged: counted.some((r) => r.unflagged)
        ? { verdict: sv(counted.map((r) => r.unflagged?.verdict)), rho: null, ciLow: null, ciHigh: null }
        : null,
      note: `${counted.length} of ${perSetup.length} rows counted: ${perSetup.map((r) => `${r.dataset}/${r.model} ${r.verdict}${r.counted === false ? " (not counted)" : ""}`).join(", ")}`,
    });
  }
  return { rows, sanity };
}

/** E1s: at zero bias GC(s)/GC(1) = s^(2L) exactly for each network (L weight layers). */
function scaleSanity(trials: TrialData[]): Partial<ClaimRow> {
  let worst = 0,
    n = 0;
  for (const t of trials) {
    const ref = trials.find((u) => u.row.seed === t.row.seed && u.row.knobValue === 1);
    const model = typeof t.row.config.model === "string" ? t.row.config.model : "";
    const layers = model.startsWith("mlp:") ? model.split(":")[1].split("-").length - 1 : NaN;
    const gc = num(t.row.summary?.gc_test),
      g1 = num(ref?.row.summary?.gc_test);
    if (!ref || !Number.isFinite(layers) || !(g1 > 0)) continue;
    worst = Math.max(worst, Math.abs(gc / g1 / t.row.knobValue ** (2 * layers) - 1));
    n++;
  }
  return {
    verdict: n > 0 && worst < 1e-3 ? "agrees" : n === 0 ? "inconclusive" : "disagrees",
    note: `GC(s)/GC(1) vs s^(2L) over ${n} networks: largest relative deviation ${worst.toExponential(1)}`,
  };
}
