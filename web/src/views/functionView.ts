/**
 * The learned function over input space: for 1-D regression the curve g(x) with the data points; for 2-D
 * classification a heatmap of the predicted class (colour = class, paleness = uncertainty) with the points.
 */
import type { Dataset } from "../../../src/data/dataset.js";
import type { Probe } from "../session.js";
import { decisionColor, SERIES_COLORS } from "./colors.js";
import { setupCanvas } from "./canvas.js";
import { drawAxes, drawCurve, drawHeatmap, drawPoints2D } from "./marks.js";
import { GRID_2D, type Domain } from "./plane.js";

export class FunctionView {
  constructor(private readonly canvas: HTMLCanvasElement, private readonly size = 300) {}

  draw(dom: Domain, grid: Float32Array, probe: Probe, train: Dataset, test: Dataset): void {
    const ctx = setupCanvas(this.canvas, this.size, this.size);
    if (dom.dims === 2) {
      const k = probe.k;
      drawHeatmap(ctx, GRID_2D, (i) => decisionColor(probe.outputs.subarray(i * k, i * k + k), k), [0, 0, this.size, this.size]);
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
    drawCurve(ctx, f, grid, probe.outputs, "#222", 2.5);
  }
}
