/**
 * Built-in graph architectures: the residual networks of the paper's testbed, with torchvision's module names
 * (so a PyTorch state_dict of the same network maps onto ours by name).
 *
 * - `resnet:18`: the CIFAR variant of ResNet-18 (3×3 stem, no max-pool, 4 stages of 2 basic blocks, widths
 *   64-128-256-512).
 * - `resnet:8`, `resnet:20`: He et al.'s CIFAR nets, 3 stages of (depth − 2) / 6 basic blocks, widths 16-32-64.
 * A suffix `:wN` sets the first stage's width N and scales the others (`resnet:18:w16` = 16-32-64-128). Shortcuts
 * that change shape are 1×1 convolutions with BatchNorm (torchvision's `downsample`, He's option B).
 */
import type { GraphNodeSpec, GraphSpec } from "./graphSpec.js";

export const RESNET_DEPTHS = [8, 18, 20] as const;
export type ResnetDepth = (typeof RESNET_DEPTHS)[number];

const conv3 = (name: string, input: string, out: number, stride: number): GraphNodeSpec => ({
  name,
  op: "conv2d",
  inputs: [input],
  out,
  kernel: [3, 3],
  stride: [stride, stride],
  padding: [1, 1, 1, 1],
  dilation: [1, 1],
  groups: 1,
  bias: false,
});
const bn = (name: string, input: string): GraphNodeSpec => ({
  name,
  op: "batchnorm",
  inputs: [input],
  eps: 1e-5,
  momentum: 0.1,
});
const relu = (name: string, input: string): GraphNodeSpec => ({ name, op: "relu", inputs: [input] });

/** A basic block: conv3x3-BN-ReLU-conv3x3-BN plus the shortcut, then ReLU. Returns the name of its output. */
function basicBlock(
  nodes: GraphNodeSpec[],
  prefix: string,
  input: string,
  inChannels: number,
  out: number,
  stride: number,
): string {
  nodes.push(
    conv3(`${prefix}.conv1`, input, out, stride),
    bn(`${prefix}.bn1`, `${prefix}.conv1`),
    relu(`${prefix}.relu1`, `${prefix}.bn1`),
  );
  nodes.push(conv3(`${prefix}.conv2`, `${prefix}.relu1`, out, 1), bn(`${prefix}.bn2`, `${prefix}.conv2`));
  let shortcut = input;
  if (stride !== 1 || inChannels !== out) {
    nodes.push({
      name: `${prefix}.downsample.0`,
      op: "conv2d",
      inputs: [input],
      out,
      kernel: [1, 1],
      stride: [stride, stride],
      padding: [0, 0, 0, 0],
      dilation: [1, 1],
      groups: 1,
      bias: false,
    });
    nodes.push(bn(`${prefix}.downsample.1`, `${prefix}.downsample.0`));
    shortcut = `${prefix}.downsample.1`;
  }
  nodes.push(
    { name: `${prefix}.add`, op: "add", inputs: [`${prefix}.bn2`, shortcut] },
    relu(`${prefix}.relu2`, `${prefix}.add`),
  );
  return `${prefix}.relu2`;
}

/** The residual network `resnet:<depth>[:w<width>]` for images [C, H, W] and `classes` outputs. */
export function resnetSpec(
  depth: ResnetDepth,
  input: [number, number, number],
  classes: number,
  width?: number,
): GraphSpec {
  const cifar18 = depth === 18;
  const w = width ?? (cifar18 ? 64 : 16);
  const stages = cifar18 ? [w, 2 * w, 4 * w, 8 * w] : [w, 2 * w, 4 * w];
  const blocks = cifar18 ? 2 : (depth - 2) / 6;
  const nodes: GraphNodeSpec[] = [conv3("conv1", "input", w, 1), bn("bn1", "conv1"), relu("relu", "bn1")];
  let last = "relu",
    channels = w;
  stages.forEach((out, s) => {
    for (let b = 0; b < blocks; b++) {
      last = basicBlock(nodes, `layer${s + 1}.${b}`, last, channels, out, b === 0 && s > 0 ? 2 : 1);
      channels = out;
    }
  });
  nodes.push(
    { name: "avgpool", op: "global_avgpool", inputs: [last] },
    { name: "flatten", op: "flatten", inputs: ["avgpool"] },
  );
  nodes.push({ name: "fc", op: "linear", inputs: ["flatten"], out: classes, bias: true });
  return { kind: "graph", input, nodes, output: "fc" };
}

/** Parses `resnet:<depth>[:w<width>]`; null when `text` is not a resnet spec, a message when it is a bad one. */
export function parseResnetArg(text: string): { depth: ResnetDepth; width?: number } | string | null {
  const m = /^resnet:(\d+)(?::w(\d+))?$/.exec(text);
  if (!m)
    return text.startsWith("resnet")
      ? `"${text}" is not a resnet spec (resnet:8, resnet:18 or resnet:20, optionally :wN for the first stage's width)`
      : null;
  const depth = Number(m[1]);
  if (!(RESNET_DEPTHS as readonly number[]).includes(depth))
    return `resnet:${m[1]}: depth must be one of ${RESNET_DEPTHS.join(", ")}`;
  const width = m[2] === undefined ? undefined : Number(m[2]);
  if (width !== undefined && !(width >= 1 && width <= 4096))
    return `resnet:${m[1]}:w${m[2]}: width must be between 1 and 4096`;
  return { depth: depth as ResnetDepth, width };
}
