/** A small line chart on a canvas: several series against the training step, on a linear or log10 y axis. */
import { formatNumber, niceTicks, scale, setupCanvas } from "./canvas.js";

export interface Series {
  label: string;
  color: string;
  x: number[];
  y: (number | null)[];
  dashed?: boolean;
}

export class LineChart {
  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly opts: { width: number; height: number; log?: boolean; yLabel: string; xLabel?: string },
  ) {}

  /** Draws the series; `yLabel` replaces the configured title for this drawing. */
  draw(series: Series[], yLabel = this.opts.yLabel): void {
    const { width: w, height: h, log } = this.opts;
    const ctx = setupCanvas(this.canvas, w, h);
    const left = 48,
      right = 8,
      top = 22,
      bottom = 22;
    ctx.fillStyle = "white";
    ctx.fillRect(0, 0, w, h);
    const tf = (v: number | null) =>
      v === null || !Number.isFinite(v) || (log && v <= 0) ? null : log ? Math.log10(v) : v;
    let x0 = Infinity,
      x1 = -Infinity,
      y0 = Infinity,
      y1 = -Infinity;
    for (const s of series) {
      s.y.forEach((v, i) => {
        const t = tf(v);
        if (t === null) return;
        x0 = Math.min(x0, s.x[i]);
        x1 = Math.max(x1, s.x[i]);
        y0 = Math.min(y0, t);
        y1 = Math.max(y1, t);
      });
    }
    if (!Number.isFinite(x0)) {
      x0 = 0;
      x1 = 1;
      y0 = 0;
      y1 = 1;
    }
    if (x1 === x0) x1 = x0 + 1;
    if (y1 === y0) {
      y0 -= log ? 0.5 : Math.abs(y0) * 0.1 || 0.5;
      y1 += log ? 0.5 : Math.abs(y1) * 0.1 || 0.5;
    }
    if (!log && y0 > 0 && y0 < 0.3 * y1) y0 = 0;
    const pad = (y1 - y0) * 0.05;
    y0 -= pad;
    y1 += pad;
    const sx = scale(x0, x1, left, w - right),
      sy = scale(y0, y1, h - bottom, top);
    ctx.font = "10px system-ui, sans-serif";
    ctx.lineWidth = 1;
    ctx.strokeStyle = "#ececec";
    ctx.fillStyle = "#666";
    ctx.textAlign = "right";
    const yTicks = log ? niceTicks(Math.ceil(y0), Math.floor(y1), 5).filter(Number.isInteger) : niceTicks(y0, y1, 4);
    for (const t of yTicks.length ? yTicks : [y0]) {
      ctx.beginPath();
      ctx.moveTo(left, sy(t));
      ctx.lineTo(w - right, sy(t));
      ctx.stroke();
      ctx.fillText(log ? formatNumber(10 ** t) : formatNumber(t), left - 4, sy(t) + 3);
    }
    ctx.textAlign = "center";
    for (const t of niceTicks(x0, x1, 5)) {
      if (!Number.isInteger(t)) continue;
      // Keep every label inside the canvas (the last one used to be cut at the right edge).
      const half = ctx.measureText(String(t)).width / 2;
      ctx.fillText(String(t), Math.min(w - 1 - half, Math.max(half + 1, sx(t))), h - bottom + 13);
    }
    ctx.strokeStyle = "#999";
    ctx.strokeRect(left, top, w - left - right, h - top - bottom);
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, w - left - right, h - top - bottom);
    ctx.clip();
    for (const s of series) {
      ctx.beginPath();
      let started = false;
      s.y.forEach((v, i) => {
        const t = tf(v);
        if (t === null) {
          started = false;
          return;
        }
        if (started) ctx.lineTo(sx(s.x[i]), sy(t));
        else ctx.moveTo(sx(s.x[i]), sy(t));
        started = true;
      });
      ctx.setLineDash(s.dashed ? [5, 3] : []);
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 1.8;
      ctx.stroke();
    }
    ctx.restore();
    ctx.setLineDash([]);
    if (log) {
      // A series at 0 has no place on a log axis: say so instead of letting its line vanish.
      const zero = series.filter((s) => s.y.length && s.y[s.y.length - 1] === 0).map((s) => s.label);
      if (zero.length) {
        ctx.fillStyle = "#b00";
        ctx.textAlign = "right";
        ctx.fillText(`${zero.join(", ")} = 0 (off the log scale)`, w - right - 4, h - bottom - 5);
      }
    }
    if (this.opts.xLabel) {
      ctx.fillStyle = "#666";
      ctx.textAlign = "left";
      ctx.fillText(this.opts.xLabel, 4, h - 3);
    }
    // Legend along the top.
    ctx.textAlign = "left";
    let lx = left;
    ctx.fillStyle = "#333";
    ctx.fillText(yLabel + (log ? " (log)" : ""), 4, 12);
    lx = Math.max(lx, 4 + ctx.measureText(yLabel + (log ? " (log)" : "")).width + 12);
    for (const s of series) {
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 2;
      ctx.setLineDash(s.dashed ? [5, 3] : []);
      ctx.beginPath();
      ctx.moveTo(lx, 9);
      ctx.lineTo(lx + 14, 9);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = "#333";
      ctx.fillText(s.label, lx + 17, 12);
      lx += 17 + ctx.measureText(s.label).width + 10;
    }
  }
}
