/** ONNX import, first half: decode a file into a plain OnnxModel, fold static shape arithmetic, check support. */
export { decodeOnnx, halfToFloat } from "./decode.js";
export { BATCH, foldShapes, inferShapes } from "./shapes.js";
export type { Dim, ShapeAnalysis } from "./shapes.js";
export { checkSupported, unsupportedProblems, SUPPORTED_OPS, MIN_OPSET, MAX_OPSET } from "./support.js";
export type {
  OnnxAttribute,
  OnnxDim,
  OnnxDType,
  OnnxGraph,
  OnnxModel,
  OnnxNode,
  OnnxTensor,
  OnnxTensorData,
  OnnxValueInfo,
  TensorValue,
} from "./types.js";
