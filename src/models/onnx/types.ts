/**
 * A plain, engine-independent view of an ONNX model (as decoded by decode.ts): what the graph converter needs and
 * nothing protobuf-shaped. All integers that are sizes or attribute values are JS numbers; int64 tensor data is
 * kept exact in a BigInt64Array.
 */
import { oneLine } from "../../util/files.js";

/** Element types decoded here. float16 is widened to float32 data; the small integer types and bool to int32 data. */
export type OnnxDType =
  "float32" | "float64" | "float16" | "int64" | "int32" | "int16" | "int8" | "uint16" | "uint8" | "bool";

export type OnnxTensorData = Float32Array | Float64Array | BigInt64Array | Int32Array;

/** A dense tensor: `dims` (row-major; [] is a scalar) and `data` with product(dims) elements. */
export interface OnnxTensor {
  dims: number[];
  dtype: OnnxDType;
  data: OnnxTensorData;
}

/** A tensor-valued attribute (e.g. Constant's `value`). */
export type TensorValue = OnnxTensor;

export type OnnxAttribute = number | number[] | string | string[] | TensorValue;

/** A dimension of a declared graph input/output: a size, a symbolic name (dynamic_axes), or null (unknown). */
export type OnnxDim = number | string | null;

export interface OnnxValueInfo {
  name: string;
  /** The declared shape; null when the file declares no shape (rank unknown). */
  shape: OnnxDim[] | null;
  /** The element type's name ("float32", "int64", ... or the ONNX name in lower case for others, e.g. "string"). */
  elemType: string;
}

export interface OnnxNode {
  /** The node's name; nodes the file leaves unnamed are called `<opType>#<index>`. */
  name: string;
  opType: string;
  /** "" for the default ONNX domain (files may also write "ai.onnx"; normalized to ""). */
  domain: string;
  /** Tensor names; "" marks an omitted optional input. */
  inputs: string[];
  outputs: string[];
  /** Attributes of the scalar, list, string and tensor kinds; graph-valued attributes (If/Loop bodies) are left out. */
  attributes: Record<string, OnnxAttribute>;
}

export interface OnnxGraph {
  /** Model inputs: graph inputs that are not also initializers (older exports list weights as inputs too). */
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  initializers: Map<string, OnnxTensor>;
  /** In the file's order, which is topological (checked by the decoder). */
  nodes: OnnxNode[];
}

export interface OnnxModel {
  /** The path (or label) given to the decoder; error messages start with it. */
  file: string;
  irVersion: number;
  /** The opset version of the default domain ("" / "ai.onnx"). */
  opsetVersion: number;
  /** All imported opsets, by domain ("" for the default). */
  opsets: Record<string, number>;
  /** producer_name and producer_version, e.g. "pytorch 1.13.0". */
  producer: string;
  graph: OnnxGraph;
}

/** A name quoted for a one-line message: control and line-separator characters escaped, long names cut. */
export function quote(name: string): string {
  const cut = name.length > 200 ? name.slice(0, 200) + "…" : name;
  return `"${oneLine(cut)
    .replace(/[\u0085\u2028\u2029]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"))
    .replace(/"/g, '\\"')}"`;
}

/** The element count of a shape (1 for a scalar). */
export function numel(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}
