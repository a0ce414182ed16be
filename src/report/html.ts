/**
 * The reproduction report as one self-contained HTML file: inline CSS, the claims table, and every figure's SVG
 * inlined (with its PNG, SVG and Vega-Lite spec written next to it under `figures/`). All text from the report
 * document is plain text and is escaped here.
 */
import { accessSync, constants as fsConstants } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { UserError } from "../util/errors.js";
import { fileError, pathKind, systemReason } from "../util/files.js";
import { writeFigure } from "./render.js";

/** "mixed" only appears on summary rows (some of a claim's counted rows agree, some do not). */
export type Verdict = "agrees" | "disagrees" | "inconclusive" | "mixed";

/** A value with its 95 % interval. */
export interface IntervalValue {
  value: number;
  ciLow: number;
  ciHigh: number;
}

export interface ClaimRow {
  id: string;
  claim: string;
  expected: string;
  knob: string;
  rho: number | null;
  ciLow: number | null;
  ciHigh: number | null;
  verdict: Verdict;
  note?: string;
  /** "row": one (claim, dataset, model); "summary": the claim over its counted rows; "sanity": an identity check. */
  kind?: "row" | "summary" | "sanity";
  dataset?: string;
  model?: string;
  /** An extension of the 2022 paper (E8, E9). */
  extension?: boolean;
  /** Effect size, e.g. GC(strongest knob)/GC(baseline), or E1's per-layer factor. */
  effect?: (IntervalValue & { label: string }) | null;
  /** Verdict with GC read where every run first reaches a common clean-label training loss. */
  matched?: {
    verdict: Verdict;
    level: number | null;
    rho: number | null;
    ciLow: number | null;
    ciHigh: number | null;
    unreached: number;
  } | null;
  /** Verdict without the points flagged for an accuracy cost. */
  unflagged?: { verdict: Verdict; rho: number | null; ciLow: number | null; ciHigh: number | null } | null;
  /** Test accuracy of the baseline point and the largest drop below it (mean over seeds), with the flagged knob values. */
  accuracy?: { baseline: number; worstDrop: number; flaggedKnobs: number[] } | null;
  /** False for rows shown but not counted (undertrained). */
  counted?: boolean;
  flags?: string[];
}

export interface ReportFigure {
  /** File stem under figures/: letters, digits, '.', '_' or '-', unique in the report. */
  name: string;
  caption: string;
  /** A Vega-Lite spec (see charts.ts). */
  spec: object;
}

export interface ReportSection {
  id: string;
  title: string;
  description: string;
  figures: ReportFigure[];
  table?: { columns: string[]; rows: (string | number)[][] };
}

export interface ReportDocument {
  title: string;
  /** Plain text; blank lines separate paragraphs. */
  intro: string;
  generatedAt: string;
  claims: ClaimRow[];
  /** Identities that always hold (E1s, the T1-T3 bounds): shown apart, not counted as claims. */
  sanity?: ClaimRow[];
  sections: ReportSection[];
  footer?: string;
}

const FIGURE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Escape text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/** Plain text → `<p>` paragraphs (blank lines separate paragraphs; single newlines become `<br>`). */
function paragraphs(text: string): string {
  return text
    .split(/\n\s*\n/)
    .map((p) => p.trim())
    .filter((p) => p.length > 0)
    .map((p) => `<p>${escapeHtml(p).replace(/\n/g, "<br>")}</p>`)
    .join("\n");
}

/** A number for a table cell: integers as is, others with 4 significant digits. */
export function formatNumber(x: number | null | undefined, digits = 4): string {
  if (x === null || x === undefined) return "—";
  if (Number.isNaN(x)) return "NaN";
  if (!Number.isFinite(x)) return x > 0 ? "∞" : "−∞";
  if (Number.isInteger(x) && Math.abs(x) < 1e15) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return x.toExponential(digits - 1);
  return String(Number(x.toPrecision(digits)));
}

function slug(id: string): string {
  return id.replace(/[^A-Za-z0-9_-]+/g, "-");
}

/** Throw unless every figure name is a safe, unique file stem. */
function checkFigureNames(report: ReportDocument): void {
  const seen = new Set<string>();
  for (const section of report.sections) {
    for (const fig of section.figures) {
      if (!FIGURE_NAME.test(fig.name)) {
        throw new Error(`figure name must be letters, digits, '.', '_' or '-': ${JSON.stringify(fig.name)}`);
      }
      if (seen.has(fig.name)) throw new Error(`duplicate figure name ${JSON.stringify(fig.name)}`);
      seen.add(fig.name);
    }
  }
}

/**
 * Make an SVG document safe to inline next to others: drop any XML prolog, and prefix every `id` (and the
 * `url(#…)` / `href="#…"` references to it) so clip paths and gradients of different figures cannot collide.
 */
export function inlineSvg(svg: string, prefix: string): string {
  const start = svg.indexOf("<svg");
  let out = start >= 0 ? svg.slice(start) : svg;
  const ids = new Set<string>();
  for (const m of out.matchAll(/\sid="([^"]+)"/g)) ids.add(m[1]);
  if (ids.size === 0) return out;
  const p = slug(prefix);
  out = out.replace(/(\sid=")([^"]+)(")/g, (all, a: string, id: string, b: string) =>
    ids.has(id) ? `${a}${p}-${id}${b}` : all,
  );
  out = out.replace(/url\(#([^)]+)\)/g, (all, id: string) => (ids.has(id) ? `url(#${p}-${id})` : all));
  out = out.replace(/(href=")#([^"]+)(")/g, (all, a: string, id: string, b: string) =>
    ids.has(id) ? `${a}#${p}-${id}${b}` : all,
  );
  return out;
}

const CSS = `
:root { --fg: #1f2328; --muted: #59636e; --border: #d1d9e0; --bg-alt: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.55 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", Helvetica, Arial, sans-serif; color: var(--fg); background: #fff; }
header { padding: 28px 40px 18px; border-bottom: 1px solid var(--border); background: var(--bg-alt); }
header h1 { margin: 0 0 4px; font-size: 26px; }
header .meta { color: var(--muted); font-size: 13px; }
main { max-width: 1100px; margin: 0 auto; padding: 8px 40px 40px; }
h2 { margin-top: 36px; padding-bottom: 6px; border-bottom: 1px solid var(--border); font-size: 20px; }
a { color: var(--accent); }
nav.toc { font-size: 14px; }
nav.toc ul { padding-left: 20px; margin: 4px 0; }
table { border-collapse: collapse; margin: 12px 0; font-size: 14px; }
th, td { border: 1px solid var(--border); padding: 5px 10px; text-align: left; vertical-align: top; }
th { background: var(--bg-alt); }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.verdict { font-weight: 600; white-space: nowrap; }
td.verdict-agrees { background: #dafbe1; color: #116329; }
td.verdict-disagrees { background: #ffebe9; color: #a40e26; }
td.verdict-inconclusive { background: #fff8c5; color: #7d4e00; }
td.verdict-mixed { background: #eef1f4; color: #3d444d; }
tr.summary-row td { font-weight: 600; border-top: 2px solid var(--fg); }
.summary span { display: inline-block; margin-right: 14px; }
.figures { display: flex; flex-wrap: wrap; gap: 20px; }
figure { margin: 8px 0; padding: 10px; border: 1px solid var(--border); border-radius: 6px; max-width: 100%; }
figure svg, figure img { display: block; max-width: 100%; height: auto; }
figcaption { margin-top: 6px; font-size: 13px; color: var(--muted); max-width: 520px; }
figcaption .links { white-space: nowrap; }
footer { max-width: 1100px; margin: 0 auto; padding: 16px 40px 40px; color: var(--muted); font-size: 13px; border-top: 1px solid var(--border); }
`;

const ci = (lo: number | null | undefined, hi: number | null | undefined) =>
  lo === null || lo === undefined || hi === null || hi === undefined
    ? ""
    : ` [${formatNumber(lo, 3)}, ${formatNumber(hi, 3)}]`;

const verdictCell = (v: Verdict | undefined | null, extra = "") =>
  v ? `<td class="verdict verdict-${escapeHtml(v)}">${escapeHtml(v)}${escapeHtml(extra)}</td>` : "<td>—</td>";

function claimsTable(claims: ClaimRow[]): string {
  if (claims.length === 0) return "<p>No claims were evaluated.</p>";
  const summaries = claims.filter((c) => c.kind === "summary");
  const headline = summaries.length ? summaries : claims;
  const counts: Record<Verdict, number> = { agrees: 0, disagrees: 0, inconclusive: 0, mixed: 0 };
  for (const c of headline) counts[c.verdict] = (counts[c.verdict] ?? 0) + 1;
  const summary =
    `<p class="summary"><span>${headline.length} claims:</span>` +
    `<span class="agrees">${counts.agrees} agree</span>` +
    `<span class="disagrees">${counts.disagrees} disagree</span>` +
    (counts.mixed ? `<span class="mixed">${counts.mixed} mixed</span>` : "") +
    `<span class="inconclusive">${counts.inconclusive} inconclusive</span></p>`;
  const rows = claims.map((c) => {
    const where = c.kind === "summary" ? "all" : [c.dataset, c.model].filter(Boolean).join(" / ");
    const effect = c.effect
      ? `${escapeHtml(c.effect.label)} ${formatNumber(c.effect.value, 3)}${ci(c.effect.ciLow, c.effect.ciHigh)}`
      : "—";
    const acc = c.accuracy
      ? `${formatNumber(c.accuracy.baseline, 3)}; worst −${formatNumber(100 * c.accuracy.worstDrop, 2)} pts${c.accuracy.flaggedKnobs.length ? `; flagged ${c.accuracy.flaggedKnobs.join(", ")}` : ""}`
      : "—";
    const flags = [...(c.flags ?? []), ...(c.counted === false ? ["not counted"] : [])].join("; ");
    return (
      `<tr id="claim-${escapeHtml(slug(`${c.id}-${where}`))}" class="${c.kind === "summary" ? "summary-row" : "row"}">` +
      `<td>${escapeHtml(c.id)}${c.extension ? " (ext.)" : ""}</td>` +
      `<td>${escapeHtml(where)}</td>` +
      `<td>${escapeHtml(c.claim)}</td>` +
      `<td>${escapeHtml(c.expected)}</td>` +
      `<td class="num">${c.rho === null ? "—" : formatNumber(c.rho, 3) + ci(c.ciLow, c.ciHigh)}</td>` +
      `<td>${effect}</td>` +
      verdictCell(c.matched?.verdict, c.matched?.unreached ? ` (${c.matched.unreached} unreached)` : "") +
      verdictCell(c.unflagged?.verdict) +
      `<td>${acc}</td>` +
      verdictCell(c.verdict) +
      `<td>${escapeHtml([flags, c.note ?? ""].filter(Boolean).join(". "))}</td>` +
      `</tr>`
    );
  });
  return (
    summary +
    `\n<table class="claims">\n<thead><tr><th>ID</th><th>Data / model</th><th>Claim</th><th>Expected</th>` +
    `<th title="rank correlation between the knob and final GC, 95% bootstrap CI">ρ [95% CI]</th><th>Effect [95% CI]</th>` +
    `<th title="GC read where each run first reaches a common clean-label training loss">Matched progress</th>` +
    `<th title="verdict without points whose test accuracy is > 5 points below the baseline">Without flagged</th>` +
    `<th>Baseline test acc; accuracy cost</th><th>Verdict</th><th>Flags / note</th></tr></thead>\n<tbody>\n` +
    rows.join("\n") +
    `\n</tbody>\n</table>`
  );
}

function sanityTable(rows: ClaimRow[]): string {
  const body = rows
    .map(
      (c) =>
        `<tr><td>${escapeHtml(c.id)}</td><td>${escapeHtml(c.claim)}</td>${verdictCell(c.verdict === "agrees" ? "agrees" : c.verdict)}<td>${escapeHtml(c.note ?? "")}</td></tr>`,
    )
    .join("\n");
  return `<table class="sanity">\n<thead><tr><th>Check</th><th>Statement</th><th>Holds</th><th>Detail</th></tr></thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
}

function dataTable(table: NonNullable<ReportSection["table"]>): string {
  const head = table.columns.map((c) => `<th>${escapeHtml(c)}</th>`).join("");
  const body = table.rows
    .map(
      (row) =>
        "<tr>" +
        row
          .map((v) =>
            typeof v === "number" ? `<td class="num">${formatNumber(v)}</td>` : `<td>${escapeHtml(String(v))}</td>`,
          )
          .join("") +
        "</tr>",
    )
    .join("\n");
  return `<table class="data">\n<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
}

function figureHtml(fig: ReportFigure, svg: string | undefined): string {
  const name = escapeHtml(fig.name);
  const body =
    svg !== undefined
      ? inlineSvg(svg, `fig-${fig.name}`)
      : `<img src="figures/${name}.svg" alt="${escapeHtml(fig.caption)}">`;
  return (
    `<figure id="fig-${escapeHtml(slug(fig.name))}">\n${body}\n<figcaption>${escapeHtml(fig.caption)} ` +
    `<span class="links">(<a href="figures/${name}.png">PNG</a> · <a href="figures/${name}.svg">SVG</a> · ` +
    `<a href="figures/${name}.vl.json">spec</a>)</span></figcaption>\n</figure>`
  );
}

/**
 * The report as HTML. `svgs` maps figure names to rendered SVG markup (as `writeReport` produces), which is
 * inlined; a figure without an entry is referenced as `figures/<name>.svg` instead.
 */
export function reportHtml(report: ReportDocument, svgs: Record<string, string> = {}): string {
  checkFigureNames(report);
  const toc = report.sections
    .map((s) => `<li><a href="#${escapeHtml(slug(s.id))}">${escapeHtml(s.title)}</a></li>`)
    .join("\n");
  const sections = report.sections.map((s) => {
    const figs = s.figures.map((f) => figureHtml(f, Object.hasOwn(svgs, f.name) ? svgs[f.name] : undefined)).join("\n");
    return (
      `<section id="${escapeHtml(slug(s.id))}">\n<h2>${escapeHtml(s.title)}</h2>\n${paragraphs(s.description)}\n` +
      (figs ? `<div class="figures">\n${figs}\n</div>\n` : "") +
      (s.table ? dataTable(s.table) + "\n" : "") +
      `</section>`
    );
  });
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="gcx report">
<title>${escapeHtml(report.title)}</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>${escapeHtml(report.title)}</h1>
<div class="meta">Generated ${escapeHtml(report.generatedAt)}</div>
</header>
<main>
<section id="intro">
${paragraphs(report.intro)}
</section>
${report.sections.length > 0 ? `<nav class="toc"><strong>Contents</strong>\n<ul>\n<li><a href="#claims">Claims</a></li>\n${toc}\n</ul>\n</nav>` : ""}
<section id="claims">
<h2>Claims</h2>
${claimsTable(report.claims)}
</section>
${report.sanity?.length ? `<section id="sanity">\n<h2>Sanity checks (not counted as claims)</h2>\n<p>Identities that always hold for zero-bias or 1-Lipschitz ReLU networks; a failure here is a bug, not a finding.</p>\n${sanityTable(report.sanity)}\n</section>` : ""}
${sections.join("\n")}
</main>
${report.footer ? `<footer>${paragraphs(report.footer)}</footer>` : ""}
</body>
</html>
`;
}

/**
 * Checks, before any work, that the report can be written to directory `dir` (existing or to be created): an
 * existing file there, a file in the way of `dir/figures`, or a directory that cannot be written is one line naming
 * the path. Nothing is created or changed.
 */
export function checkReportDir(dir: string): void {
  const kind = pathKind(dir);
  if (kind === "file" || kind === "other")
    throw new UserError(
      `cannot write the report to ${dir}: it is an existing file, not a directory (pass --out <directory>)`,
    );
  if (kind === "directory") {
    for (const name of ["figures", "index.html"]) {
      const want = name === "figures" ? "directory" : "file";
      const got = pathKind(join(dir, name));
      if (got !== "missing" && got !== want)
        throw new UserError(
          `cannot write the report to ${dir}: ${join(dir, name)} is ${got === "directory" ? "a directory" : "not a directory"}; move it away or pass another --out`,
        );
    }
    writable(dir, dir);
    if (pathKind(join(dir, "figures")) === "directory") writable(join(dir, "figures"), dir);
    return;
  }
  // The nearest existing ancestor must be a directory this process can create entries in.
  let parent = resolve(dir);
  for (;;) {
    const up = dirname(parent);
    if (up === parent) return;
    parent = up;
    const k = pathKind(parent);
    if (k === "missing") continue;
    if (k !== "directory")
      throw new UserError(`cannot create the report directory ${dir}: ${parent} is not a directory`);
    writable(parent, dir);
    return;
  }
}

/** Throws a one-line UserError unless entries can be created in directory `path` (on the way to report `dir`). */
function writable(path: string, dir: string): void {
  try {
    accessSync(path, fsConstants.W_OK | fsConstants.X_OK);
  } catch (e) {
    const reason = systemReason(e);
    if (path === dir) throw new UserError(`cannot write the report to ${dir}: ${reason}`);
    if (resolve(path) === resolve(dir, "figures"))
      throw new UserError(`cannot write the report to ${dir}: ${path}: ${reason}`);
    throw new UserError(`cannot create the report directory ${dir}: ${path}: ${reason}`);
  }
}

/** Writes a file through a temporary file renamed into place; a failure is one line naming the file. */
async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw fileError("write", path, e);
  }
}

/**
 * Render every figure to `dir/figures/<name>.svg`, `.png` and `.vl.json`, write `dir/index.html` with the SVGs
 * inlined, and return the path of index.html.
 */
export async function writeReport(dir: string, report: ReportDocument): Promise<string> {
  checkFigureNames(report);
  checkReportDir(dir);
  const figDir = join(dir, "figures");
  try {
    await mkdir(figDir, { recursive: true });
  } catch (e) {
    throw fileError("create the report directory", figDir, e);
  }
  const svgs: Record<string, string> = {};
  for (const section of report.sections) {
    for (const fig of section.figures) {
      try {
        const { svg } = await writeFigure(figDir, fig.name, fig.spec);
        svgs[fig.name] = svg;
      } catch (e) {
        const path = (e as { path?: unknown }).path;
        throw fileError("write", typeof path === "string" ? path : join(figDir, fig.name), e);
      }
      await writeAtomic(join(figDir, `${fig.name}.vl.json`), JSON.stringify(fig.spec, null, 2) + "\n");
    }
  }
  const htmlPath = join(dir, "index.html");
  await writeAtomic(htmlPath, reportHtml(report, svgs));
  return htmlPath;
}
