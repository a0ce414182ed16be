/**
 * Public library API of geometric-complexity: everything exported here is covered by the stability statement in
 * the README (semantic versioning from 1.0; minor releases may add, only major releases remove or change). Deep
 * imports of other modules (`geometric-complexity/dist/...`) are internal and may change in any release.
 * @packageDocumentation
 */
export * from "./engine/tensor.js";
/** Differentiable tensor ops (add, matmul, conv2d, relu, softmax, …); every backward rule is differentiable again. */
export * as ops from "./engine/ops.js";
export { grad, valueAndGrad, type GradOptions } from "./engine/autograd.js";
export { noGrad } from "./engine/graph.js";
export {
  scope,
  keptScope,
  keepResident,
  unscoped,
  setBackend,
  withBackend,
  getBackend,
  availableBackends,
  engineInfo,
  type Backend,
  type EngineInfo,
  type KernelTable,
  type UnaryName,
  type BinaryName,
  type DenseLayer,
  type PoolWindow,
  type Kept,
} from "./engine/backend.js";
export type { Storage, IndexStorage, DeviceArray, DeviceIndexArray } from "./engine/storage.js";
export type { ConvWindow } from "./engine/kernelTable.js";
export type { ConvGeometry } from "./engine/kernels.js";
export * from "./data/index.js";
export type { SyntheticOptions } from "./data/synthetic.js";
export type { IdxFile } from "./data/imageDataset.js";
export * from "./models/spec.js";
export {
  compileNetwork,
  forward,
  forwardWithTangents,
  type Network,
  type Params,
  type Layer,
} from "./models/network.js";
export type { ParamInfo } from "./models/params.js";
export type { GraphRunOptions } from "./models/graph.js";
export * from "./models/init.js";
export { saveModel, loadModel, type LoadedModel } from "./models/io.js";
export { loadOnnx, isOnnxPath } from "./models/onnx/load.js";
export { resolveModel, type ResolvedModel } from "./models/resolve.js";
export * from "./measures/gc.js";
export * from "./measures/jacobian.js";
export * from "./measures/norms.js";
export { combine, mapDeferred, resolve, resolveNow, type Deferred } from "./measures/readback.js";
export {
  l2,
  spectral,
  flatness,
  gcPenalty,
  inputNoise,
  labelNoise,
  type Regularizer,
  type Batch,
  type RegState,
  type PenaltyContext,
} from "./regularizers/index.js";
export { train, trainAsync, type TrainHooks, type TrainResult, type ResumeOptions } from "./training/trainer.js";
export { parseTrainConfig, type TrainConfig, type MeasureName } from "./training/config.js";
export type { MetricsRecord } from "./training/evaluate.js";
export { readMetrics, type ReadMetricsResult } from "./training/metricsFile.js";
export { softmaxCrossEntropy, meanSquaredError, accuracy } from "./training/losses.js";
export {
  sgd,
  adam,
  addDecayedWeights,
  chain,
  applyUpdates,
  type GradientTransformation,
  type OptState,
  type Arrays,
} from "./training/optimizers.js";
export { Rng } from "./util/rng.js";
export { UserError } from "./util/errors.js";
