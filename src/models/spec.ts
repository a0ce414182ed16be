/** Model architecture descriptions (the contents of model.json), validated with a schema. */
import { z } from "zod";

export const ACTIVATIONS = ["relu", "tanh", "identity"] as const;
export type Activation = (typeof ACTIVATIONS)[number];

const positiveInt = z.number().int().positive();

export const mlpSpecSchema = z.object({
  kind: z.literal("mlp"),
  /** Layer widths from input to output, e.g. [784, 256, 256, 10]. */
  sizes: z.array(positiveInt).min(2),
  activation: z.enum(ACTIVATIONS).default("relu"),
});

const cnnLayerSchema = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("conv"),
    filters: positiveInt,
    kernel: positiveInt,
    stride: positiveInt.default(1),
    padding: z.enum(["same", "valid"]).default("same"),
  }),
  z.object({ type: z.literal("dense"), units: positiveInt }),
  z.object({ type: z.enum(ACTIVATIONS) }),
  z.object({ type: z.enum(["maxpool", "avgpool"]), size: positiveInt, stride: positiveInt.optional() }),
  z.object({ type: z.literal("flatten") }),
]);

export const cnnSpecSchema = z.object({
  kind: z.literal("cnn"),
  /** Input image [height, width, channels]; inputs are flattened row-major in that (NHWC) order. */
  input: z.tuple([positiveInt, positiveInt, positiveInt]),
  layers: z.array(cnnLayerSchema).min(1),
});

export const modelSpecSchema = z.discriminatedUnion("kind", [mlpSpecSchema, cnnSpecSchema]);

export type MlpSpec = z.infer<typeof mlpSpecSchema>;
export type CnnSpec = z.infer<typeof cnnSpecSchema>;
export type CnnLayerSpec = z.infer<typeof cnnLayerSchema>;
export type ModelSpec = z.infer<typeof modelSpecSchema>;

/** Parses and validates a model description; returns the problems as one-line strings when it is invalid. */
export function parseModelSpec(value: unknown): { ok: true; spec: ModelSpec } | { ok: false; problems: string[] } {
  const r = modelSpecSchema.safeParse(value);
  if (r.success) return { ok: true, spec: r.data };
  return {
    ok: false,
    problems: r.error.issues.map((i) => `${i.path.length ? i.path.join(".") : "(root)"}: ${i.message}`),
  };
}

/** The small CNN of the paper-reproduction benchmarks: conv3x3-32, relu, maxpool, conv3x3-64, relu, maxpool, dense. */
export function defaultCnnSpec(input: [number, number, number] = [28, 28, 1], classes = 10): CnnSpec {
  return {
    kind: "cnn",
    input,
    layers: [
      { type: "conv", filters: 32, kernel: 3, stride: 1, padding: "same" },
      { type: "relu" },
      { type: "maxpool", size: 2 },
      { type: "conv", filters: 64, kernel: 3, stride: 1, padding: "same" },
      { type: "relu" },
      { type: "maxpool", size: 2 },
      { type: "flatten" },
      { type: "dense", units: classes },
    ],
  };
}
