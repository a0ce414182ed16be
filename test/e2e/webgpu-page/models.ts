/**
 * Model-level checks of the WebGPU backend (browser side of test/e2e/webgpu.test.ts): for small MLPs (ReLU: the
 * closed-form differentiable Jacobian; tanh: double backprop), the exact GC of a batch and one SGD step with the
 * α·GC penalty give the same numbers on webgpu as on the js backend, to 1e-4 of each vector's largest magnitude.
 * The step is written with ops (θ − lr·∇θ(L + α·GC)), and every number comes back through `await tensor.read()`.
 */
import { setBackend } from "../../../src/engine/backend.js";
import { grad } from "../../../src/engine/autograd.js";
import { Tensor, tensor } from "../../../src/engine/tensor.js";
import * as O from "../../../src/engine/ops.js";
import { compileNetwork, forward, type Params } from "../../../src/models/network.js";
import { initParams } from "../../../src/models/init.js";
import { jacobianSqNormsReverse } from "../../../src/measures/jacobian.js";
import { gcPenalty } from "../../../src/regularizers/gcPenalty.js";
import { softmaxCrossEntropy } from "../../../src/training/losses.js";
import { Rng } from "../../../src/util/rng.js";
import type { Result } from "./page.js";

interface StepNumbers {
  gc: Float64Array;
  loss: Float64Array;
  penalty: Float64Array;
  params: Float64Array;
}

/** Exact GC of the batch and one GC-penalty SGD step on the active backend. */
async function run(
  sizes: number[],
  activation: "relu" | "tanh",
  host: Params,
  x: Float32Array,
  labels: Int32Array,
): Promise<StepNumbers> {
  const net = compileNetwork({ kind: "mlp", sizes, activation });
  const names = Object.keys(host);
  const params: Params = Object.fromEntries(names.map((k) => [k, tensor(host[k].data, host[k].shape)]));
  const b = labels.length;
  const xt = tensor(x, [b, sizes[0]]);
  const norms = jacobianSqNormsReverse(net, params, xt);
  const gc = O.scale(O.sum(norms), 1 / b);
  const vars: Params = Object.fromEntries(names.map((k) => [k, params[k].variable()]));
  const loss = softmaxCrossEntropy(forward(net, vars, xt), labels);
  const pen = gcPenalty(0.1).penalty!(
    { net, params: vars, batch: { x: xt, labels, numOutputs: sizes[sizes.length - 1] }, loss, rng: new Rng(1) },
    {},
  );
  const total = O.add(loss, pen.value);
  const g = grad(
    total,
    names.map((k) => vars[k]),
  );
  const lr = 0.05;
  const next = names.map((k, i) => O.affine(O.add(params[k], O.scale(g[i], -lr)), 1, 0));
  const read = async (t: Tensor) => Float64Array.from(await t.read());
  const flat = (await Promise.all(next.map(read))).flatMap((a) => Array.from(a));
  return {
    gc: await read(gc),
    loss: await read(loss),
    penalty: await read(pen.value),
    params: Float64Array.from(flat),
  };
}

function normRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let e = 0,
    m = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    e = Number.isNaN(d) ? Infinity : Math.max(e, d);
    m = Math.max(m, Math.abs(b[i]));
  }
  return a.length !== b.length ? Infinity : e === 0 ? 0 : e / m;
}

/** The model-level checks; the webgpu backend must be installed beforehand. */
export async function modelSuite(): Promise<Result[]> {
  const out: Result[] = [];
  for (const [sizes, act] of [
    [[6, 16, 16, 3], "relu"],
    [[5, 12, 12, 4], "tanh"],
  ] as const) {
    const name = `MLP ${sizes.join("-")} ${act}`;
    try {
      setBackend("js");
      const net = compileNetwork({ kind: "mlp", sizes: [...sizes], activation: act });
      const host = initParams(net, { scheme: "he", distribution: "normal", scale: 1, bias: 0.01, seed: 3 });
      const rng = new Rng(11);
      const b = 8;
      const x = Float32Array.from({ length: b * sizes[0] }, () => rng.normal());
      const labels = Int32Array.from({ length: b }, (_, i) => i % sizes[sizes.length - 1]);
      const js = await run([...sizes], act, host, x, labels);
      setBackend("webgpu");
      const gpu = await run([...sizes], act, host, x, labels);
      setBackend("js");
      for (const k of ["gc", "loss", "penalty", "params"] as const) {
        const r = normRel(gpu[k], js[k]);
        out.push({
          name: `${name}: ${k === "params" ? "parameters after one SGD step with α·GC" : k} webgpu = js`,
          ok: r <= 1e-4 && js[k].every(Number.isFinite),
          worst: r / 1e-4,
          detail: `rel ${r.toExponential(2)}${k === "gc" ? ` (GC ${js.gc[0].toPrecision(6)} vs ${gpu.gc[0].toPrecision(6)})` : ""}`,
        });
      }
    } catch (e) {
      setBackend("js");
      const msg = (e as Error).message.split("\n")[0];
      // Library code above the engine that still builds host arrays on a device backend: pending, not wrong numbers.
      const pending = /(not available on the webgpu backend|tensor lives on the webgpu backend)/.test(msg);
      out.push({ name, ok: false, worst: Infinity, detail: `threw: ${msg}`, pending });
    }
  }
  return out;
}
