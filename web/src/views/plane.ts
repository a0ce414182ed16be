/**
 * The input space the views show: a padded box around the data (square for 2-D data), and the grid of points
 * where the model is probed for the heatmaps and curves.
 */
import type { Dataset } from "../../../src/data/dataset.js";

export interface Domain {
  dims: 1 | 2;
  x0: number;
  x1: number;
  /** 2-D: the second input's range; 1-D: the range of the targets (for the y axis). */
  y0: number;
  y1: number;
}

/** Grid resolution: points per axis for 2-D heatmaps, points along x for 1-D curves. */
export const GRID_2D = 100;
export const GRID_1D = 240;

function range(values: ArrayLike<number>, stride: number, offset: number): [number, number] {
  let lo = Infinity,
    hi = -Infinity;
  for (let i = offset; i < values.length; i += stride) {
    lo = Math.min(lo, values[i]);
    hi = Math.max(hi, values[i]);
  }
  return [lo, hi];
}

export function domainOf(train: Dataset, test: Dataset): Domain {
  const d = train.inputShape[0];
  if (d === 1) {
    const [a, b] = range([...train.x, ...test.x], 1, 0);
    const pad = 0.08 * (b - a);
    const [ta, tb] = range([...train.targets!, ...test.targets!], 1, 0);
    const tpad = 0.25 * (tb - ta || 1);
    return { dims: 1, x0: a - pad, x1: b + pad, y0: ta - tpad, y1: tb + tpad };
  }
  const all = Float32Array.from([...train.x, ...test.x]);
  const [xa, xb] = range(all, 2, 0);
  const [ya, yb] = range(all, 2, 1);
  const span = Math.max(xb - xa, yb - ya) * 1.15;
  const cx = (xa + xb) / 2,
    cy = (ya + yb) / 2;
  return { dims: 2, x0: cx - span / 2, x1: cx + span / 2, y0: cy - span / 2, y1: cy + span / 2 };
}

/**
 * The probe points, row-major. 2-D: GRID_2D² cell centres, row 0 at the top (largest second input) so the
 * outputs map straight onto image rows. 1-D: GRID_1D points from x0 to x1.
 */
export function gridPoints(dom: Domain): Float32Array {
  if (dom.dims === 1) {
    return Float32Array.from({ length: GRID_1D }, (_, i) => dom.x0 + ((dom.x1 - dom.x0) * i) / (GRID_1D - 1));
  }
  const n = GRID_2D;
  const out = new Float32Array(n * n * 2);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      out[(r * n + c) * 2] = dom.x0 + ((dom.x1 - dom.x0) * (c + 0.5)) / n;
      out[(r * n + c) * 2 + 1] = dom.y1 - ((dom.y1 - dom.y0) * (r + 0.5)) / n;
    }
  }
  return out;
}
