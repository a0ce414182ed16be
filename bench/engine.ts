/**
 * Engine micro-benchmarks: MLP 784-256-256-10 and the small CNN at batch 128 (forward, exact GC of the batch,
 * gradient of the GC penalty). Prints medians after warm-up. Run: npm run bench
 */
import { Tensor } from "../src/engine/tensor.js";
import { grad } from "../src/engine/autograd.js";
import * as op from "../src/engine/ops.js";
import { compileNetwork, forward, type Network, type Params } from "../src/models/network.js";
import { initParams } from "../src/models/init.js";
import { defaultCnnSpec, type ModelSpec } from "../src/models/spec.js";
import { jacobianSqNormsReverse } from "../src/measures/jacobian.js";
import { Rng } from "../src/util/rng.js";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

function time(fn: () => void, reps: number, warmup = 2): number {
  for (let i = 0; i < warmup; i++) fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    fn();
    ts.push(performance.now() - t);
  }
  return median(ts);
}

function setup(spec: ModelSpec, batch: number): { net: Network; params: Params; x: Tensor } {
  const net = compileNetwork(spec);
  const params = initParams(net, { scheme: "he", distribution: "normal", scale: 1, bias: 0, seed: 0 });
  const rng = new Rng(1);
  const x = new Tensor(Float32Array.from({ length: batch * net.inputSize }, () => rng.uniform()), [batch, net.inputSize]);
  return { net, params, x };
}

function gcPenaltyGrad(net: Network, params: Params, x: Tensor): void {
  const vars: Params = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, v.variable()]));
  const gc = op.sum(jacobianSqNormsReverse(net, vars, x, "logits", true));
  grad(gc, Object.values(vars));
}

const only = process.argv[2];
const rows: string[][] = [["task", "median ms"]];
const tasks: [string, ModelSpec, number, number][] = [
  ["mlp", { kind: "mlp", sizes: [784, 256, 256, 10], activation: "relu" }, 128, 9],
  ["cnn", defaultCnnSpec(), 128, 3],
  ["mlp2d", { kind: "mlp", sizes: [2, 64, 64, 2], activation: "relu" }, 256, 9],
];
for (const [name, spec, batch, reps] of tasks) {
  if (only && only !== name) continue;
  const { net, params, x } = setup(spec, batch);
  rows.push([`${name} forward (batch ${batch})`, time(() => forward(net, params, x), reps).toFixed(2)]);
  rows.push([`${name} exact GC of the batch`, time(() => jacobianSqNormsReverse(net, params, x), reps).toFixed(2)]);
  rows.push([`${name} gradient of GC penalty`, time(() => gcPenaltyGrad(net, params, x), Math.max(1, reps >> 1), 1).toFixed(2)]);
}
for (const r of rows) console.log(r[0].padEnd(40), r[1].padStart(10));
