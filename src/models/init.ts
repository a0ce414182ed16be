/**
 * Seeded parameter initialization: He, Glorot and LeCun schemes, normal or uniform, times a scale multiplier.
 * std² = gain / fan: He 2/fan_in, Glorot 2/(fan_in+fan_out), LeCun 1/fan_in (T6 of the paper follows from these).
 */
import { Tensor, hostValues, sizeOf, toStorage, type DType } from "../engine/tensor.js";
import { Rng } from "../util/rng.js";
import type { Network, Params, ParamInfo } from "./network.js";

/** Initialization schemes: He (fan-in, gain 2), Glorot (fan-in + fan-out), LeCun (fan-in). */
export const INIT_SCHEMES = ["he", "glorot", "lecun"] as const;
/** One of {@link INIT_SCHEMES}. */
export type InitScheme = (typeof INIT_SCHEMES)[number];
/** Weight distributions: normal, or uniform with the same standard deviation. */
export const INIT_DISTRIBUTIONS = ["normal", "uniform"] as const;
/** One of {@link INIT_DISTRIBUTIONS}. */
export type InitDistribution = (typeof INIT_DISTRIBUTIONS)[number];

/** How {@link initParams} draws a network's parameters. */
export interface InitOptions {
  scheme: InitScheme;
  distribution: InitDistribution;
  /** Multiplies the standard deviation of every weight. */
  scale: number;
  /** Every bias starts at this constant (0 for zero biases). */
  bias: number;
  seed: number;
  dtype?: DType;
}

/** He-normal weights, zero biases, seed 0. */
export const DEFAULT_INIT: InitOptions = { scheme: "he", distribution: "normal", scale: 1, bias: 0, seed: 0 };

/** Standard deviation of a weight tensor's entries under a scheme (before `scale`). */
export function weightStd(info: ParamInfo, scheme: InitScheme): number {
  switch (scheme) {
    case "he":
      return Math.sqrt(2 / info.fanIn);
    case "glorot":
      return Math.sqrt(2 / (info.fanIn + info.fanOut));
    case "lecun":
      return Math.sqrt(1 / info.fanIn);
  }
}

/** Fresh parameters for a network, drawn reproducibly from the seed. */
export function initParams(net: Network, opts: InitOptions): Params {
  const rng = new Rng(opts.seed);
  const params: Params = {};
  for (const info of net.params) {
    const data = hostValues(opts.dtype ?? "float32", sizeOf(info.shape));
    if (info.kind === "bias") {
      data.fill(opts.bias);
    } else if (info.kind === "scale") {
      data.fill(1);
    } else if (info.kind === "shift") {
      data.fill(0);
    } else if (info.kind === "buffer") {
      data.fill(info.name.endsWith(".running_var") ? 1 : 0); // PyTorch's fresh BatchNorm: mean 0, variance 1, 0 batches
    } else {
      const std = weightStd(info, opts.scheme) * opts.scale;
      if (opts.distribution === "normal") {
        for (let i = 0; i < data.length; i++) data[i] = std * rng.normal();
      } else {
        // Uniform on [-a, a] has std a/√3.
        const a = std * Math.sqrt(3);
        for (let i = 0; i < data.length; i++) data[i] = rng.uniformIn(-a, a);
      }
    }
    params[info.name] = new Tensor(toStorage(data), info.shape); // uploaded on a device backend
  }
  return params;
}
