/**
 * Model architecture descriptions (the contents of model.json), validated with a schema. Every object is strict:
 * an unknown or misspelt key (say "activaton", or "stride" on a dense layer) is an error, never silently ignored.
 */
import { z } from "zod";
import { graphSpecSchema } from "./graphSpec.js";

/** Hidden-layer activations of MLPs and CNNs (gelu is the exact x·Φ(x), PyTorch's default `approximate="none"`). */
export const ACTIVATIONS = ["relu", "tanh", "sigmoid", "gelu", "identity"] as const;
/** One of {@link ACTIVATIONS}. */
export type Activation = (typeof ACTIVATIONS)[number];

const positiveInt = z.number().int().positive();

/** Schema of the `mlp` kind: layer sizes and one activation between dense layers. */
export const mlpSpecSchema = z.strictObject({
  kind: z.literal("mlp"),
  /** Layer widths from input to output, e.g. [784, 256, 256, 10]. */
  sizes: z.array(positiveInt).min(2),
  activation: z.enum(ACTIVATIONS).default("relu"),
});

const cnnLayerSchema = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("conv"),
    filters: positiveInt,
    kernel: positiveInt,
    stride: positiveInt.default(1),
    padding: z.enum(["same", "valid"]).default("same"),
  }),
  z.strictObject({ type: z.literal("dense"), units: positiveInt }),
  z.strictObject({ type: z.enum(ACTIVATIONS) }),
  z.strictObject({ type: z.enum(["maxpool", "avgpool"]), size: positiveInt, stride: positiveInt.optional() }),
  z.strictObject({ type: z.literal("flatten") }),
]);

/** Schema of the `cnn` kind: an NHWC input shape and a chain of conv, pool, activation, flatten and dense layers. */
export const cnnSpecSchema = z.strictObject({
  kind: z.literal("cnn"),
  /** Input image [height, width, channels]; inputs are flattened row-major in that (NHWC) order. */
  input: z.tuple([positiveInt, positiveInt, positiveInt]),
  layers: z.array(cnnLayerSchema).min(1),
});

/** Schema of every model description (`model.json`): the `mlp`, `cnn` and `graph` kinds. */
export const modelSpecSchema = z.discriminatedUnion("kind", [mlpSpecSchema, cnnSpecSchema, graphSpecSchema]);

/** A multilayer perceptron description. */
export type MlpSpec = z.infer<typeof mlpSpecSchema>;
/** A convolutional chain description. */
export type CnnSpec = z.infer<typeof cnnSpecSchema>;
/** One layer of a {@link CnnSpec}. */
export type CnnLayerSpec = z.infer<typeof cnnLayerSchema>;
/** Any model description: what `model.json` holds. */
export type ModelSpec = z.infer<typeof modelSpecSchema>;
export type { GraphSpec, GraphNodeSpec } from "./graphSpec.js";

/** Parses and validates a model description; returns the problems as one-line strings when it is invalid. */
export function parseModelSpec(value: unknown): { ok: true; spec: ModelSpec } | { ok: false; problems: string[] } {
  const r = modelSpecSchema.safeParse(value);
  if (r.success) {
    const problems = sizeProblems(r.data);
    return problems.length ? { ok: false, problems } : { ok: true, spec: r.data };
  }
  return {
    ok: false,
    problems: r.error.issues.map((i) =>
      oneLine(`${i.path.length ? i.path.map(pathPart).join(".") : "(root)"}: ${i.message}`),
    ),
  };
}

/** A path element as written in messages: plain names as they are, anything odd (newlines, dots) quoted. */
function pathPart(p: PropertyKey): string {
  return typeof p === "number" || (typeof p === "string" && /^[A-Za-z0-9_]+$/.test(p))
    ? String(p)
    : JSON.stringify(String(p));
}

/** Problems are shown on one line each: zod quotes unknown keys verbatim, newlines included. */
function oneLine(s: string): string {
  const t = s.replace(/[\r\n\u2028\u2029]/g, (c) =>
    c === "\n" ? "\\n" : c === "\r" ? "\\r" : `\\u${c.charCodeAt(0).toString(16)}`,
  );
  return t.length > 300 ? `${t.slice(0, 297)}...` : t;
}

/**
 * Sizes whose products are not exact integers (past 2^53) describe no network that could exist: reject them here
 * instead of letting rounded sizes through. This is arithmetic validity, not a memory budget.
 */
function sizeProblems(spec: ModelSpec): string[] {
  const unsafe = (...factors: number[]) => !Number.isSafeInteger(factors.reduce((a, b) => a * b, 1));
  const problems: string[] = [];
  if (spec.kind === "mlp") {
    for (let l = 0; l + 1 < spec.sizes.length; l++) {
      if (unsafe(spec.sizes[l], spec.sizes[l + 1]))
        problems.push(`sizes: layer ${l} has ${spec.sizes[l]}×${spec.sizes[l + 1]} weights, too many to count exactly`);
    }
    return problems;
  }
  if (spec.kind === "graph") return problems; // compileGraph checks each node's sizes
  const [h, w] = spec.input;
  let c = spec.input[2];
  if (unsafe(h, w, c)) problems.push(`input: ${h}×${w}×${c} values, too many to count exactly`);
  for (const [pos, l] of spec.layers.entries()) {
    if (l.type !== "conv") continue;
    if (unsafe(l.filters, l.kernel, l.kernel, c))
      problems.push(`layers.${pos}: ${l.filters}×${l.kernel}×${l.kernel}×${c} weights, too many to count exactly`);
    c = l.filters;
  }
  return problems;
}

/**
 * The small CNN of the paper-reproduction benchmarks: conv3x3-32, relu, maxpool, conv3x3-64, relu, maxpool, dense;
 * `filters` narrows it (the experiments' conv profile uses [8, 16]).
 */
export function defaultCnnSpec(
  input: [number, number, number] = [28, 28, 1],
  classes = 10,
  filters: [number, number] = [32, 64],
): CnnSpec {
  return {
    kind: "cnn",
    input,
    layers: [
      { type: "conv", filters: filters[0], kernel: 3, stride: 1, padding: "same" },
      { type: "relu" },
      { type: "maxpool", size: 2 },
      { type: "conv", filters: filters[1], kernel: 3, stride: 1, padding: "same" },
      { type: "relu" },
      { type: "maxpool", size: 2 },
      { type: "flatten" },
      { type: "dense", units: classes },
    ],
  };
}
