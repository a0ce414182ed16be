/**
 * Vega-Lite spec builders for the reproduction report.
 *
 * Every builder returns a plain JSON object (a Vega-Lite v6 top-level spec with its data inline in
 * `data.values`), so a spec can be saved next to the figure, rendered by `render.ts`, or pasted into the Vega
 * editor. Styling is shared: 360×240 plots, a title, axis titles and a legend when a `color` field is given.
 */

export type FieldType = "quantitative" | "ordinal" | "nominal" | "temporal";

/** A Vega-Lite top-level spec as a plain object. */
export type VegaLiteSpec = Record<string, unknown>;

export const CHART_WIDTH = 360;
export const CHART_HEIGHT = 240;
const SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json";

/** Shared look: vega's default sans-serif font (mapped to DejaVu Sans by the PNG renderer), white background. */
export const CHART_CONFIG: Record<string, unknown> = {
  background: "white",
  font: "sans-serif",
  title: { fontSize: 14, anchor: "start", offset: 10 },
  axis: { labelFontSize: 11, titleFontSize: 12, grid: true, gridColor: "#e6e6e6" },
  legend: { labelFontSize: 11, titleFontSize: 12, orient: "right" },
  view: { stroke: "#cccccc" },
  range: { category: { scheme: "tableau10" } },
};

export interface LineChartOptions {
  title: string;
  values: Record<string, unknown>[];
  /** Field names in `values`. */
  x: string;
  y: string;
  /** One line (and legend entry) per value of this field. */
  color?: string;
  xTitle?: string;
  yTitle?: string;
  colorTitle?: string;
  logX?: boolean;
  logY?: boolean;
  /** Shade the area between these two fields (e.g. a confidence interval over seeds). */
  errorBand?: { lower: string; upper: string };
  /** Draw a point at each datum as well as the line. */
  points?: boolean;
  /** Type of the x field ("quantitative" unless told). */
  xType?: FieldType;
  /** Type of the color field ("nominal" unless told). */
  colorType?: FieldType;
  width?: number;
  height?: number;
}

export interface ErrorBarChartOptions {
  title: string;
  values: Record<string, unknown>[];
  /** Knob field. */
  x: string;
  /** Mean field (drawn as a point). */
  y: string;
  /** Lower and upper ends of the error bar (e.g. a 95% CI over seeds). */
  lower: string;
  upper: string;
  color?: string;
  logX?: boolean;
  logY?: boolean;
  xTitle?: string;
  yTitle?: string;
  colorTitle?: string;
  /** Join the means of each color group with a line. */
  connect?: boolean;
  xType?: FieldType;
  colorType?: FieldType;
  width?: number;
  height?: number;
}

/** A Vega-Lite field reference that is safe for field names containing dots or brackets. */
function fieldRef(name: string): string {
  return name.replace(/([.[\]\\])/g, "\\$1");
}

/** A Vega expression reading `datum[name]`. */
function datumExpr(name: string): string {
  return `datum[${JSON.stringify(name)}]`;
}

/** Keep only rows that a log scale can draw: a finite, positive value in each of `fields`. */
function positiveFilter(fields: string[]): Record<string, unknown>[] {
  if (fields.length === 0) return [];
  const test = fields.map((f) => `isFinite(${datumExpr(f)}) && ${datumExpr(f)} > 0`).join(" && ");
  return [{ filter: test }];
}

/**
 * Tick values for a log axis over the positive finite values of `fields`: the powers of ten when the data span
 * at least one decade (Vega's default log ticks then include every 2…9 multiple, too dense for a small plot),
 * else undefined (Vega's default).
 */
function logTicks(values: Record<string, unknown>[], fields: string[], inner: boolean): number[] | undefined {
  let lo = Infinity;
  let hi = -Infinity;
  for (const row of values) {
    for (const f of fields) {
      const v = row[f];
      if (typeof v === "number" && Number.isFinite(v) && v > 0) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    }
  }
  if (!(lo < hi)) return undefined;
  // A "nice" log domain is widened to whole decades; an un-niced one (`inner`) only shows powers inside the data.
  const a = inner ? Math.ceil(Math.log10(lo) - 1e-9) : Math.floor(Math.log10(lo) + 1e-9);
  const b = inner ? Math.floor(Math.log10(hi) + 1e-9) : Math.ceil(Math.log10(hi) - 1e-9);
  if (Math.log10(hi / lo) < 1 || b - a < 1 || b - a > 40) return undefined;
  const ticks: number[] = [];
  for (let e = a; e <= b; e++) ticks.push(Number(`1e${e}`));
  return ticks;
}

function axisChannel(
  field: string,
  type: FieldType,
  title: string | undefined,
  log: { values: Record<string, unknown>[]; fields: string[] } | undefined,
  padding = 0,
): Record<string, unknown> {
  const enc: Record<string, unknown> = { field: fieldRef(field), type, title: title ?? field };
  if (type === "quantitative") {
    const scale: Record<string, unknown> = log ? { type: "log" } : { zero: false };
    if (padding > 0) Object.assign(scale, { padding, nice: false });
    enc.scale = scale;
    if (log) {
      const ticks = logTicks(log.values, log.fields, padding > 0);
      enc.axis = ticks ? { format: "~g", values: ticks } : { format: "~g" };
    }
  }
  return enc;
}

/**
 * The groups of a color field, in a fixed order (numeric order when all are numbers, else first appearance), so
 * that every layer maps a group to the same color and the legend lists groups in a predictable order.
 */
function colorDomain(values: Record<string, unknown>[], field: string): unknown[] {
  const seen = new Set<unknown>();
  for (const row of values) {
    const v = row[field];
    if (v !== undefined && v !== null) seen.add(v);
  }
  const domain = [...seen];
  if (domain.every((v) => typeof v === "number")) domain.sort((a, b) => a - b);
  return domain;
}

/**
 * The `color` encoding for `field`. Every layer gets the same channel and the same legend definition (Vega-Lite
 * merges them into one legend); `symbol` fixes the legend's symbol, which would otherwise follow the first layer
 * (e.g. a faint error band).
 */
function colorChannel(
  field: string,
  type: FieldType,
  title: string | undefined,
  values: Record<string, unknown>[],
  symbol: "circle" | "stroke",
): Record<string, unknown> {
  const enc: Record<string, unknown> = { field: fieldRef(field), type, title: title ?? field };
  if (type === "nominal" || type === "ordinal") enc.scale = { domain: colorDomain(values, field) };
  enc.legend =
    symbol === "circle"
      ? { title: title ?? field, symbolType: "circle", symbolOpacity: 1, symbolFillOpacity: 1, symbolStrokeWidth: 0 }
      : { title: title ?? field, symbolType: "stroke", symbolOpacity: 1, symbolStrokeWidth: 2.5 };
  return enc;
}

function topLevel(title: string, values: Record<string, unknown>[], width: number, height: number): VegaLiteSpec {
  return {
    $schema: SCHEMA,
    title,
    width,
    height,
    data: { values },
    config: CHART_CONFIG,
  };
}

/**
 * Lines of `y` against `x`, one per value of `color`, with an optional shaded band between `errorBand.lower` and
 * `errorBand.upper`, optional points and log scales (rows a log axis cannot show are dropped).
 */
export function lineChart(opts: LineChartOptions): VegaLiteSpec {
  const xType = opts.xType ?? "quantitative";
  const logX = xType === "quantitative" && opts.logX === true;
  const yFields = opts.errorBand ? [opts.y, opts.errorBand.lower, opts.errorBand.upper] : [opts.y];
  const x = axisChannel(opts.x, xType, opts.xTitle, logX ? { values: opts.values, fields: [opts.x] } : undefined);
  const yLog = opts.logY ? { values: opts.values, fields: yFields } : undefined;
  const y = axisChannel(opts.y, "quantitative", opts.yTitle, yLog);
  const color = opts.color
    ? colorChannel(
        opts.color,
        opts.colorType ?? "nominal",
        opts.colorTitle,
        opts.values,
        opts.points ? "circle" : "stroke",
      )
    : undefined;
  const xFilter = logX ? [opts.x] : [];

  const layers: Record<string, unknown>[] = [];
  if (opts.errorBand) {
    const { lower, upper } = opts.errorBand;
    const bandEnc: Record<string, unknown> = {
      x,
      y: axisChannel(lower, "quantitative", opts.yTitle ?? opts.y, yLog),
      y2: { field: fieldRef(upper) },
    };
    if (color) bandEnc.color = color;
    layers.push({
      transform: positiveFilter([...xFilter, ...(opts.logY ? [lower, upper] : [])]),
      mark: { type: "area", opacity: 0.2, interpolate: "linear" },
      encoding: bandEnc,
    });
  }
  const lineEnc: Record<string, unknown> = { x, y };
  if (color) lineEnc.color = color;
  layers.push({
    transform: positiveFilter([...xFilter, ...(opts.logY ? [opts.y] : [])]),
    mark: { type: "line", strokeWidth: 2, point: opts.points ? { filled: true, size: 30 } : false },
    encoding: lineEnc,
  });

  return {
    ...topLevel(opts.title, opts.values, opts.width ?? CHART_WIDTH, opts.height ?? CHART_HEIGHT),
    layer: layers,
  };
}

/**
 * Means of `y` (points) against a knob `x`, with error bars from `lower` to `upper` (e.g. final GC or accuracy
 * against a hyper-parameter, with a CI over seeds); optionally one color per group and lines joining the means.
 */
export function errorBarChart(opts: ErrorBarChartOptions): VegaLiteSpec {
  const xType = opts.xType ?? "quantitative";
  const logX = xType === "quantitative" && opts.logX === true;
  const x = axisChannel(opts.x, xType, opts.xTitle, logX ? { values: opts.values, fields: [opts.x] } : undefined, 12);
  const yLog = opts.logY ? { values: opts.values, fields: [opts.y, opts.lower, opts.upper] } : undefined;
  const yTitle = opts.yTitle ?? opts.y;
  const color = opts.color
    ? colorChannel(opts.color, opts.colorType ?? "nominal", opts.colorTitle, opts.values, "circle")
    : undefined;
  const xFilter = logX ? [opts.x] : [];
  const yFilter = opts.logY ? [opts.y, opts.lower, opts.upper] : [];
  const transform = positiveFilter([...xFilter, ...yFilter]);

  const layers: Record<string, unknown>[] = [];
  const barEnc: Record<string, unknown> = {
    x,
    y: axisChannel(opts.lower, "quantitative", yTitle, yLog),
    y2: { field: fieldRef(opts.upper) },
  };
  if (color) barEnc.color = color;
  layers.push({ transform, mark: { type: "rule", strokeWidth: 1.5 }, encoding: barEnc });
  for (const end of [opts.lower, opts.upper]) {
    const tickEnc: Record<string, unknown> = { x, y: { field: fieldRef(end), type: "quantitative" } };
    if (color) tickEnc.color = color;
    layers.push({
      transform,
      mark: { type: "tick", orient: "horizontal", size: 8, thickness: 1.5 },
      encoding: tickEnc,
    });
  }
  if (opts.connect) {
    const lineEnc: Record<string, unknown> = { x, y: axisChannel(opts.y, "quantitative", yTitle, yLog) };
    if (color) lineEnc.color = color;
    layers.push({ transform, mark: { type: "line", strokeWidth: 1, opacity: 0.6 }, encoding: lineEnc });
  }
  const pointEnc: Record<string, unknown> = { x, y: axisChannel(opts.y, "quantitative", yTitle, yLog) };
  if (color) pointEnc.color = color;
  layers.push({ transform, mark: { type: "point", filled: true, size: 50, opacity: 1 }, encoding: pointEnc });

  return {
    ...topLevel(opts.title, opts.values, opts.width ?? CHART_WIDTH, opts.height ?? CHART_HEIGHT),
    layer: layers,
  };
}

/**
 * Place charts side by side under one title (wrapping after `columns` charts when given). Sub-charts keep their own
 * data, scales and legends; their `$schema` and `config` are lifted to the top level (Vega-Lite allows them only there).
 */
export function concatCharts(title: string, specs: VegaLiteSpec[], columns?: number): VegaLiteSpec {
  const hconcat = specs.map((s) => {
    const { $schema: _schema, config: _config, ...rest } = s;
    return rest;
  });
  return {
    $schema: SCHEMA,
    title: { text: title, anchor: "middle", fontSize: 15 },
    ...(columns ? { concat: hconcat, columns } : { hconcat }),
    spacing: 30,
    resolve: {
      scale: { color: "independent", x: "independent", y: "independent" },
      legend: { color: "independent" },
    },
    config: CHART_CONFIG,
  };
}
