/**
 * The op-level suite of the WebGPU backend (browser side of test/e2e/webgpu.test.ts). For each op f and random
 * inputs x, cotangent w and direction v, with L = Σ f(x)·w:
 * - on the js backend in float64, the gradient ∇L and the Hessian-vector product H·v (double backprop) agree with
 *   central finite differences of L and of ∇L along v (step 1e-5: truncation ~1e-10, rounding ~1e-11 relative);
 * - on the webgpu backend in float32, f(x), ∇L and H·v equal the js backend's float32 results to 1e-4 of the
 *   largest magnitude of each vector (norm-wise, so entries that cancel to near 0 do not need 4 digits).
 * Nothing is read synchronously on the device: values come back with `await tensor.read()`.
 */
import { setBackend } from "../../../src/engine/backend.js";
import { grad } from "../../../src/engine/autograd.js";
import { Tensor, tensor } from "../../../src/engine/tensor.js";
import * as O from "../../../src/engine/ops.js";
import * as E from "../../../src/engine/elementwise.js";
import * as S from "../../../src/engine/spatial.js";
import type { Result } from "./page.js";

/** One op under test: input shapes (and value ranges), and f. */
interface OpCase {
  name: string;
  inputs: { shape: number[]; lo?: number; hi?: number }[];
  f: (xs: Tensor[]) => Tensor;
  /** Skip the finite-difference check (ops with kinks where a step may cross one). */
  noFd?: boolean;
}

const CASES: OpCase[] = [
  { name: "add (broadcast)", inputs: [{ shape: [3, 4] }, { shape: [4] }], f: ([a, b]) => E.addB(a, b) },
  { name: "sub (broadcast)", inputs: [{ shape: [2, 1, 3] }, { shape: [4, 1] }], f: ([a, b]) => E.subB(a, b) },
  { name: "mul (broadcast)", inputs: [{ shape: [2, 3, 4] }, { shape: [3, 1] }], f: ([a, b]) => E.mulB(a, b) },
  {
    name: "div (broadcast)",
    inputs: [{ shape: [3, 4] }, { shape: [4], lo: 0.5, hi: 2 }],
    f: ([a, b]) => E.divB(a, b),
  },
  { name: "matmul", inputs: [{ shape: [5, 7] }, { shape: [7, 3] }], f: ([a, b]) => O.matmul(a, b) },
  { name: "matmul aᵀb", inputs: [{ shape: [7, 5] }, { shape: [7, 3] }], f: ([a, b]) => O.matmul(a, b, true, false) },
  { name: "matmul abᵀ", inputs: [{ shape: [5, 7] }, { shape: [3, 7] }], f: ([a, b]) => O.matmul(a, b, false, true) },
  { name: "matmul aᵀbᵀ", inputs: [{ shape: [7, 5] }, { shape: [3, 7] }], f: ([a, b]) => O.matmul(a, b, true, true) },
  {
    name: "linear + tanh",
    inputs: [{ shape: [4, 6] }, { shape: [5, 6] }, { shape: [5] }],
    f: ([x, W, b]) => O.tanh(O.linear(x, W, b, "none")),
  },
  {
    name: "linear relu",
    inputs: [{ shape: [4, 6] }, { shape: [5, 6] }, { shape: [5] }],
    f: ([x, W, b]) => O.linear(x, W, b, "relu"),
    noFd: true,
  },
  { name: "exp", inputs: [{ shape: [10] }], f: ([a]) => O.exp(a) },
  { name: "tanh", inputs: [{ shape: [10] }], f: ([a]) => O.tanh(a) },
  { name: "sigmoid", inputs: [{ shape: [10] }], f: ([a]) => E.sigmoid(a) },
  { name: "silu", inputs: [{ shape: [10] }], f: ([a]) => E.silu(a) },
  { name: "gelu (erf)", inputs: [{ shape: [10] }], f: ([a]) => E.gelu(a) },
  { name: "gelu (tanh)", inputs: [{ shape: [10] }], f: ([a]) => E.gelu(a, "tanh") },
  { name: "erf", inputs: [{ shape: [10] }], f: ([a]) => E.erf(a) },
  { name: "softplus", inputs: [{ shape: [10] }], f: ([a]) => E.softplus(a, 1.5) },
  { name: "relu", inputs: [{ shape: [10] }], f: ([a]) => O.relu(a), noFd: true },
  { name: "leakyRelu", inputs: [{ shape: [10] }], f: ([a]) => E.leakyRelu(a, 0.1), noFd: true },
  { name: "powScalar 3", inputs: [{ shape: [10] }], f: ([a]) => E.powScalar(a, 3) },
  { name: "sqrt", inputs: [{ shape: [10], lo: 0.5, hi: 3 }], f: ([a]) => E.sqrt(a) },
  { name: "affine", inputs: [{ shape: [10] }], f: ([a]) => O.affine(a, -1.5, 0.25) },
  { name: "softmax", inputs: [{ shape: [3, 5] }], f: ([a]) => O.softmax(a) },
  { name: "logSumExpRows", inputs: [{ shape: [3, 5] }], f: ([a]) => O.logSumExpRows(a) },
  { name: "sum", inputs: [{ shape: [4, 3] }], f: ([a]) => O.sum(E.mulB(a, a)) },
  {
    name: "reduceMean axes [0, 2]",
    inputs: [{ shape: [2, 3, 4] }],
    f: ([a]) => E.reduceMean(E.mulB(a, a), [0, 2], true),
  },
  { name: "sumRows", inputs: [{ shape: [3, 4] }], f: ([a]) => O.sumRows(E.mulB(a, a)) },
  { name: "broadcastTo", inputs: [{ shape: [3, 1] }], f: ([a]) => E.broadcastTo(E.mulB(a, a), [2, 3, 4]) },
  {
    name: "layerNorm",
    inputs: [{ shape: [3, 6] }, { shape: [6] }, { shape: [6] }],
    f: ([x, g, b]) => E.layerNorm(x, g, b, 1e-5),
  },
  {
    name: "conv2d 3x3 same",
    inputs: [{ shape: [2, 5, 5, 2] }, { shape: [3, 3, 3, 2] }],
    f: ([x, w]) => O.conv2d(x, w, 1, "same"),
  },
  {
    name: "conv2d general stride 2 dilation 2",
    inputs: [{ shape: [1, 7, 6, 2] }, { shape: [2, 2, 2, 2] }],
    f: ([x, w]) => S.conv2dGeneral(x, w, { stride: [2, 2], padding: [1, 0, 0, 1], dilation: [2, 2], groups: 1 }),
  },
  {
    name: "maxPool2d 2x2",
    inputs: [{ shape: [2, 4, 4, 3] }],
    f: ([x]) => O.maxPool2d(E.mulB(x, x), 2, 2),
    noFd: true,
  },
  { name: "avgPool2d 2x2", inputs: [{ shape: [2, 4, 4, 3] }], f: ([x]) => O.avgPool2d(E.mulB(x, x), 2, 2) },
  { name: "globalAvgPool", inputs: [{ shape: [2, 3, 3, 4] }], f: ([x]) => S.globalAvgPool(E.mulB(x, x)) },
  { name: "pad2d", inputs: [{ shape: [1, 3, 3, 2] }], f: ([x]) => S.pad2d(E.mulB(x, x), [1, 0, 2, 1], 0.5) },
  {
    name: "concatChannels",
    inputs: [{ shape: [1, 2, 2, 2] }, { shape: [1, 2, 2, 3] }],
    f: ([a, b]) => S.concatChannels([E.mulB(a, a), b]),
  },
  { name: "permute", inputs: [{ shape: [2, 3, 4] }], f: ([a]) => S.permute(E.mulB(a, a), [2, 0, 1]) },
  {
    name: "reshape + transpose",
    inputs: [{ shape: [12] }],
    f: ([a]) => O.matmul(O.reshape(E.mulB(a, a), [3, 4]), O.reshape(a, [3, 4]), true),
  },
];

let seed = 777;
function rand(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const values = (n: number, lo = -1.5, hi = 1.5) => Float32Array.from({ length: n }, () => lo + (hi - lo) * rand());
const size = (s: readonly number[]) => s.reduce((p, q) => p * q, 1);

interface Outputs {
  y: Float64Array;
  g: Float64Array[];
  hv: Float64Array[];
}

/** f, ∇L and H·v on the active backend; values read back asynchronously. */
async function evaluate(
  c: OpCase,
  xs: Float32Array[],
  w: Float32Array,
  v: Float32Array[],
  dtype: "float32" | "float64",
): Promise<Outputs> {
  const ts = xs.map((x, i) => tensor(x, c.inputs[i].shape, dtype).variable());
  const y = c.f(ts);
  const wt = tensor(w, y.shape, dtype);
  const L = O.sum(O.mul(y, wt));
  const g = grad(L, ts, { createGraph: true });
  let s: Tensor | null = null;
  g.forEach((gi, i) => {
    const term = O.sum(O.mul(gi, tensor(v[i], gi.shape, dtype)));
    s = s ? O.add(s, term) : term;
  });
  const hv = grad(s!, ts);
  const read = async (t: Tensor) => Float64Array.from(await t.read());
  return { y: await read(y), g: await Promise.all(g.map(read)), hv: await Promise.all(hv.map(read)) };
}

/** L(x) in float64 on js, for finite differences. */
function lossAt(c: OpCase, xs: Float64Array[], w: Float32Array): number {
  const ts = xs.map((x, i) => tensor(x, c.inputs[i].shape, "float64"));
  const y = c.f(ts);
  return O.sum(O.mul(y, tensor(w, y.shape, "float64"))).item();
}

function gradAt(c: OpCase, xs: Float64Array[], w: Float32Array): Float64Array[] {
  const ts = xs.map((x, i) => tensor(x, c.inputs[i].shape, "float64").variable());
  const y = c.f(ts);
  const L = O.sum(O.mul(y, tensor(w, y.shape, "float64")));
  return grad(L, ts).map((t) => Float64Array.from(t.data));
}

/** max |a − b| / max |b| (0 when both vanish). */
function normRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let e = 0,
    m = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    e = Number.isNaN(d) ? Infinity : Math.max(e, d);
    m = Math.max(m, Math.abs(b[i]));
  }
  return e === 0 ? 0 : m === 0 ? Infinity : e / m;
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

/** Runs the op suite; the webgpu backend must be installed (requestWebGPU) beforehand. */
export async function opSuite(): Promise<Result[]> {
  const out: Result[] = [];
  const push = (name: string, worst: number, tol: number, detail = "") =>
    out.push({ name, ok: worst <= tol, worst: worst / tol, detail: detail || `rel ${worst.toExponential(2)}` });
  for (const c of CASES) {
    try {
      const xs = c.inputs.map((s) => values(size(s.shape), s.lo, s.hi));
      const v = c.inputs.map((s) => values(size(s.shape)));
      setBackend("js");
      const probe = c.f(xs.map((x, i) => tensor(x, c.inputs[i].shape)));
      const w = values(probe.size);
      // float64 truth on js: gradients and H·v against finite differences.
      const ref64 = await evaluate(c, xs, w, v, "float64");
      if (!c.noFd) {
        const h = 1e-5;
        const x64 = xs.map((x) => Float64Array.from(x));
        const shifted = (sgn: number) => x64.map((x, i) => x.map((q, j) => q + sgn * h * v[i][j]));
        const fd = (lossAt(c, shifted(1), w) - lossAt(c, shifted(-1), w)) / (2 * h);
        const an = ref64.g.reduce((s, gi, i) => s + dot(gi, v[i]), 0);
        const scale = ref64.g.reduce((s, gi, i) => s + dot(gi.map(Math.abs), v[i].map(Math.abs)), 0);
        push(`${c.name}: ∇L·v vs finite differences (js, float64)`, Math.abs(fd - an) / Math.max(scale, 1e-300), 1e-6);
        const gp = gradAt(c, shifted(1), w),
          gm = gradAt(c, shifted(-1), w);
        const fdHv = gp.flatMap((g, i) => Array.from(g, (q, j) => (q - gm[i][j]) / (2 * h)));
        push(
          `${c.name}: H·v vs finite differences of ∇L (js, float64)`,
          normRel(
            ref64.hv.flatMap((q) => Array.from(q)),
            fdHv,
          ),
          1e-5,
        );
      }
      const ref32 = await evaluate(c, xs, w, v, "float32");
      setBackend("webgpu");
      const gpu = await evaluate(c, xs, w, v, "float32");
      setBackend("js");
      push(`${c.name}: forward webgpu = js`, normRel(gpu.y, ref32.y), 1e-4);
      push(`${c.name}: ∇ webgpu = js`, Math.max(...gpu.g.map((g, i) => normRel(g, ref32.g[i]))), 1e-4);
      push(`${c.name}: H·v webgpu = js`, Math.max(...gpu.hv.map((g, i) => normRel(g, ref32.hv[i]))), 1e-4);
    } catch (e) {
      setBackend("js");
      out.push({
        name: `${c.name}`,
        ok: false,
        worst: Infinity,
        detail: `threw: ${(e as Error).message.split("\n")[0]}`,
      });
    }
  }
  return out;
}
