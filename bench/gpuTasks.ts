/**
 * The GPU benchmark's tasks (bench/gpu.ts; browser-safe, so a Chromium page runs the smoke version on SwiftShader):
 * forward, SGD step, exact GC of the batch (k VJPs), SGD step with α·GC (double backprop), SGD step with
 * α·‖∇_θL‖² (flatness, double backprop) and exact GC over 10k inputs (in chunks of the batch size) for the MLP
 * 784-256-256-10, the bench CNN and ResNet-18 (CIFAR variant, `resnet:18` of src/models/zoo.ts, 32×32×3), written
 * with engine ops so that nothing is read back inside a task. The 10k inputs are synthetic: uniform [0, 1) from a
 * seed, in the model's input shape (CIFAR-shaped for the ResNet), uploaded once. Graph models (the ResNet) run
 * forward and exact GC in inference mode (BatchNorm's running statistics) and the steps in training mode (batch
 * statistics), as `gcx measure` and `gcx train` do; the GC penalty detaches the batch statistics as gcx train does
 * (docs/decisions/0005-graph-models.md). A task ends with one `await read()` of a scalar, which waits for all the
 * work it queued: the timing is the GPU's, not just the recording's. `smokeCompare` runs tiny shapes on webgpu and
 * js and compares every number (rel 1e-4).
 */
import { scope, setBackend } from "../src/engine/backend.js";
import { grad } from "../src/engine/autograd.js";
import { Tensor, tensor } from "../src/engine/tensor.js";
import * as O from "../src/engine/ops.js";
import { compileNetwork, forward, type Network, type Params } from "../src/models/network.js";
import type { GraphRunOptions } from "../src/models/graph.js";
import { initParams } from "../src/models/init.js";
import { defaultCnnSpec, type ModelSpec } from "../src/models/spec.js";
import { resnetSpec } from "../src/models/zoo.js";
import { Rng } from "../src/util/rng.js";

/** A model with its parameters and one batch, as host values (uploaded by `prepare` on the active backend). */
export interface Problem {
  name: string;
  net: Network;
  host: Params;
  x: Float32Array;
  labels: Int32Array;
  /** The inputs of the "exact GC over 10k inputs" task (synthetic, [many, inputSize]) and its chunk size. */
  many: Float32Array;
  chunk: number;
}

/** Name of the exact-GC task over many inputs (10k at full size). */
export const MANY_TASK = "exact GC over 10k inputs";

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
        // 16×16 and batch 4, not smaller: BatchNorm's batch statistics in training mode then pool 16 values per
        // channel at the last stage (2×2×4); with 8×8 inputs and batch 2 they pool 2, the normalization is
        // ill-conditioned and float32 rounding alone moves the steps' parameters by ~6e-4 relative.
        ["ResNet-18", resnetSpec(18, [3, 16, 16], 10, 4), 4],
      ]
    : [
        ["MLP", { kind: "mlp", sizes: [784, 256, 256, 10], activation: "relu" }, 128],
        ["CNN", defaultCnnSpec(), 128],
        ["ResNet-18", resnetSpec(18, [3, 32, 32], 10), 128],
      ];
  const manyCount = smoke ? 5 : 10_000;
  return specs.map(([name, spec, batch]) => {
    const net = compileNetwork(spec);
    const host = initParams(net, { scheme: "he", distribution: "normal", scale: 1, bias: 0, seed: 0 });
    const rng = new Rng(1);
    const x = Float32Array.from({ length: batch * net.inputSize }, () => rng.uniform());
    const labels = Int32Array.from({ length: batch }, () => rng.int(net.outputSize));
    const many = new Float32Array(manyCount * net.inputSize);
    const mrng = new Rng(2);
    for (let i = 0; i < many.length; i++) many[i] = mrng.uniform();
    return { name, net, host, x, labels, many, chunk: batch };
  });
}

/** One task: queues its work on the active backend and returns the scalars it produced (read them to wait). */
export type Task = () => Tensor[];

/** The six tasks of a problem on the active backend (its tensors uploaded once, outside any scope). */
export function prepare(p: Problem, lr = 0.01, alpha = 0.01): Record<string, Task> {
  const { net } = p;
  const b = p.labels.length,
    k = net.outputSize;
  const buffers = new Set(net.params.filter((q) => q.kind === "buffer").map((q) => q.name));
  const names = Object.keys(p.host).filter((n) => !buffers.has(n));
  const params: Params = Object.fromEntries(
    Object.keys(p.host).map((n) => [n, tensor(p.host[n].data, p.host[n].shape)]),
  );
  const x = tensor(p.x, [b, net.inputSize]);
  const manyCount = p.many.length / net.inputSize;
  const chunks: Tensor[] = [];
  for (let i = 0; i < manyCount; i += p.chunk) {
    const n = Math.min(p.chunk, manyCount - i);
    chunks.push(tensor(p.many.subarray(i * net.inputSize, (i + n) * net.inputSize), [n, net.inputSize]));
  }
  const onehot = new Float32Array(b * k);
  p.labels.forEach((l, i) => (onehot[i * k + l] = 1));
  const target = tensor(onehot, [b, k]);
  // The k one-hot cotangents of the exact GC: column c is 1 in every row.
  const columnsOf = (rows: number) =>
    Array.from({ length: k }, (_, c) => {
      const v = new Float32Array(rows * k);
      for (let i = 0; i < rows; i++) v[i * k + c] = 1;
      return tensor(v, [rows, k]);
    });
  const columns = columnsOf(b);
  const lastRows = chunks.length ? chunks[chunks.length - 1].shape[0] : b;
  const lastColumns = lastRows === b ? columns : columnsOf(lastRows);
  /** Mean softmax cross-entropy, with ops only. */
  const loss = (logits: Tensor) =>
    O.scale(O.sum(O.sub(O.logSumExpRows(logits), O.sumRows(O.mul(logits, target)))), 1 / b);
  /** Σ_x ‖∂g(x)/∂x‖_F² over the rows of `input` by k VJPs (graph models: BatchNorm as `run` says). */
  const gcSum = (ps: Params, input: Tensor, cols: Tensor[], createGraph: boolean, run?: GraphRunOptions) => {
    const xv = input.variable();
    const y = forward(net, ps, xv, undefined, run);
    let total: Tensor | null = null;
    for (const col of cols) {
      const [gx] = grad(y, [xv], { cotangent: col, createGraph });
      const sq = O.sum(O.mul(gx, gx));
      total = total ? O.add(total, sq) : sq;
    }
    return total!;
  };
  const train: GraphRunOptions = { training: true };
  const step = (extra: "none" | "gc" | "flatness"): Tensor[] => {
    const vars: Params = { ...params, ...Object.fromEntries(names.map((n) => [n, params[n].variable()])) };
    const trainable = names.map((n) => vars[n]);
    const L = loss(forward(net, vars, x, undefined, train));
    let total = L;
    if (extra === "gc") {
      const gc = O.scale(gcSum(vars, x, columns, true, { training: true, detachBatchStats: true }), 1 / b);
      total = O.add(L, O.scale(gc, alpha));
    } else if (extra === "flatness") {
      const gs = grad(L, trainable, { createGraph: true });
      const sq = gs.map((g) => O.sumSquares(g)).reduce((a, c) => O.add(a, c));
      total = O.add(L, O.scale(sq, alpha));
    }
    const g = grad(total, trainable);
    const updated = names.map((n, i) => O.add(params[n], O.scale(g[i], -lr)));
    return [L, ...updated];
  };
  /** Exact GC over all the inputs, one storage scope per chunk (only each chunk's scalar outlives it). */
  const gcMany = (): Tensor[] => {
    let total: Tensor | null = null;
    chunks.forEach((c, i) => {
      const s = scope(() => gcSum(params, c, i === chunks.length - 1 ? lastColumns : columns, false));
      total = total ? O.add(total, s) : s;
    });
    return [O.scale(total!, 1 / manyCount)];
  };
  return {
    forward: () => [forward(net, params, x)],
    "SGD step": () => step("none"),
    "exact GC of the batch": () => [O.scale(gcSum(params, x, columns, false), 1 / b)],
    "SGD step + GC penalty": () => step("gc"),
    "SGD step + flatness penalty": () => step("flatness"),
    [MANY_TASK]: gcMany,
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
    // Each penalty is really in its step: its parameters differ from the plain step's (on js).
    setBackend("js");
    const plain = await runTask(js["SGD step"]);
    for (const which of ["GC", "flatness"]) {
      const pen = await runTask(js[`SGD step + ${which} penalty`]);
      const moved = plain.slice(1).some((v, i) => v.some((q, j) => q !== pen[i + 1][j]));
      out.push({ task: `${p.name} the ${which} penalty changes the step`, rel: moved ? 0 : Infinity, ok: moved });
    }
  }
  return out;
}
