import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { concatCharts, errorBarChart, lineChart } from "../src/report/charts.js";
import { fontSetup, renderSvg, svgToPng } from "../src/report/render.js";
import {
  escapeHtml,
  formatNumber,
  inlineSvg,
  reportHtml,
  writeReport,
  type ReportDocument,
} from "../src/report/html.js";

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function pngSize(png: Uint8Array): { width: number; height: number } {
  assert.deepEqual([...png.subarray(0, 8)], PNG_MAGIC, "PNG signature");
  assert.equal(String.fromCharCode(...png.subarray(12, 16)), "IHDR");
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return { width: dv.getUint32(16), height: dv.getUint32(20) };
}

function curveValues(): Record<string, unknown>[] {
  const values: Record<string, unknown>[] = [];
  for (const lr of [0.01, 0.1]) {
    for (let step = 1; step <= 20; step++) {
      const gc = 5 / (1 + lr * step) + 0.1;
      values.push({ step, gc, lo: gc * 0.9, hi: gc * 1.1, lr: `lr=${lr}` });
    }
  }
  return values;
}

function knobValues(): Record<string, unknown>[] {
  return [1e-4, 1e-3, 1e-2, 1e-1].flatMap((wd, i) => [
    { wd, gc: 4 - i, lo: 3.5 - i, hi: 4.5 - i, data: "mnist" },
    { wd, gc: 3 - i * 0.5, lo: 2.8 - i * 0.5, hi: 3.2 - i * 0.5, data: "fashion-mnist" },
  ]);
}

test("lineChart renders to SVG with title, lines and band, and to PNG", async () => {
  const spec = lineChart({
    title: "GC during training",
    values: curveValues(),
    x: "step",
    y: "gc",
    color: "lr",
    xTitle: "step",
    yTitle: "GC",
    logY: true,
    errorBand: { lower: "lo", upper: "hi" },
    points: true,
  });
  const t0 = performance.now();
  const svg = await renderSvg(spec);
  const svgMs = performance.now() - t0;
  assert.match(svg, /^<svg/);
  assert.ok(svg.includes("GC during training"), "title text");
  assert.match(svg, /class="mark-line role-mark/);
  assert.match(svg, /class="mark-area role-mark/);
  assert.match(svg, /<path [^>]*d="M/);
  assert.ok(svg.includes("lr=0.01") && svg.includes("lr=0.1"), "legend labels");

  const t1 = performance.now();
  const png = svgToPng(svg);
  const pngMs = performance.now() - t1;
  const { width, height } = pngSize(png);
  const svgWidth = Number(/width="(\d+(?:\.\d+)?)"/.exec(svg)![1]);
  assert.ok(width > 0 && height > 0);
  assert.equal(width, Math.round(svgWidth * 2), "default scale 2");
  assert.equal(pngSize(svgToPng(svg, 1)).width, Math.round(svgWidth));
  console.log(`lineChart: svg ${svgMs.toFixed(0)} ms, png ${pngMs.toFixed(0)} ms`);
});

test("errorBarChart renders points and error bars on a log x axis", async () => {
  const spec = errorBarChart({
    title: "Final GC vs weight decay",
    values: knobValues(),
    x: "wd",
    y: "gc",
    lower: "lo",
    upper: "hi",
    color: "data",
    logX: true,
    connect: true,
    xTitle: "weight decay",
  });
  const t0 = performance.now();
  const svg = await renderSvg(spec);
  const svgMs = performance.now() - t0;
  assert.match(svg, /^<svg/);
  assert.ok(svg.includes("Final GC vs weight decay"));
  assert.match(svg, /class="mark-rule role-mark/);
  assert.match(svg, /class="mark-symbol role-mark/);
  assert.ok(svg.includes("weight decay"), "axis title");
  const png = svgToPng(svg);
  assert.ok(pngSize(png).width > 0);
  console.log(`errorBarChart: svg ${svgMs.toFixed(0)} ms`);
});

test("concatCharts places two charts side by side", async () => {
  const a = lineChart({ title: "A", values: curveValues(), x: "step", y: "gc", color: "lr" });
  const b = errorBarChart({ title: "B", values: knobValues(), x: "wd", y: "gc", lower: "lo", upper: "hi", logX: true });
  const both = concatCharts("A and B", [a, b]);
  const svg = await renderSvg(both);
  const single = await renderSvg(a);
  const w = (s: string) => Number(/width="(\d+(?:\.\d+)?)"/.exec(s)![1]);
  assert.ok(w(svg) > 1.5 * w(single), "wider than one chart");
  assert.ok(svg.includes("A and B"));
});

test(
  "text is drawn into PNGs when a font is available",
  { skip: fontSetup().files.length === 0 && "no font file found (install fonts-dejavu-core)" },
  () => {
    const svg =
      '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="30"><text x="5" y="20" font-family="sans-serif" font-size="16">Hello GC</text></svg>';
    const png = svgToPng(svg, 1);
    // Compare with an image of the same size without text: the text must change the (compressed) pixels.
    const blank = svgToPng('<svg xmlns="http://www.w3.org/2000/svg" width="120" height="30"></svg>', 1);
    assert.equal(pngSize(png).width, 120);
    assert.ok(png.length > blank.length + 50, `text drew pixels (${png.length} vs ${blank.length} bytes)`);
  },
);

test("escaping, number formatting and SVG id scoping", () => {
  assert.equal(
    escapeHtml(`<script>alert("x") & 'y'</script>`),
    "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;",
  );
  assert.equal(formatNumber(null), "—");
  assert.equal(formatNumber(3), "3");
  assert.equal(formatNumber(0.123456), "0.1235");
  assert.equal(formatNumber(1.5e-6), "1.500e-6");
  const svg =
    '<?xml version="1.0"?><svg><defs><clipPath id="clip1"><rect/></clipPath></defs><g clip-path="url(#clip1)"><use href="#clip1"/></g></svg>';
  const out = inlineSvg(svg, "fig-a");
  assert.ok(out.startsWith("<svg"));
  assert.ok(
    out.includes('id="fig-a-clip1"') && out.includes("url(#fig-a-clip1)") && out.includes('href="#fig-a-clip1"'),
  );
  assert.ok(!out.includes('"clip1"'));
});

test("writeReport writes index.html with claims, inline SVG, escaped text and PNG figures", async () => {
  const dir = mkdtempSync(join(tmpdir(), "gcx-report-"));
  try {
    const report: ReportDocument = {
      title: "GC reproduction <script>alert(1)</script>",
      intro:
        "The paper used ResNet-18 on CIFAR-10, which cannot be installed here; these results use MNIST, Fashion-MNIST and synthetic data.\n\nSecond paragraph with <script>bad()</script> & friends.",
      generatedAt: "2025-01-01T00:00:00Z",
      claims: [
        {
          id: "C1",
          claim: "Weight decay lowers GC",
          expected: "ρ < 0",
          knob: "weight decay",
          rho: -0.83,
          ciLow: -0.95,
          ciHigh: -0.6,
          verdict: "agrees",
        },
        {
          id: "C2",
          claim: "Larger batches raise GC",
          expected: "ρ > 0",
          knob: "batch size",
          rho: 0.1,
          ciLow: -0.3,
          ciHigh: 0.5,
          verdict: "inconclusive",
          note: "few seeds",
        },
        {
          id: "C3",
          claim: "Label noise lowers GC",
          expected: "ρ < 0",
          knob: "label noise",
          rho: 0.4,
          ciLow: 0.2,
          ciHigh: 0.6,
          verdict: "disagrees",
        },
        {
          id: "C4",
          claim: "No data",
          expected: "ρ < 0",
          knob: "x",
          rho: null,
          ciLow: null,
          ciHigh: null,
          verdict: "inconclusive",
        },
      ],
      sections: [
        {
          id: "weight-decay",
          title: "Weight decay",
          description: "Final GC against weight decay.",
          figures: [
            {
              name: "wd-final",
              caption: "Final GC, mean and 95% CI over seeds.",
              spec: errorBarChart({
                title: "Final GC vs weight decay",
                values: knobValues(),
                x: "wd",
                y: "gc",
                lower: "lo",
                upper: "hi",
                color: "data",
                logX: true,
              }),
            },
            {
              name: "wd-curves",
              caption: "GC during training.",
              spec: lineChart({
                title: "GC curves",
                values: curveValues(),
                x: "step",
                y: "gc",
                color: "lr",
                errorBand: { lower: "lo", upper: "hi" },
              }),
            },
          ],
          table: {
            columns: ["wd", "GC", "note"],
            rows: [
              [0.001, 3.14159, "<b>ok</b>"],
              [0.01, 2, "fine"],
            ],
          },
        },
      ],
      footer: "Made by gcx.",
    };
    const t0 = performance.now();
    const htmlPath = await writeReport(dir, report);
    const ms = performance.now() - t0;
    assert.equal(htmlPath, join(dir, "index.html"));
    assert.ok(existsSync(htmlPath));
    const html = readFileSync(htmlPath, "utf8");
    assert.ok(html.startsWith("<!DOCTYPE html>"));
    for (const id of ["C1", "C2", "C3", "C4"]) assert.ok(html.includes(`<td>${id}</td>`), `claim row ${id}`);
    assert.ok(html.includes("Weight decay lowers GC"));
    assert.ok(html.includes('class="verdict verdict-agrees"'));
    assert.ok(html.includes('class="verdict verdict-disagrees"'));
    assert.ok(html.includes('class="verdict verdict-inconclusive"'));
    assert.ok(html.includes("ResNet-18 on CIFAR-10"));
    assert.ok(html.includes("&lt;script&gt;"));
    assert.ok(!html.includes("<script>"), "no raw <script> from the document text");
    assert.ok(html.includes("&lt;b&gt;ok&lt;/b&gt;"), "table cells escaped");
    assert.ok(html.includes("3.142"));
    assert.equal((html.match(/<svg /g) ?? []).length, 2, "two inline SVGs");
    assert.ok(html.includes("Final GC vs weight decay") && html.includes("GC curves"));
    assert.ok(html.includes('href="figures/wd-final.png"'));
    for (const name of ["wd-final", "wd-curves"]) {
      for (const ext of ["svg", "png", "vl.json"])
        assert.ok(existsSync(join(dir, "figures", `${name}.${ext}`)), `${name}.${ext}`);
      assert.ok(pngSize(new Uint8Array(readFileSync(join(dir, "figures", `${name}.png`)))).width > 0);
    }
    console.log(`writeReport with 2 figures: ${ms.toFixed(0)} ms`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("reportHtml rejects duplicate or unsafe figure names", () => {
  const spec = lineChart({ title: "t", values: [], x: "x", y: "y" });
  const doc = (names: string[]): ReportDocument => ({
    title: "t",
    intro: "",
    generatedAt: "now",
    claims: [],
    sections: [{ id: "s", title: "S", description: "", figures: names.map((name) => ({ name, caption: "c", spec })) }],
  });
  assert.throws(() => reportHtml(doc(["a", "a"])), /duplicate/);
  assert.throws(() => reportHtml(doc(["../evil"])), /figure name/);
  assert.ok(reportHtml(doc(["a"])).includes('src="figures/a.svg"'));
});
