/**
 * Turns finished trials into the report: per family the figures PAPER.md lists, and the claims table with the
 * verdicts computed in claims.ts.
 */
import type { ClaimRow, ReportDocument, ReportSection } from "../report/html.js";
import { errorBarChart, lineChart } from "../report/charts.js";
import type { TrialRow } from "../store/runStore.js";
import { expectationText, flatVerdict, monotoneVerdict, peakVerdict, type Point } from "./claims.js";
import type { FamilyDef, Profile } from "./families.js";

export interface TrialData {
  row: TrialRow;
  variant: string;
  metrics: Record<string, unknown>[];
}

const num = (v: unknown): number => (typeof v === "number" ? v : NaN);
const fmt = (v: number) => (Number.isFinite(v) ? (Math.abs(v) >= 1e-3 && Math.abs(v) < 1e5 ? Number(v.toPrecision(4)).toString() : v.toExponential(2)) : "n/a");

function finalPoints(trials: TrialData[], metric: string): Point[] {
  return trials.map((t) => ({ knob: t.row.knobValue, seed: t.row.seed, value: num(t.row.summary?.[metric]) }));
}

/** Mean and a normal-approximation 95% interval over seeds, per knob value (and variant). */
function summarize(trials: TrialData[], metric: string): Record<string, unknown>[] {
  const groups = new Map<string, { knob: number; variant: string; vals: number[] }>();
  for (const t of trials) {
    const key = `${t.variant}|${t.row.knobValue}`;
    const g = groups.get(key) ?? { knob: t.row.knobValue, variant: t.variant, vals: [] };
    const v = num(t.row.summary?.[metric]);
    if (Number.isFinite(v)) g.vals.push(v);
    groups.set(key, g);
  }
  return [...groups.values()].filter((g) => g.vals.length).map((g) => {
    const n = g.vals.length, mean = g.vals.reduce((a, b) => a + b, 0) / n;
    const sd = n > 1 ? Math.sqrt(g.vals.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
    const half = (1.96 * sd) / Math.sqrt(n);
    return { knob: g.knob, variant: g.variant || "all", mean, lower: mean - half, upper: mean + half, n };
  });
}

/** Mean over seeds of a metric at each logged step, per knob value. */
function curves(trials: TrialData[], metric: string): Record<string, unknown>[] {
  const acc = new Map<string, { knob: string; step: number; sum: number; n: number }>();
  for (const t of trials)
    for (const m of t.metrics) {
      const v = num(m[metric]);
      if (!Number.isFinite(v)) continue;
      const key = `${String(t.row.knobValue)}|${String(m.step)}`;
      const a = acc.get(key) ?? { knob: String(t.row.knobValue), step: num(m.step), sum: 0, n: 0 };
      a.sum += v;
      a.n++;
      acc.set(key, a);
    }
  return [...acc.values()].map((a) => ({ knob: a.knob, step: a.step, value: a.sum / a.n }));
}

function claimRows(fam: FamilyDef, trials: TrialData[]): ClaimRow[] {
  return fam.claims.map((c) => {
    const ts = c.variant ? trials.filter((t) => t.variant === c.variant) : trials;
    const pts = finalPoints(ts, c.metric ?? "gc_train");
    const base = { id: c.id, claim: c.claim, expected: expectationText(c.expected), knob: fam.knob.label };
    if (pts.length < 3) return { ...base, rho: null, ciLow: null, ciHigh: null, verdict: "inconclusive", note: "too few finished trials" };
    if (c.expected === "peak") {
      const p = peakVerdict(pts, finalPoints(ts, "test_loss"));
      return { ...base, rho: null, ciLow: null, ciHigh: null, verdict: p.verdict, note: `GC peaks at ${p.gcPeak}, test loss at ${p.lossPeak}; together in ${(100 * p.support).toFixed(0)}% of bootstrap resamples` };
    }
    if (c.expected === "flat") {
      const f = flatVerdict(pts);
      return { ...base, rho: null, ciLow: null, ciHigh: null, verdict: f.verdict, note: `GC ratio per layer ${fmt(f.ratio)} [${fmt(f.ciLow)}, ${fmt(f.ciHigh)}]` };
    }
    const r = monotoneVerdict(pts, c.expected);
    return { ...base, rho: r.rho, ciLow: r.ciLow, ciHigh: r.ciHigh, verdict: r.verdict };
  });
}

function trainSection(fam: FamilyDef, trials: TrialData[]): ReportSection {
  const xTitle = fam.knob.label;
  // Learning-rate runs are time-matched, so they are drawn against gradient-flow time h·step.
  const timeAxis = fam.knob.key === "lr";
  const gcCurves = curves(trials, "gc_train").map((v) => (timeAxis ? { ...v, step: (v.step as number) * Number(v.knob) } : v));
  const figures = [
    { name: `${fam.id}-gc-vs-step`, caption: `GC on the training subset during training, one line per ${xTitle} (mean over ${fam.seeds.length} seeds).`, spec: lineChart({ title: `${fam.id}: GC vs ${timeAxis ? "h·step" : "step"}`, values: gcCurves, x: "step", y: "value", color: "knob", colorTitle: xTitle, xTitle: timeAxis ? "gradient-flow time h·step" : "step", yTitle: "GC (train subset)", logY: true }) },
    { name: `${fam.id}-final-gc`, caption: `Final GC vs ${xTitle}: mean and 95% interval over seeds.`, spec: errorBarChart({ title: `${fam.id}: final GC`, values: summarize(trials, "gc_train"), x: "knob", y: "mean", lower: "lower", upper: "upper", xType: "ordinal", xTitle, yTitle: "final GC", connect: true }) },
    { name: `${fam.id}-final-acc`, caption: `Final test accuracy vs ${xTitle}.`, spec: errorBarChart({ title: `${fam.id}: test accuracy`, values: summarize(trials, "test_acc"), x: "knob", y: "mean", lower: "lower", upper: "upper", xType: "ordinal", xTitle, yTitle: "test accuracy", connect: true }) },
  ];
  if (fam.knob.key === "width") {
    figures.push({ name: `${fam.id}-test-loss`, caption: "Final test loss vs width: the double-descent curve to compare with GC.", spec: errorBarChart({ title: `${fam.id}: test loss`, values: summarize(trials, "test_loss"), x: "knob", y: "mean", lower: "lower", upper: "upper", xType: "ordinal", xTitle, yTitle: "test loss", connect: true }) });
  }
  return { id: fam.id, title: `${fam.id} — ${fam.title}`, description: fam.description, figures };
}

function initSection(fam: FamilyDef, trials: TrialData[]): ReportSection {
  const figures = [
    { name: `${fam.id}-gc-at-init`, caption: `GC at initialization vs ${fam.knob.label} (mean and 95% interval over ${fam.seeds.length} seeds).`, spec: errorBarChart({ title: `${fam.id}: GC at initialization`, values: summarize(trials, "gc_test"), x: "knob", y: "mean", lower: "lower", upper: "upper", color: "variant", colorTitle: "init", xTitle: fam.knob.label, xType: "ordinal", yTitle: "GC at init", logY: true, connect: true }) },
  ];
  const lines = trials.filter((t) => t.row.seed === fam.seeds[0] && Array.isArray(t.row.summary?.line));
  if (lines.length) {
    const values = lines.flatMap((t) => (t.row.summary!.line as number[]).map((y, i) => ({ t: i / 63, y, curve: `${t.variant || fam.knob.label} ${fam.knob.key === "depth" ? `L=${t.row.knobValue}` : t.row.knobValue}` })));
    figures.push({ name: `${fam.id}-line`, caption: "First logit of the initialized network along the segment between two test images (seed 0): simpler, flatter functions have lower GC.", spec: lineChart({ title: `${fam.id}: output along a line`, values, x: "t", y: "y", color: "curve", xTitle: "position on the segment", yTitle: "logit 0" }) });
  }
  return { id: fam.id, title: `${fam.id} — ${fam.title}`, description: fam.description, figures };
}

/** B: every logged step of every trained trial, GC against the T1, T2 and T3 bounds. */
function boundsSection(all: TrialData[]): { section: ReportSection; claims: ClaimRow[] } {
  const bounds: [string, string][] = [["prod_frobenius_sq", "T1 bound ∏‖W‖_F²"], ["lipschitz_bound", "T2 bound min(d,k)∏‖W‖_op²"], ["t3_bound", "T3 bound (first layer)"]];
  const rows: (string | number)[][] = [];
  const claims: ClaimRow[] = [];
  for (const [key, label] of bounds) {
    let n = 0, held = 0, minRatio = Infinity;
    for (const t of all)
      for (const m of t.metrics) {
        const gc = num(m.gc_train), b = num(m[key]);
        if (!Number.isFinite(gc) || !Number.isFinite(b)) continue;
        n++;
        if (b >= gc * (1 - 1e-6)) held++;
        if (gc > 0) minRatio = Math.min(minRatio, b / gc);
      }
    rows.push([label, n, held, fmt(minRatio)]);
    claims.push({ id: `B ${label.split(" ")[0]}`, claim: `${label} ≥ GC at every logged step`, expected: "bound ≥ GC", knob: "—", rho: null, ciLow: null, ciHigh: null, verdict: n === 0 ? "inconclusive" : held === n ? "agrees" : "disagrees", note: `${held}/${n} logged points hold; smallest bound/GC ${fmt(minRatio)}` });
  }
  const example = all.find((t) => t.row.family === "E2" && t.row.knobValue === 0) ?? all[0];
  const values = example
    ? example.metrics.flatMap((m) => [["GC", num(m.gc_train)], ...bounds.map(([k, l]) => [l.split(" ").slice(0, 2).join(" "), num(m[k])])].filter(([, v]) => Number.isFinite(v as number)).map(([q, v]) => ({ step: m.step, quantity: q, value: v })))
    : [];
  return {
    claims,
    section: {
      id: "B",
      title: "B — GC against its upper bounds",
      description: `Every logged step of every trained trial: the T1, T2 and T3 bounds must lie above the measured GC. The figure follows one run${example ? ` (${example.row.family}, ${example.row.knob} = ${example.row.knobValue}, seed ${example.row.seed})` : ""}; the table covers all runs.`,
      figures: example ? [{ name: "B-bounds", caption: "GC and its bounds during training (log scale).", spec: lineChart({ title: "B: GC and its bounds", values, x: "step", y: "value", color: "quantity", logY: true, yTitle: "value" }) }] : [],
      table: { columns: ["bound", "logged points", "bound ≥ GC", "smallest bound / GC"], rows },
    },
  };
}

export function buildReport(fams: FamilyDef[], data: Map<string, TrialData[]>, profile: Profile): { doc: ReportDocument; claims: ClaimRow[] } {
  const sections: ReportSection[] = [];
  const claims: ClaimRow[] = [];
  const trained: TrialData[] = [];
  for (const fam of fams) {
    const trials = data.get(fam.id) ?? [];
    if (!trials.length) continue;
    claims.push(...claimRows(fam, trials));
    if (fam.kind !== "bounds") sections.push(fam.kind === "init" ? initSection(fam, trials) : trainSection(fam, trials));
    if (fam.kind !== "init") trained.push(...trials);
  }
  if (trained.length) {
    const b = boundsSection(trained);
    claims.push(...b.claims);
    sections.push(b.section);
  }
  const doc: ReportDocument = {
    title: "Geometric complexity: reproduction of Dherin et al. (NeurIPS 2022)",
    intro:
      `Profile: ${profile}. Each family varies one knob with several seeds; verdicts come from the measured rank correlation between the knob and the final GC ` +
      "(95% bootstrap interval resampling seeds within each knob value), compared with the paper's expected direction afterwards.\n" +
      "The paper used ResNet-18 on CIFAR-10, which cannot be installed here; these results use MLPs on MNIST (the quick profile trains on a 4,000-image subset) and synthetic data, so they test the direction of each claim, not the paper's numbers.",
    generatedAt: new Date().toISOString(),
    claims,
    sections,
    footer: "Generated by gcx reproduce (geometric-complexity). Raw data: gcx runs export --format csv.",
  };
  return { doc, claims };
}

export function formatClaimsTable(claims: ClaimRow[]): string {
  const rows = claims.map((c) => [c.id, c.claim, c.rho === null ? "" : `${c.rho.toFixed(2)} [${c.ciLow!.toFixed(2)}, ${c.ciHigh!.toFixed(2)}]`, c.verdict, c.note ?? ""]);
  const head = ["claim", "statement", "ρ [95% CI]", "verdict", "note"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i])).join(" | ").trimEnd();
  return [line(head), widths.map((w) => "-".repeat(w)).join("-|-"), ...rows.map(line)].join("\n") + "\n";
}
