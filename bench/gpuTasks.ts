/**
 * The GPU benchmark's tasks (bench/gpu.ts; browser-safe, so the e2e page runs the smoke version on SwiftShader):
 * forward, SGD step, exact GC of the batch (k VJPs) and SGD step with α·GC (double backprop) for the MLP
 * 784-256-256-10 and the bench CNN, written with engine ops so that nothing is read back inside a task. A task ends
 * with one `await read()` of a scalar, which waits for all the work it queued: the timing is the GPU's, not just
 * the recording's. `smokeCompare` runs tiny shapes on webgpu and js and compares every number (rel 1e-4).
 */
import { scope, setBackend } from "../src/engine/backend.js";
import { grad } from "../src/engine/autograd.js";
import { Tensor, tensor } from "../src/engine/tensor.js";
import * as O from "../src/engine/ops.js";
import { compileNetwork, forward, type Network, type Params } from "../src/models/network.js";
import { initParams } from "../src/models/init.js";
import { defaultCnnSpec, type ModelSpec } from "../src/models/spec.js";
import { Rng } from "../src/util/rng.js";

/** A model with its parameters and one batch, as host values (uploaded by `prepare` on the active backend). */
export interface Problem {
  name: string;
  net: Network;
  host: Params;
  x: Float32Array;
  labels: Int32Array;
}

/** The benchmark's problems: full size (as bench/torch_gpu.py) or tiny (smoke). */
export function problems(smoke: boolean): Problem[] {
  const specs: [string, ModelSpec, number][] = smoke
    ? [
        ["MLP", { kind: "mlp", sizes: [12, 8, 8, 10], activation: "relu" }, 4],
        [
          "CNN",
          {
            kind: "cnn",
            input: [8, 8, 1],
            layers: [
              { type: "conv", filters: 3, kernel: 3, stride: 1, padding: "same" },
              { type: "relu" },
              { type: "maxpool", size: 2 },
              { type: "conv", filters: 4, kernel: 3, stride: 1, padding: "same" },
              { type: "relu" },
              { type: "maxpool", size: 2 },
              { type: "flatten" },
              { type: "dense", units: 10 },
            ],
          },
          3,
        ],
      ]
    : [
        ["MLP", { kind: "mlp", sizes: [784, 256, 256, 10], activation: "relu" }, 128],
        ["CNN", defaultCnnSpec(), 128],
      ];
  return specs.map(([name, spec, batch]) => {
    const net = compileNetwork(spec);
    const host = initParams(net, { scheme: "he", distribution: "normal", scale: 1, bias: 0, seed: 0 });
    const rng = new Rng(1);
    const x = Float32Array.from({ length: batch * net.inputSize }, () => rng.uniform());
    const labels = Int32Array.from({ length: batch }, () => rng.int(net.outputSize));
    return { name, net, host, x, labels };
  });
}

/** One task: queues its work on the active backend and returns the scalars it produced (read them to wait). */
export type Task = () => Tensor[];

/** The four tasks of a problem on the active backend (its tensors uploaded once, outside any scope). */
export function prepare(p: Problem, lr = 0.01, alpha = 0.01): Record<string, Task> {
  const { net } = p;
  const b = p.labels.length,
    k = net.outputSize;
  const names = Object.keys(p.host);
  const params: Params = Object.fromEntries(names.map((n) => [n, tensor(p.host[n].data, p.host[n].shape)]));
  const x = tensor(p.x, [b, net.inputSize]);
  const onehot = new Float32Array(b * k);
  p.labels.forEach((l, i) => (onehot[i * k + l] = 1));
  const target = tensor(onehot, [b, k]);
  // The k one-hot cotangents of the exact GC: column c is 1 in every row.
  const columns = Array.from({ length: k }, (_, c) => {
    const v = new Float32Array(b * k);
    for (let i = 0; i < b; i++) v[i * k + c] = 1;
    return tensor(v, [b, k]);
  });
  /** Mean softmax cross-entropy, with ops only. */
  const loss = (logits: Tensor) =>
    O.scale(O.sum(O.sub(O.logSumExpRows(logits), O.sumRows(O.mul(logits, target)))), 1 / b);
  /** (1/b) Σ_x ‖∂g(x)/∂x‖_F² by k VJPs. */
  const gcOf = (ps: Params, createGraph: boolean) => {
    const xv = x.variable();
    const y = forward(net, ps, xv);
    let total: Tensor | null = null;
    for (const col of columns) {
      const [gx] = grad(y, [xv], { cotangent: col, createGraph });
      const sq = O.sum(O.mul(gx, gx));
      total = total ? O.add(total, sq) : sq;
    }
    return O.scale(total!, 1 / b);
  };
  const step = (penalty: boolean): Tensor[] => {
    const vars: Params = Object.fromEntries(names.map((n) => [n, params[n].variable()]));
    const L = loss(forward(net, vars, x));
    const total = penalty ? O.add(L, O.scale(gcOf(vars, true), alpha)) : L;
    const g = grad(
      total,
      names.map((n) => vars[n]),
    );
    const updated = names.map((n, i) => O.add(params[n], O.scale(g[i], -lr)));
    return [L, ...updated];
  };
  return {
    forward: () => [forward(net, params, x)],
    "SGD step": () => step(false),
    "exact GC of the batch": () => [gcOf(params, false)],
    "SGD step + GC penalty": () => step(true),
  };
}

/** Runs a task in a storage scope and waits for the device (reads its first, smallest output). */
export async function runTask(task: Task): Promise<Float32Array[]> {
  const outs = scope(() => task());
  return Promise.all(outs.map(async (t) => Float32Array.from(await t.read())));
}

/** Median milliseconds of `reps` runs of a task after `warmup` runs (each waits for the device). */
export async function timeTask(task: Task, reps: number, warmup = 3): Promise<number> {
  const once = async () => {
    const outs = scope(() => task());
    await outs[0].read();
  };
  for (let i = 0; i < warmup; i++) await once();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await once();
    ts.push(performance.now() - t);
  }
  ts.sort((a, c) => a - c);
  return ts[ts.length >> 1];
}

/** One smoke comparison: a task's outputs on webgpu vs js, max |Δ| / max |js| over each output. */
export interface SmokeResult {
  task: string;
  rel: number;
  ok: boolean;
}

/** Tiny shapes on webgpu and on js (the webgpu backend must be installed): every output within rel 1e-4. */
export async function smokeCompare(): Promise<SmokeResult[]> {
  const out: SmokeResult[] = [];
  for (const p of problems(true)) {
    setBackend("js");
    const js = prepare(p);
    setBackend("webgpu");
    const gpu = prepare(p);
    for (const name of Object.keys(js)) {
      setBackend("js");
      const a = await runTask(js[name]);
      setBackend("webgpu");
      let rel = 0;
      try {
        const g = await runTask(gpu[name]);
        a.forEach((v, i) => {
          let e = 0,
            m = 0;
          v.forEach((q, j) => {
            e = Math.max(e, Math.abs(q - g[i][j]) || (Number.isNaN(g[i][j]) ? Infinity : 0));
            m = Math.max(m, Math.abs(q));
          });
          rel = Math.max(rel, e === 0 ? 0 : e / m);
        });
      } catch (e) {
        rel = Infinity;
        out.push({ task: `${p.name} ${name}: threw ${(e as Error).message.split("\n")[0]}`, rel, ok: false });
        continue;
      } finally {
        setBackend("js");
      }
      out.push({ task: `${p.name} ${name}`, rel, ok: rel <= 1e-4 });
    }
    // The penalty is really in the step: its parameters differ from the plain step's (on js).
    setBackend("js");
    const [plain, pen] = [await runTask(js["SGD step"]), await runTask(js["SGD step + GC penalty"])];
    const moved = plain.slice(1).some((v, i) => v.some((q, j) => q !== pen[i + 1][j]));
    out.push({ task: `${p.name} the GC penalty changes the step`, rel: moved ? 0 : Infinity, ok: moved });
  }
  return out;
}
