/**
 * Where the function bends: ‖∂g(x)/∂x‖_F² over input space, the quantity whose mean over the data is GC. 2-D: a
 * heatmap on a log colour scale with the data points on top; 1-D: the curve g'(x)² over a strip of the same colours.
 */
import type { Dataset } from "../../../src/data/dataset.js";
import type { GridValues } from "../runClient.js";
import { FIXED_SCALE, type ScaleName } from "../state.js";
import { viridis, viridisCss } from "./colors.js";
import { formatNumber, setupCanvas } from "./canvas.js";
import { drawAxes, drawCurve, drawHeatmap, drawPoints2D } from "./marks.js";
import { GRID_2D, type Domain } from "./plane.js";

/** log10 of the values, with a floor so zeros (flat regions) stay drawable. */
function logRange(v: ArrayLike<number>): { lo: number; hi: number; log: (x: number) => number } {
  const log = (x: number) => Math.log10(Math.max(x, 1e-8));
  let lo = Infinity,
    hi = -Infinity;
  for (let i = 0; i < v.length; i++) {
    const l = log(v[i]);
    if (Number.isFinite(l)) {
      lo = Math.min(lo, l);
      hi = Math.max(hi, l);
    }
  }
  if (!(hi > lo)) hi = lo + 1;
  // Spread at most 6 decades, so that a few dead (zero-gradient) cells do not wash out the rest.
  lo = Math.max(lo, hi - 6);
  return { lo, hi, log };
}

/** The colour range (log10) of a frame: the fixed one, or fitted to the values. */
export function colorRange(
  v: ArrayLike<number>,
  scale: ScaleName,
): { lo: number; hi: number; log: (x: number) => number } {
  if (scale === "auto") return logRange(v);
  return { lo: FIXED_SCALE[0], hi: FIXED_SCALE[1], log: (x: number) => Math.log10(Math.max(x, 1e-8)) };
}

export class GradientView {
  private legendKey = "";

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly legend: HTMLElement | null,
    private readonly size = 300,
  ) {}

  draw(dom: Domain, grid: Float32Array, values: GridValues, train: Dataset, test: Dataset, scale: ScaleName): void {
    const ctx = setupCanvas(this.canvas, this.size, this.size);
    const g = values.gradSq;
    const { lo, hi, log } = colorRange(g, scale);
    const color = (i: number) => viridis((log(g[i]) - lo) / (hi - lo));
    this.canvas.dataset.lo = String(10 ** lo);
    this.canvas.dataset.hi = String(10 ** hi);
    const key = `${lo} ${hi} ${scale}`;
    if (this.legend && key !== this.legendKey) {
      this.legendKey = key;
      this.legend.innerHTML = "";
      this.legend.dataset.lo = String(10 ** lo);
      this.legend.dataset.hi = String(10 ** hi);
      const bar = document.createElement("div");
      bar.className = "colorbar";
      bar.style.background = viridisCss();
      const lab = (t: string) => Object.assign(document.createElement("span"), { textContent: t });
      this.legend.append(
        lab(formatNumber(10 ** lo)),
        bar,
        lab(formatNumber(10 ** hi)),
        lab(` ‖∂g/∂x‖² (log, ${scale === "fixed" ? "fixed scale" : "fitted to this frame"})`),
      );
    }
    if (dom.dims === 2) {
      drawHeatmap(ctx, GRID_2D, color, [0, 0, this.size, this.size]);
      ctx.globalAlpha = 0.55;
      drawPoints2D(ctx, dom, this.size, train, test);
      ctx.globalAlpha = 1;
      return;
    }
    let max = 0;
    for (const v of g) if (Number.isFinite(v)) max = Math.max(max, v);
    const f = drawAxes(
      ctx,
      this.size,
      this.size,
      dom.x0,
      dom.x1,
      0,
      scale === "fixed" ? Math.max(4, max * 1.1) : max * 1.1 || 1,
      "g'(x)²",
    );
    const strip = 14;
    for (let i = 0; i + 1 < grid.length; i++) {
      const [r, gg, b] = color(i);
      ctx.fillStyle = `rgb(${r | 0},${gg | 0},${b | 0})`;
      ctx.fillRect(f.x(grid[i]), f.top + f.height - strip, f.x(grid[i + 1]) - f.x(grid[i]) + 0.5, strip);
    }
    // A rug of the training inputs: GC is the mean of this curve at these points.
    ctx.strokeStyle = "rgba(8,119,189,0.6)";
    ctx.lineWidth = 1;
    for (let i = 0; i < train.n; i++) {
      const px = f.x(train.x[i]);
      ctx.beginPath();
      ctx.moveTo(px, f.top + f.height - strip - 6);
      ctx.lineTo(px, f.top + f.height - strip);
      ctx.stroke();
    }
    drawCurve(ctx, f, grid, g, "#222", 2);
  }
}
