/**
 * A penalty the CLI does not have, written with the engine's `grad`: double backprop's input-gradient penalty
 * λ·(1/b)·Σ_x ‖∂ℓ(x)/∂x‖² (Drucker & LeCun), in a hand-written training loop. `grad(…, { createGraph: true })`
 * records the backward pass, so the penalty built from it is differentiated again with respect to the weights.
 *
 *   node dist/examples/custom-penalty.js --steps 400 --lambda 0.1
 */
import { parseArgs } from "node:util";
import {
  adam,
  applyUpdates,
  compileNetwork,
  DEFAULT_INIT,
  exactGC,
  forward,
  grad,
  initParams,
  loadDataset,
  ops,
  Rng,
  softmaxCrossEntropy,
  subset,
  tensor,
  type Network,
  type Params,
} from "geometric-complexity";

const { values } = parseArgs({
  options: {
    steps: { type: "string", default: "400" },
    lambda: { type: "string", default: "0.1" },
    batch: { type: "string", default: "32" },
  },
});
const steps = Number(values.steps),
  batchSize = Number(values.batch);
const train = loadDataset("moons", { split: "train", seed: 0 });
const test = loadDataset("moons", { split: "test", seed: 0 });
const net = compileNetwork({ kind: "mlp", sizes: [2, 32, 32, 2], activation: "relu" });

/** Data loss and penalty of one batch, and the gradient of their sum with respect to every parameter. */
function lossAndGrads(net: Network, params: Params, x: Float32Array, labels: Int32Array, lambda: number) {
  const names = Object.keys(params);
  const vars: Params = Object.fromEntries(names.map((k) => [k, params[k].variable()]));
  const input = tensor(x, [labels.length, 2]).variable(); // the input is differentiated too
  const loss = softmaxCrossEntropy(forward(net, vars, input), labels); // mean over the batch
  // ∂(mean loss)/∂x has rows ∂ℓ(x)/∂x / b; createGraph keeps it differentiable for the gradient below.
  const [dx] = grad(loss, [input], { createGraph: true });
  const b = labels.length;
  const penalty = ops.scale(ops.sumSquares(dx), lambda * b); // λ·(1/b)·Σ‖∂ℓ/∂x‖²
  const g = grad(
    ops.add(loss, penalty),
    names.map((k) => vars[k]),
  );
  return { loss: loss.item(), penalty: penalty.item(), grads: Object.fromEntries(names.map((k, i) => [k, g[i]])) };
}

function fit(lambda: number): { params: Params; lastLoss: number; lastPenalty: number } {
  let params = initParams(net, DEFAULT_INIT);
  const opt = adam(0.01);
  let state = opt.init(params);
  const rng = new Rng(1);
  let last = { loss: NaN, penalty: NaN };
  for (let step = 0; step < steps; step++) {
    const batch = subset(
      train,
      Int32Array.from({ length: batchSize }, () => rng.int(train.n)),
    );
    const r = lossAndGrads(net, params, batch.x, batch.labels!, lambda);
    const u = opt.update(r.grads, state, params);
    params = applyUpdates(params, u.updates);
    state = u.state;
    last = r;
  }
  return { params, lastLoss: last.loss, lastPenalty: last.penalty };
}

console.log("lambda  last batch loss  last penalty  exact GC (test)");
for (const lambda of [0, Number(values.lambda)]) {
  const { params, lastLoss, lastPenalty } = fit(lambda);
  console.log(
    `${lambda}  ${lastLoss.toPrecision(4)}  ${lastPenalty.toPrecision(4)}  ${exactGC(net, params, test).gc.toPrecision(5)}`,
  );
}
