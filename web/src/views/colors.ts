/** Colours: one per class, and a sequential map for magnitudes (viridis, by linear interpolation of 9 stops). */
export type RGB = [number, number, number];

export const CLASS_COLORS = ["#f59322", "#0877bd", "#2ca02c", "#9467bd", "#d62728", "#8c564b"];
/** One colour per run in compare mode. */
export const RUN_COLORS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a"];
export const SERIES_COLORS = {
  train: "#0877bd",
  test: "#f59322",
  gc: "#1b9e77",
  gcTest: "#66c2a5",
  t1: "#7570b3",
  t2: "#e7298a",
};

export function hexToRgb(hex: string): RGB {
  const v = parseInt(hex.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

export const CLASS_RGB: RGB[] = CLASS_COLORS.map(hexToRgb);

const VIRIDIS: RGB[] = [
  "#440154",
  "#472d7b",
  "#3b528b",
  "#2c728e",
  "#21918c",
  "#28ae80",
  "#5ec962",
  "#addc30",
  "#fde725",
].map(hexToRgb);

/** Viridis at t in [0, 1]. */
export function viridis(t: number): RGB {
  const u = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(u));
  const f = u - i;
  const a = VIRIDIS[i],
    b = VIRIDIS[i + 1];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

/** A CSS gradient of viridis, for legends. */
export function viridisCss(): string {
  return `linear-gradient(to right, ${VIRIDIS.map((c) => `rgb(${c.join(",")})`).join(", ")})`;
}

/**
 * Background colour for class probabilities p (length k): the probability-weighted class colour, paler where the
 * model is unsure (near 1/k for every class).
 */
export function decisionColor(p: ArrayLike<number>, k: number): RGB {
  let r = 0,
    g = 0,
    b = 0,
    max = 0;
  for (let c = 0; c < k; c++) {
    const col = CLASS_RGB[c % CLASS_RGB.length];
    r += p[c] * col[0];
    g += p[c] * col[1];
    b += p[c] * col[2];
    max = Math.max(max, p[c]);
  }
  const confidence = k > 1 ? (max - 1 / k) / (1 - 1 / k) : 1;
  const t = 0.15 + 0.55 * confidence;
  return [255 + (r - 255) * t, 255 + (g - 255) * t, 255 + (b - 255) * t];
}
