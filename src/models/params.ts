/** Parameter descriptions and values, shared by every kind of network. */
import type { Tensor } from "../engine/tensor.js";

/** A model's parameters by name (`layers.0.weight`, or PyTorch `state_dict` names for graph models). */
export type Params = Record<string, Tensor>;

/** What a network expects of one parameter: name, shape, fans and role. */
export interface ParamInfo {
  name: string;
  shape: number[];
  /** Fan-in and fan-out for initialization (weights only). */
  fanIn: number;
  fanOut: number;
  /**
   * weight: conv/linear weights (initialized by fan, penalized by l2/spectral); bias; scale/shift: a normalization's
   * affine parameters (start at 1 and 0); buffer: statistics that are not trained (BatchNorm running averages).
   */
  kind: "weight" | "bias" | "scale" | "shift" | "buffer";
}
