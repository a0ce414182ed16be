/** Public library API of geometric-complexity. */
export * from "./engine/tensor.js";
export * as ops from "./engine/ops.js";
export { grad, valueAndGrad } from "./engine/autograd.js";
export { noGrad } from "./engine/graph.js";
export * from "./data/index.js";
export * from "./models/spec.js";
export { compileNetwork, forward, forwardWithTangents, type Network, type Params, type Layer } from "./models/network.js";
export * from "./models/init.js";
export { saveModel, loadModel } from "./models/io.js";
export { resolveModel } from "./models/resolve.js";
export * from "./measures/gc.js";
export * from "./measures/jacobian.js";
export * from "./measures/norms.js";
export { Rng } from "./util/rng.js";
export { UserError } from "./util/errors.js";
