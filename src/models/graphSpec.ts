/**
 * Graph model descriptions (model.json of kind "graph"): a directed acyclic graph of named nodes with PyTorch
 * semantics, so residual networks, BatchNorm/LayerNorm nets and imported ONNX models can be expressed. Node names
 * are PyTorch module paths, so parameter names equal a PyTorch state_dict's (`layer1.0.conv1.weight`,
 * `bn1.running_mean`, ...). See docs/decisions/0005-graph-models.md.
 */
import { z } from "zod";

const posInt = z.number().int().positive();
const nonNegInt = z.number().int().min(0);
const pair = z.tuple([posInt, posInt]);
const pad4 = z.tuple([nonNegInt, nonNegInt, nonNegInt, nonNegInt]);
const name = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9_.:/-]+$/, "letters, digits and _ . : / - only");
const base = { name, inputs: z.array(name).min(1) };

export const GRAPH_ACTIVATIONS = ["relu", "tanh", "sigmoid", "silu", "identity"] as const;

export const graphNodeSchema = z.discriminatedUnion("op", [
  z.strictObject({
    ...base,
    op: z.literal("conv2d"),
    out: posInt,
    kernel: pair,
    stride: pair.default([1, 1]),
    /** [top, left, bottom, right], PyTorch's zero padding. */
    padding: pad4.default([0, 0, 0, 0]),
    dilation: pair.default([1, 1]),
    groups: posInt.default(1),
    bias: z.boolean().default(true),
  }),
  z.strictObject({ ...base, op: z.literal("linear"), out: posInt, bias: z.boolean().default(true) }),
  z.strictObject({
    ...base,
    op: z.literal("batchnorm"),
    eps: z.number().positive().max(1).default(1e-5),
    momentum: z.number().min(0).max(1).default(0.1),
  }),
  z.strictObject({ ...base, op: z.literal("layernorm"), eps: z.number().positive().max(1).default(1e-5) }),
  z.strictObject({
    ...base,
    op: z.literal("maxpool2d"),
    kernel: pair,
    stride: pair.optional(),
    padding: pad4.default([0, 0, 0, 0]),
  }),
  z.strictObject({
    ...base,
    op: z.literal("avgpool2d"),
    kernel: pair,
    stride: pair.optional(),
    padding: pad4.default([0, 0, 0, 0]),
    countIncludePad: z.boolean().default(true),
  }),
  z.strictObject({ ...base, op: z.literal("global_avgpool") }),
  z.strictObject({ ...base, op: z.literal("flatten") }),
  z.strictObject({ ...base, op: z.literal("add") }),
  z.strictObject({ ...base, op: z.literal("concat") }),
  z.strictObject({ ...base, op: z.enum(GRAPH_ACTIVATIONS) }),
  z.strictObject({ ...base, op: z.literal("leaky_relu"), alpha: z.number().finite().default(0.01) }),
  z.strictObject({ ...base, op: z.literal("gelu"), approximate: z.enum(["none", "tanh"]).default("none") }),
  z.strictObject({
    ...base,
    op: z.literal("softplus"),
    beta: z.number().positive().default(1),
    threshold: z.number().positive().default(20),
  }),
  z.strictObject({ ...base, op: z.literal("dropout"), p: z.number().min(0).max(1).default(0.5) }),
]);

export const graphSpecSchema = z.strictObject({
  kind: z.literal("graph"),
  /** One example's shape in PyTorch order: [C, H, W] images or [D] vectors. */
  input: z.union([z.tuple([posInt]), z.tuple([posInt, posInt, posInt])]),
  nodes: z.array(graphNodeSchema).min(1),
  /** The node whose output is the logits. */
  output: name,
});

/** One node of a graph model: a named op with its inputs and attributes, in PyTorch semantics. */
export type GraphNodeSpec = z.infer<typeof graphNodeSchema>;
/** A graph model (`kind: "graph"`): named nodes in order, the input shape and the output node. */
export type GraphSpec = z.infer<typeof graphSpecSchema>;
export type GraphOp = GraphNodeSpec["op"];
