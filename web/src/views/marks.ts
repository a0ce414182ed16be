/** Drawing primitives the input-space views share: heatmap images, data points, axes of a 1-D plot. */
import type { Dataset } from "../../../src/data/dataset.js";
import { CLASS_COLORS, type RGB } from "./colors.js";
import { formatNumber, niceTicks, scale } from "./canvas.js";
import type { Domain } from "./plane.js";

/** Draws an n×n grid of colours stretched (smoothly) over the box [x, y, w, h]. */
export function drawHeatmap(
  ctx: CanvasRenderingContext2D,
  n: number,
  color: (i: number) => RGB,
  box: [number, number, number, number],
): void {
  const img = new ImageData(n, n);
  for (let i = 0; i < n * n; i++) {
    const [r, g, b] = color(i);
    img.data[4 * i] = r;
    img.data[4 * i + 1] = g;
    img.data[4 * i + 2] = b;
    img.data[4 * i + 3] = 255;
  }
  const off = document.createElement("canvas");
  off.width = n;
  off.height = n;
  off.getContext("2d")!.putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(off, box[0], box[1], box[2], box[3]);
}

/** Training points filled, test points as rings, coloured by class. */
export function drawPoints2D(
  ctx: CanvasRenderingContext2D,
  dom: Domain,
  size: number,
  train: Dataset,
  test: Dataset,
): void {
  const sx = scale(dom.x0, dom.x1, 0, size),
    sy = scale(dom.y0, dom.y1, size, 0);
  const draw = (ds: Dataset, filled: boolean) => {
    for (let i = 0; i < ds.n; i++) {
      const color = CLASS_COLORS[ds.labels![i] % CLASS_COLORS.length];
      ctx.beginPath();
      ctx.arc(sx(ds.x[2 * i]), sy(ds.x[2 * i + 1]), filled ? 3.2 : 2.6, 0, 2 * Math.PI);
      if (filled) {
        ctx.fillStyle = color;
        ctx.fill();
        ctx.strokeStyle = "white";
        ctx.lineWidth = 1;
        ctx.stroke();
      } else {
        ctx.strokeStyle = color;
        ctx.lineWidth = 1.3;
        ctx.stroke();
      }
    }
  };
  draw(test, false);
  draw(train, true);
}

export interface Frame {
  left: number;
  top: number;
  width: number;
  height: number;
  x: (v: number) => number;
  y: (v: number) => number;
}

/** Axes with ticks for a 1-D plot over [dom.x0, dom.x1] × [y0, y1] inside a w×h canvas; returns the mapping. */
export function drawAxes(
  ctx: CanvasRenderingContext2D,
  w: number,
  h: number,
  x0: number,
  x1: number,
  y0: number,
  y1: number,
  yLabel: string,
): Frame {
  const left = 44,
    top = 10,
    right = 10,
    bottom = 24;
  const f: Frame = {
    left,
    top,
    width: w - left - right,
    height: h - top - bottom,
    x: scale(x0, x1, left, w - right),
    y: scale(y0, y1, h - bottom, top),
  };
  ctx.fillStyle = "white";
  ctx.fillRect(0, 0, w, h);
  ctx.font = "10px system-ui, sans-serif";
  ctx.strokeStyle = "#e3e3e3";
  ctx.fillStyle = "#666";
  ctx.lineWidth = 1;
  ctx.textAlign = "center";
  for (const t of niceTicks(x0, x1, 6)) {
    ctx.beginPath();
    ctx.moveTo(f.x(t), top);
    ctx.lineTo(f.x(t), h - bottom);
    ctx.stroke();
    ctx.fillText(formatNumber(t), f.x(t), h - bottom + 13);
  }
  ctx.textAlign = "right";
  for (const t of niceTicks(y0, y1, 5)) {
    ctx.beginPath();
    ctx.moveTo(left, f.y(t));
    ctx.lineTo(w - right, f.y(t));
    ctx.stroke();
    ctx.fillText(formatNumber(t), left - 4, f.y(t) + 3);
  }
  ctx.save();
  ctx.translate(10, top + f.height / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textAlign = "center";
  ctx.fillText(yLabel, 0, 0);
  ctx.restore();
  ctx.strokeStyle = "#999";
  ctx.strokeRect(left, top, f.width, f.height);
  return f;
}

/** A polyline through (xs[i], ys[i]) clipped to the frame. */
export function drawCurve(
  ctx: CanvasRenderingContext2D,
  f: Frame,
  xs: ArrayLike<number>,
  ys: ArrayLike<number>,
  color: string,
  width = 2,
): void {
  ctx.save();
  ctx.beginPath();
  ctx.rect(f.left, f.top, f.width, f.height);
  ctx.clip();
  ctx.beginPath();
  let started = false;
  for (let i = 0; i < xs.length; i++) {
    if (!Number.isFinite(ys[i])) {
      started = false;
      continue;
    }
    const px = f.x(xs[i]),
      py = f.y(ys[i]);
    if (started) ctx.lineTo(px, py);
    else ctx.moveTo(px, py);
    started = true;
  }
  ctx.strokeStyle = color;
  ctx.lineWidth = width;
  ctx.stroke();
  ctx.restore();
}
