/**
 * Turns finished trials into the report: per family the figures PAPER.md lists (one panel per dataset/model where
 * curves would otherwise pile up, never more than 8 colours in a panel), the claims table (claimRows.ts), the
 * mechanisms table and the sanity checks.
 */
import type { ClaimRow, ReportDocument, ReportFigure, ReportSection } from "../report/html.js";
import { concatCharts, errorBarChart, lineChart } from "../report/charts.js";
import { monotoneVerdict } from "./claims.js";
import { analyzeSetup, familyClaimRows, finalPoints, fmt, isDead, num, type TrialData } from "./claimRows.js";
import type { FamilyDef, Profile } from "./families.js";
import { setupName, setupsOf } from "./trials.js";

export type { TrialData } from "./claimRows.js";

/** At most this many colours in one panel. */
const MAX_COLOURS = 8;

interface Band {
  mean: number;
  lower: number;
  upper: number;
  n: number;
}

function band(vals: number[]): Band {
  const n = vals.length,
    mean = vals.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(vals.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  const half = (1.96 * sd) / Math.sqrt(n);
  return { mean, lower: mean - half, upper: mean + half, n };
}

/** Mean and a normal-approximation 95% interval over seeds of a final metric, per (setup, variant, knob). */
function summarize(
  trials: TrialData[],
  metric: string,
  value = (t: TrialData) => num(t.row.summary?.[metric]),
): Record<string, unknown>[] {
  const groups = new Map<string, { knob: number; variant: string; setup: string; vals: number[] }>();
  for (const t of trials) {
    const key = `${t.setup}|${t.variant}|${t.row.knobValue}`;
    const g = groups.get(key) ?? { knob: t.row.knobValue, variant: t.variant || "all", setup: t.setup, vals: [] };
    const v = value(t);
    if (Number.isFinite(v)) g.vals.push(v);
    groups.set(key, g);
  }
  return [...groups.values()]
    .filter((g) => g.vals.length)
    .map((g) => ({ knob: g.knob, variant: g.variant, setup: g.setup, ...band(g.vals) }));
}

/** Mean and 95% band over seeds of a metric at each logged step, per knob value (at most MAX_COLOURS of them). */
function curves(trials: TrialData[], metric: string, knobs: number[], timeScale = false): Record<string, unknown>[] {
  const acc = new Map<string, { knob: number; step: number; vals: number[] }>();
  for (const t of trials) {
    if (!knobs.includes(t.row.knobValue)) continue;
    for (const m of t.metrics) {
      const v = num(m[metric]);
      if (!Number.isFinite(v)) continue;
      const key = `${t.row.knobValue}|${num(m.step)}`;
      const a = acc.get(key) ?? { knob: t.row.knobValue, step: num(m.step), vals: [] };
      a.vals.push(v);
      acc.set(key, a);
    }
  }
  return [...acc.values()].map((a) => ({ knob: a.knob, step: timeScale ? a.step * a.knob : a.step, ...band(a.vals) }));
}

/** Up to MAX_COLOURS knob values, evenly spread over the grid (first and last always kept). */
function shownKnobs(values: number[]): number[] {
  if (values.length <= MAX_COLOURS) return values;
  return Array.from(
    { length: MAX_COLOURS },
    (_, i) => values[Math.round((i * (values.length - 1)) / (MAX_COLOURS - 1))],
  );
}

function perSetup(fam: FamilyDef, trials: TrialData[]): { name: string; trials: TrialData[] }[] {
  return setupsOf(fam)
    .map((s) => ({ name: setupName(s), trials: trials.filter((t) => t.setup === setupName(s)) }))
    .filter((s) => s.trials.length);
}

function trainSection(fam: FamilyDef, trials: TrialData[]): ReportSection {
  const xTitle = fam.knob.label;
  const setups = perSetup(fam, trials);
  const timeAxis = fam.knob.key === "lr";
  const knobs = shownKnobs(fam.knob.values);
  const live = fam.knob.key === "width" ? trials.filter((t) => !isDead(t)) : trials;
  const figures: ReportFigure[] = [];
  const seeds = fam.seeds.length;
  figures.push({
    name: `${fam.id}-gc-vs-step`,
    caption: `GC on the training subset during training: mean over ${seeds} seeds with a 95% band, one line per ${xTitle}${knobs.length < fam.knob.values.length ? ` (${knobs.length} of ${fam.knob.values.length} values shown)` : ""}, one panel per dataset/model.`,
    spec: concatCharts(
      `${fam.id}: GC vs ${timeAxis ? "h·step" : "step"}`,
      setups.map((s) =>
        lineChart({
          title: s.name,
          values: curves(
            live.filter((t) => t.setup === s.name),
            "gc_train",
            knobs,
            timeAxis,
          ),
          x: "step",
          y: "mean",
          errorBand: { lower: "lower", upper: "upper" },
          color: "knob",
          colorTitle: xTitle,
          xTitle: timeAxis ? "gradient-flow time h·step" : "step",
          yTitle: "GC (train subset)",
          logY: true,
          width: 300,
          height: 220,
        }),
      ),
    ),
  });
  figures.push({
    name: `${fam.id}-final-gc`,
    caption: `Final GC vs ${xTitle}: mean and 95% interval over seeds, per dataset/model.`,
    spec: errorBarChart({
      title: `${fam.id}: final GC`,
      values: summarize(live, "gc_train"),
      x: "knob",
      y: "mean",
      lower: "lower",
      upper: "upper",
      color: "setup",
      colorTitle: "data/model",
      xType: "ordinal",
      xTitle,
      yTitle: "final GC",
      logY: true,
      connect: true,
    }),
  });
  figures.push({
    name: `${fam.id}-final-acc`,
    caption: `Final test accuracy vs ${xTitle}.`,
    spec: errorBarChart({
      title: `${fam.id}: test accuracy`,
      values: summarize(live, "test_acc"),
      x: "knob",
      y: "mean",
      lower: "lower",
      upper: "upper",
      color: "setup",
      colorTitle: "data/model",
      xType: "ordinal",
      xTitle,
      yTitle: "test accuracy",
      connect: true,
    }),
  });
  figures.push({
    name: `${fam.id}-tradeoff`,
    caption: `Trade-off: final GC against final test accuracy, one point per ${xTitle} (mean over seeds), one panel per dataset/model. A penalty that lowers GC only by losing accuracy moves down and left.`,
    spec: concatCharts(
      `${fam.id}: GC vs test accuracy`,
      setups.map((s) => {
        const gc = summarize(s.trials, "gc_train"),
          acc = summarize(s.trials, "test_acc");
        const values = gc
          .map((g) => ({ knob: g.knob, gc: g.mean, acc: acc.find((a) => a.knob === g.knob)?.mean }))
          .filter((v) => Number.isFinite(v.acc as number));
        return lineChart({
          title: s.name,
          values,
          x: "acc",
          y: "gc",
          color: "knob",
          colorTitle: xTitle,
          points: true,
          xTitle: "test accuracy",
          yTitle: "final GC",
          logY: true,
          width: 260,
          height: 200,
        });
      }),
    ),
  });
  if (fam.knob.key === "width") {
    figures.push({
      name: `${fam.id}-test-loss`,
      caption: "Final test loss vs width: the double-descent curve to compare with GC.",
      spec: errorBarChart({
        title: `${fam.id}: test loss`,
        values: summarize(live, "test_loss"),
        x: "knob",
        y: "mean",
        lower: "lower",
        upper: "upper",
        color: "setup",
        colorTitle: "data/model",
        xType: "ordinal",
        xTitle,
        yTitle: "test loss",
        connect: true,
      }),
    });
    figures.push({
      name: `${fam.id}-train-acc`,
      caption:
        "Final train accuracy on the corrupted labels vs width: the interpolation threshold is where it reaches 1.",
      spec: errorBarChart({
        title: `${fam.id}: train accuracy (corrupted labels)`,
        values: summarize(live, "train_acc"),
        x: "knob",
        y: "mean",
        lower: "lower",
        upper: "upper",
        color: "setup",
        colorTitle: "data/model",
        xType: "ordinal",
        xTitle,
        yTitle: "train accuracy",
        connect: true,
      }),
    });
  } else {
    const matched = setups.flatMap((s) => {
      const setup = setupsOf(fam).find((x) => setupName(x) === s.name)!;
      const m = analyzeSetup(fam, setup, s.trials).matched;
      if (!m) return [];
      const byKnob = new Map<number, number[]>();
      for (const p of m.points) byKnob.set(p.knob, [...(byKnob.get(p.knob) ?? []), p.value]);
      return [...byKnob].map(([knob, vals]) => ({ knob, setup: `${s.name} (loss ${fmt(m.level)})`, ...band(vals) }));
    });
    if (matched.length)
      figures.push({
        name: `${fam.id}-matched`,
        caption: `GC at matched progress: read where each run first reaches the common clean-label training loss (in the legend; interpolated between logged points), vs ${xTitle}.`,
        spec: errorBarChart({
          title: `${fam.id}: GC at matched training loss`,
          values: matched,
          x: "knob",
          y: "mean",
          lower: "lower",
          upper: "upper",
          color: "setup",
          colorTitle: "data/model (level)",
          xType: "ordinal",
          xTitle,
          yTitle: "GC at matched loss",
          logY: true,
          connect: true,
        }),
      });
  }
  for (const mech of fam.mechanisms ?? []) {
    const values = summarize(live, mech.metric);
    if (values.length)
      figures.push({
        name: `${fam.id}-${mech.metric.replace(/_/g, "-")}`,
        caption: `Mechanism: final ${mech.label} vs ${xTitle} (mean and 95% interval over seeds).`,
        spec: errorBarChart({
          title: `${fam.id}: ${mech.label}`,
          values,
          x: "knob",
          y: "mean",
          lower: "lower",
          upper: "upper",
          color: "setup",
          colorTitle: "data/model",
          xType: "ordinal",
          xTitle,
          yTitle: mech.label,
          logY: true,
          connect: true,
        }),
      });
  }
  return { id: fam.id, title: `${fam.id} — ${fam.title}`, description: fam.description, figures };
}

function initSection(fam: FamilyDef, trials: TrialData[]): ReportSection {
  const figures: ReportFigure[] = [
    {
      name: `${fam.id}-gc-at-init`,
      caption: `Mean GC at initialization vs ${fam.knob.label} (mean and 95% interval over ${fam.seeds.length} networks).`,
      spec: errorBarChart({
        title: `${fam.id}: mean GC at initialization`,
        values: summarize(trials, "gc_test"),
        x: "knob",
        y: "mean",
        lower: "lower",
        upper: "upper",
        color: "variant",
        colorTitle: "init",
        xTitle: fam.knob.label,
        xType: "ordinal",
        yTitle: "GC at init (mean)",
        logY: true,
        connect: true,
      }),
    },
  ];
  if (fam.knob.key === "depth") {
    const med = summarize(trials, "gc_test").map((g) => {
      const vals = trials
        .filter((t) => t.variant === g.variant && t.row.knobValue === g.knob)
        .map((t) => num(t.row.summary?.gc_test))
        .filter(Number.isFinite)
        .sort((a, b) => a - b);
      const m = vals.length >> 1;
      return {
        knob: g.knob,
        variant: g.variant,
        median: vals.length % 2 ? vals[m] : (vals[m - 1] + vals[m]) / 2,
        q1: vals[Math.floor(vals.length / 4)],
        q3: vals[Math.ceil((3 * vals.length) / 4) - 1],
      };
    });
    figures.push({
      name: `${fam.id}-gc-median`,
      caption:
        "Median GC at initialization over networks, with the interquartile range: under He the mean is preserved exactly while the typical (median) value drifts down with depth as the spread grows.",
      spec: errorBarChart({
        title: `${fam.id}: median GC at initialization`,
        values: med,
        x: "knob",
        y: "median",
        lower: "q1",
        upper: "q3",
        color: "variant",
        colorTitle: "init",
        xTitle: fam.knob.label,
        xType: "ordinal",
        yTitle: "GC at init (median, IQR)",
        logY: true,
        connect: true,
      }),
    });
  }
  const lines = trials.filter((t) => t.row.seed === fam.seeds[0] && Array.isArray(t.row.summary?.line));
  if (lines.length) {
    const variants = [...new Set(lines.map((t) => t.variant))];
    const panel = (v: string) =>
      lineChart({
        title: v || fam.knob.label,
        values: lines
          .filter((t) => t.variant === v)
          .flatMap((t) => (t.row.summary!.line as number[]).map((y, i) => ({ t: i / 63, y, knob: t.row.knobValue }))),
        x: "t",
        y: "y",
        color: "knob",
        colorTitle: fam.knob.label,
        xTitle: "position on the segment",
        yTitle: "logit 0",
        width: 220,
        height: 180,
      });
    figures.push({
      name: `${fam.id}-line`,
      caption:
        "First logit of the initialized network along the segment between two test images (seed 0), one panel per scheme (independent y axes), colour by depth: flatter functions have lower GC.",
      spec: concatCharts(`${fam.id}: output along a line`, variants.map(panel), 2),
    });
  }
  return { id: fam.id, title: `${fam.id} — ${fam.title}`, description: fam.description, figures };
}

/** B: every logged step of every trained MLP trial, GC against the T1, T2 and T3 bounds (sanity checks). */
function boundsSection(all: TrialData[]): { section: ReportSection; sanity: ClaimRow[] } {
  const bounds: [string, string][] = [
    ["prod_frobenius_sq", "T1 bound ∏‖W‖_F²"],
    ["lipschitz_bound", "T2 bound min(d,k)∏‖W‖_op²"],
    ["t3_bound", "T3 bound (first layer)"],
  ];
  const rows: (string | number)[][] = [];
  const sanity: ClaimRow[] = [];
  for (const [key, label] of bounds) {
    let n = 0,
      held = 0,
      minRatio = Infinity;
    for (const t of all)
      for (const m of t.metrics) {
        const gc = num(m.gc_train),
          b = num(m[key]);
        if (!Number.isFinite(gc) || !Number.isFinite(b)) continue;
        n++;
        // GC is computed in float32: allow its rounding, not the bound's (the spectral norms are certified).
        if (b >= gc * (1 - 1e-6)) held++;
        if (gc > 0) minRatio = Math.min(minRatio, b / gc);
      }
    rows.push([label, n, held, fmt(minRatio)]);
    sanity.push({
      id: `B ${label.split(" ")[0]}`,
      claim: `${label} ≥ GC at every logged step`,
      expected: "bound ≥ GC",
      knob: "—",
      rho: null,
      ciLow: null,
      ciHigh: null,
      kind: "sanity",
      verdict: n === 0 ? "inconclusive" : held === n ? "agrees" : "disagrees",
      note:
        n === 0
          ? "not applicable: no dense ReLU-chain (MLP) runs; the bounds are not defined for CNNs"
          : `${held}/${n} logged points hold; smallest bound/GC ${fmt(minRatio)}`,
    });
  }
  const example = all.find((t) => t.row.family === "E2" && t.row.knobValue === 0 && t.setup === "mnist/mlp") ?? all[0];
  const values = example
    ? example.metrics.flatMap((m) =>
        [["GC", num(m.gc_train)], ...bounds.map(([k, l]) => [l.split(" ").slice(0, 2).join(" "), num(m[k])])]
          .filter(([, v]) => Number.isFinite(v as number))
          .map(([q, v]) => ({ step: m.step, quantity: q, value: v })),
      )
    : [];
  return {
    sanity,
    section: {
      id: "B",
      title: "B — GC against its upper bounds (sanity check)",
      description: `Every logged step of every trained MLP trial: the T1, T2 and T3 bounds must lie above the measured GC (spectral norms are certified upper bounds: exact σ_max of the Gram matrix plus a rounding allowance). The figure follows one run${example ? ` (${example.row.family} ${example.setup}, ${example.row.knob} = ${example.row.knobValue}, seed ${example.row.seed})` : ""}; the table covers all runs.`,
      figures: example
        ? [
            {
              name: "B-bounds",
              caption: "GC and its bounds during training (log scale).",
              spec: lineChart({
                title: "B: GC and its bounds",
                values,
                x: "step",
                y: "value",
                color: "quantity",
                logY: true,
                yTitle: "value",
              }),
            },
          ]
        : [],
      table: { columns: ["bound", "logged points", "bound ≥ GC", "smallest bound / GC"], rows },
    },
  };
}

/** The mechanisms table: each logged mechanism's rank correlation with the knob, per family and setup. */
function mechanismSection(fams: FamilyDef[], data: Map<string, TrialData[]>): ReportSection | null {
  const rows: (string | number)[][] = [];
  for (const fam of fams)
    for (const mech of fam.mechanisms ?? [])
      for (const s of perSetup(fam, data.get(fam.id) ?? [])) {
        const pts = finalPoints(s.trials, mech.metric).filter((p) => Number.isFinite(p.value));
        if (pts.length < 3) {
          rows.push([fam.id, s.name, mech.label, "not logged for this model", "—", "—"]);
          continue;
        }
        const r = monotoneVerdict(pts, mech.expected);
        rows.push([
          fam.id,
          s.name,
          mech.label,
          mech.expected === "decreasing" ? "knob ↑ → ↓" : "knob ↑ → ↑",
          `${r.rho.toFixed(2)} [${r.ciLow.toFixed(2)}, ${r.ciHigh.toFixed(2)}]`,
          r.verdict,
        ]);
      }
  if (!rows.length) return null;
  return {
    id: "mechanisms",
    title: "Mechanisms: flatness and parameter-gradient norms",
    description:
      "The paper's arguments run through flatness (T3/T4: Hessian trace of the loss, Hutchinson's estimate with 8 probes on the GC subset) and the parameter-gradient norm of the outputs (T5: mean ‖∇θ g‖² under label noise). Rank correlation of the final value with the knob and its 95% bootstrap interval; the figures are in each family's section.",
    figures: [],
    table: { columns: ["family", "data/model", "mechanism", "expected", "ρ [95% CI]", "verdict"], rows },
  };
}

export function buildReport(
  fams: FamilyDef[],
  data: Map<string, TrialData[]>,
  profile: Profile,
): { doc: ReportDocument; claims: ClaimRow[]; sanity: ClaimRow[] } {
  const sections: ReportSection[] = [];
  const claims: ClaimRow[] = [];
  const sanity: ClaimRow[] = [];
  const trained: TrialData[] = [];
  for (const fam of fams) {
    const trials = data.get(fam.id) ?? [];
    if (!trials.length) continue;
    const r = familyClaimRows(fam, trials);
    claims.push(...r.rows);
    sanity.push(...r.sanity);
    if (fam.kind !== "bounds")
      sections.push(fam.kind === "init" ? initSection(fam, trials) : trainSection(fam, trials));
    if (fam.kind !== "init") trained.push(...trials);
  }
  const mech = mechanismSection(fams, data);
  if (mech) sections.push(mech);
  if (trained.length) {
    const b = boundsSection(trained);
    sanity.push(...b.sanity);
    sections.push(b.section);
  }
  const doc: ReportDocument = {
    title: "Geometric complexity: reproduction of Dherin et al. (NeurIPS 2022)",
    intro:
      `Profile: ${profile}. Each family varies one knob with several seeds on every dataset/model of the profile; each (claim, dataset, model) row's verdict comes from the measured rank correlation between the knob and the final GC ` +
      "(95% bootstrap interval resampling seeds within each knob value), compared with the paper's expected direction afterwards. A summary row per claim agrees only if every counted row agrees, disagrees only if every counted row disagrees, and is mixed otherwise; rows whose unregularized test accuracy is below the stated floor are undertrained (shown, not counted).\n" +
      `Each row also gives the effect size GC(strongest knob)/GC(baseline) with its interval, a matched-progress verdict (GC read where each run first reaches a common clean-label training loss: the loosest loss every unflagged run reaches, interpolated between logged points), and the accuracy cost: points more than 5 points of test accuracy below the baseline are flagged, and the verdict without them is shown. E8 (input noise) and E9 (explicit GC penalty, from the 2024 follow-up) are extensions of the 2022 paper.\n` +
      "The paper used ResNet-18 on CIFAR-10, which cannot be installed here; these results use small MLPs and CNNs on MNIST and Fashion-MNIST subsets, so they test the direction of each claim, not the paper's numbers.",
    generatedAt: new Date().toISOString(),
    claims,
    sanity,
    sections,
    footer: "Generated by gcx reproduce (geometric-complexity). Raw data: gcx runs export --format csv.",
  };
  return { doc, claims, sanity };
}

const interval = (v: number | null | undefined, lo: number | null | undefined, hi: number | null | undefined, d = 2) =>
  v === null || v === undefined || !Number.isFinite(v)
    ? ""
    : `${v.toFixed(d)}${lo !== null && lo !== undefined && hi !== null && hi !== undefined ? ` [${lo.toFixed(d)}, ${hi.toFixed(d)}]` : ""}`;

/** The claims table as plain text (one row per claim × dataset × model, then the summary), and the sanity checks. */
export function formatClaimsTable(claims: ClaimRow[], sanity: ClaimRow[] = []): string {
  const rows = claims.map((c) => [
    `${c.kind === "summary" ? "=" : " "} ${c.id}${c.extension ? " (ext)" : ""}`,
    c.kind === "summary" ? "summary" : `${c.dataset ?? ""}/${c.model ?? ""}`,
    interval(c.rho, c.ciLow, c.ciHigh),
    c.effect ? `${fmt(c.effect.value)} [${fmt(c.effect.ciLow)}, ${fmt(c.effect.ciHigh)}]` : "",
    c.matched?.verdict ?? "",
    c.unflagged?.verdict ?? "",
    c.accuracy && Number.isFinite(c.accuracy.baseline)
      ? `${(100 * c.accuracy.baseline).toFixed(1)}% −${(100 * c.accuracy.worstDrop).toFixed(1)}`
      : c.accuracy
        ? "no baseline"
        : "",
    c.verdict + (c.counted === false ? " (not counted)" : ""),
    [...(c.flags ?? []), c.note ?? ""].filter(Boolean).join("; "),
  ]);
  const head = [
    "claim",
    "data/model",
    "ρ [95% CI]",
    "effect [95% CI]",
    "matched",
    "w/o flagged",
    "acc, cost",
    "verdict",
    "flags / note",
  ];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i])))
      .join(" | ")
      .trimEnd();
  let out = [line(head), widths.map((w) => "-".repeat(w)).join("-|-"), ...rows.map(line)].join("\n") + "\n";
  if (sanity.length)
    out +=
      "\nSanity checks (identities; not counted as claims):\n" +
      sanity.map((c) => `  ${c.id}: ${c.verdict === "agrees" ? "holds" : c.verdict}: ${c.note ?? ""}`).join("\n") +
      "\n";
  return out;
}

/** The claims as JSON records (gcx reproduce --json). */
export function claimsJson(claims: ClaimRow[], sanity: ClaimRow[]): Record<string, unknown>[] {
  const iv = (v: number | null | undefined, lo: number | null | undefined, hi: number | null | undefined) =>
    v === null || v === undefined ? null : { value: v, ciLow: lo ?? null, ciHigh: hi ?? null };
  return [...claims, ...sanity].map((c) => ({
    id: c.id,
    kind: c.kind ?? "row",
    dataset: c.dataset ?? null,
    model: c.model ?? null,
    claim: c.claim,
    extension: c.extension ?? false,
    expected: c.expected,
    knob: c.knob,
    rho: iv(c.rho, c.ciLow, c.ciHigh),
    effect: c.effect
      ? { label: c.effect.label, value: c.effect.value, ciLow: c.effect.ciLow, ciHigh: c.effect.ciHigh }
      : null,
    matchedProgress: c.matched ?? null,
    withoutFlagged: c.unflagged ?? null,
    accuracyCost: c.accuracy ?? null,
    verdict: c.verdict,
    counted: c.counted ?? c.kind !== "sanity",
    flags: c.flags ?? [],
    note: c.note ?? null,
  }));
}
