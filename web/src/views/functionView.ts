/**
 * The learned function over input space: for 1-D regression the curve g(x) with the data points; for 2-D
 * classification a heatmap of the predicted class (colour = class, paleness = uncertainty) with the points.
 */
import type { Dataset } from "../../../src/data/dataset.js";
import type { GridValues } from "../runClient.js";
import { decisionColor, SERIES_COLORS } from "./colors.js";
import { setupCanvas } from "./canvas.js";
import { drawAxes, drawCurve, drawHeatmap, drawPoints2D } from "./marks.js";
import { GRID_2D, type Domain } from "./plane.js";

/**
 * The minimal-GC interpolant of 1-D data: among functions through the training points (x_i, y_i), the one of least
 * Dirichlet energy ∫ g'(x)² dx is piecewise linear between them (harmonic = linear in 1-D). Returns its knots
 * (sorted by x, duplicates averaged) and its energy Σ (Δy)²/Δx.
 */
export function minimalInterpolant(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
): { xs: number[]; ys: number[]; energy: number } {
  const order = Array.from({ length: x.length }, (_, i) => i).sort((a, b) => x[a] - x[b]);
  const xs: number[] = [],
    ys: number[] = [],
    counts: number[] = [];
  for (const i of order) {
    const last = xs.length - 1;
    if (last >= 0 && x[i] === xs[last]) {
      ys[last] = (ys[last] * counts[last] + y[i]) / (counts[last] + 1);
      counts[last]++;
    } else {
      xs.push(x[i]);
      ys.push(y[i]);
      counts.push(1);
    }
  }
  let energy = 0;
  for (let i = 1; i < xs.length; i++) energy += (ys[i] - ys[i - 1]) ** 2 / (xs[i] - xs[i - 1]);
  return { xs, ys, energy };
}

/** ∫ g'(x)² dx over [a, b] by the trapezoid rule on the probe grid (gradSq = g'(x)² at the grid points). */
export function dirichletEnergy(grid: ArrayLike<number>, gradSq: ArrayLike<number>, a: number, b: number): number {
  let e = 0;
  for (let i = 0; i + 1 < grid.length; i++) {
    const x0 = Math.max(a, grid[i]),
      x1 = Math.min(b, grid[i + 1]);
    if (x1 > x0) e += ((gradSq[i] + gradSq[i + 1]) / 2) * (x1 - x0);
  }
  return e;
}

export class FunctionView {
  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly size = 300,
    private readonly legend: HTMLElement | null = null,
  ) {}

  draw(dom: Domain, grid: Float32Array, probe: GridValues, train: Dataset, test: Dataset): void {
    const ctx = setupCanvas(this.canvas, this.size, this.size);
    if (dom.dims === 2) {
      const k = probe.k;
      drawHeatmap(ctx, GRID_2D, (i) => decisionColor(probe.outputs.subarray(i * k, i * k + k), k), [
        0,
        0,
        this.size,
        this.size,
      ]);
      drawPoints2D(ctx, dom, this.size, train, test);
      return;
    }
    const f = drawAxes(ctx, this.size, this.size, dom.x0, dom.x1, dom.y0, dom.y1, "g(x)");
    const dot = (ds: Dataset, color: string, filled: boolean) => {
      for (let i = 0; i < ds.n; i++) {
        ctx.beginPath();
        ctx.arc(f.x(ds.x[i]), f.y(ds.targets![i]), 2.3, 0, 2 * Math.PI);
        if (filled) {
          ctx.fillStyle = color;
          ctx.fill();
        } else {
          ctx.strokeStyle = color;
          ctx.lineWidth = 1;
          ctx.stroke();
        }
      }
    };
    dot(test, SERIES_COLORS.test, false);
    dot(train, SERIES_COLORS.train, true);
    // The minimal-GC interpolant of the training points, beside the network's curve.
    const interp = minimalInterpolant(train.x, train.targets!);
    ctx.setLineDash([6, 4]);
    drawCurve(ctx, f, interp.xs, interp.ys, "#d95f02", 1.6);
    ctx.setLineDash([]);
    drawCurve(ctx, f, grid, probe.outputs, "#222", 2.5);
    if (this.legend) {
      const a = interp.xs[0],
        b = interp.xs[interp.xs.length - 1];
      const net = dirichletEnergy(grid, probe.gradSq, a, b);
      this.legend.innerHTML = "";
      const span = (text: string, id: string, v: number) => {
        const el = document.createElement("span");
        el.textContent = text;
        el.dataset.testid = id;
        el.dataset.value = String(v);
        return el;
      };
      this.legend.append(
        span(`━ network g: ∫g'² dx = ${net.toPrecision(3)}`, "energy-net", net),
        span(
          `╍ minimal-GC interpolant (piecewise linear): ${interp.energy.toPrecision(3)}`,
          "energy-interp",
          interp.energy,
        ),
      );
    }
  }
}
