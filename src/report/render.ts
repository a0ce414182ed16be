/**
 * Headless figure rendering: Vega-Lite → Vega → SVG (vega's string renderer, no browser, no canvas; text widths
 * are estimated) and SVG → PNG with resvg (a native Rust renderer shipped as an npm binary).
 *
 * resvg draws text only with fonts it has loaded. We load DejaVu Sans (Debian package `fonts-dejavu-core`) or
 * Liberation Sans (`fonts-liberation`) directly from their files when present, else ask resvg to scan the system
 * font directories. With no font at all, PNGs are still written, without text.
 */
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Resvg, type ResvgRenderOptions } from "@resvg/resvg-js";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";

/** Font candidates, in order of preference: [family, regular file, bold file]. */
const FONT_CANDIDATES: [string, string, string][] = [
  [
    "DejaVu Sans",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
  ],
  [
    "Liberation Sans",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
  ],
  [
    "Liberation Sans",
    "/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationSans-Bold.ttf",
  ],
];

export interface FontSetup {
  /** The family used for generic `sans-serif` text, or null when resvg must find one by scanning system fonts. */
  family: string | null;
  /** Font files loaded explicitly. */
  files: string[];
  /** resvg's font options. */
  options: NonNullable<ResvgRenderOptions["font"]>;
}

let fontSetupCache: FontSetup | undefined;

/**
 * The fonts resvg will use: the first installed candidate above, loaded from its files (fast), else whatever
 * resvg finds by scanning the system font directories (slower; may find nothing, then text is dropped).
 */
export function fontSetup(): FontSetup {
  if (fontSetupCache) return fontSetupCache;
  for (const [family, regular, bold] of FONT_CANDIDATES) {
    if (!existsSync(regular)) continue;
    const files = existsSync(bold) ? [regular, bold] : [regular];
    fontSetupCache = {
      family,
      files,
      options: {
        loadSystemFonts: false,
        fontFiles: files,
        defaultFontFamily: family,
        sansSerifFamily: family,
      },
    };
    return fontSetupCache;
  }
  fontSetupCache = { family: null, files: [], options: { loadSystemFonts: true } };
  return fontSetupCache;
}

/** Compile a Vega-Lite spec (a Vega spec, recognised by its `marks`/`signals` and no `mark`, is used as is). */
export function toVegaSpec(spec: object): vega.Spec {
  const s = spec as Record<string, unknown>;
  const isVega =
    typeof s.$schema === "string"
      ? s.$schema.includes("/schema/vega/")
      : "marks" in s && !("mark" in s) && !("layer" in s);
  if (isVega) return spec;
  return compile(spec as TopLevelSpec).spec;
}

/** Render a Vega-Lite (or Vega) spec to standalone SVG markup, in Node, without a browser. */
export async function renderSvg(spec: object): Promise<string> {
  const runtime = vega.parse(toVegaSpec(spec));
  const view = new vega.View(runtime, { renderer: "none", logLevel: vega.Error });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/**
 * Rasterize SVG markup to PNG bytes at `scale`× its own size, on a white background. Text uses the fonts from
 * `fontSetup()`; should resvg fail with them, the PNG is rendered once more without any font (and so without text).
 */
export function svgToPng(svg: string, scale = 2): Uint8Array {
  if (!(scale > 0) || !Number.isFinite(scale))
    throw new Error(`svgToPng: scale must be a positive number, got ${scale}`);
  const base: ResvgRenderOptions = { background: "white", fitTo: { mode: "zoom", value: scale } };
  let png: Buffer;
  try {
    png = new Resvg(svg, { ...base, font: fontSetup().options }).render().asPng();
  } catch {
    png = new Resvg(svg, { ...base, font: { loadSystemFonts: false } }).render().asPng();
  }
  return new Uint8Array(png.buffer, png.byteOffset, png.byteLength);
}

/** Render `spec` and write `dir/name.svg` and `dir/name.png` (the directory is created when missing). */
export async function writeFigure(
  dir: string,
  name: string,
  spec: object,
): Promise<{ svgPath: string; pngPath: string; svg: string }> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    throw new Error(`writeFigure: figure name must be letters, digits, '.', '_' or '-', got ${JSON.stringify(name)}`);
  }
  const svg = await renderSvg(spec);
  const png = svgToPng(svg);
  await mkdir(dir, { recursive: true });
  const svgPath = join(dir, `${name}.svg`);
  const pngPath = join(dir, `${name}.png`);
  await Promise.all([writeFile(svgPath, svg, "utf8"), writeFile(pngPath, png)]);
  return { svgPath, pngPath, svg };
}
