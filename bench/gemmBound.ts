/**
 * The measured compute bound of issue 11: GFLOP/s of our wasm GEMM and implicit-GEMM convolutions (SIMD128 and
 * relaxed-SIMD FMA, one and two threads) against PyTorch's CPU kernels (1 and 2 threads) on the exact products of
 * the benchmark's MLP, CNN and ResNet-8 steps: OpenBLAS sgemm for the products (torch.mm), oneDNN (mkldnn) for
 * the convolutions, as PyTorch's own steps run them.
 *
 * Usage: node dist/bench/gemmBound.js [--runs N] [--reps R]. Each run measures every shape on our side (variants
 * interleaved) and then spawns bench/torch_gemm.py for the same shapes; ours and PyTorch's runs alternate, so load
 * on a shared machine hits both alike. Prints per shape the median over runs of each side's GFLOP/s (each run itself
 * the median of R timed batches by wall time), and the load average before and after.
 */
import { setFlagsFromString } from "node:v8";
// A benchmark is a host program: it may enable relaxed SIMD on Node 20 (the library never does).
setFlagsFromString("--experimental-wasm-relaxed-simd");

import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { startThreadedKernels, type ThreadedKernels } from "../src/engine/wasmThreads.js";
import { convGeometry } from "../src/engine/kernels.js";
import { filterGradientSplit } from "../src/engine/wasmKernels.js";

type Fn = (...a: number[]) => unknown;
type Exports = Record<string, Fn> & { memory: WebAssembly.Memory; heapBase: () => number };

const args = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const at = args.indexOf(name);
  return at >= 0 ? Number(args[at + 1]) : dflt;
};
const runs = opt("--runs", 5),
  reps = opt("--reps", 5);

/** A product as the benchmark's steps run it. gemm: C[M,N] = op(A)·op(B); conv: NHWC input, 3×3 or 1×1 kernel. */
export type Shape =
  | { name: string; kind: "gemm"; M: number; K: number; N: number; tA: 0 | 1; tB: 0 | 1 }
  | {
      name: string;
      kind: "conv";
      pass: "forward" | "input" | "filter";
      n: number;
      h: number;
      w: number;
      c: number;
      cout: number;
      k: number;
      s: number;
    };

const conv = (name: string, n: number, h: number, c: number, cout: number, k: number, s: number): Shape[] =>
  (["forward", "input", "filter"] as const).map((pass) => ({
    name: `${name} ${pass}`,
    kind: "conv",
    pass,
    n,
    h,
    w: h,
    c,
    cout,
    k,
    s,
  }));

export const SHAPES: Shape[] = [
  { name: "MLP fwd1 x·W1ᵀ 128×784·(256×784)ᵀ", kind: "gemm", M: 128, K: 784, N: 256, tA: 0, tB: 1 },
  { name: "MLP fwd2 x·W2ᵀ 128×256·(256×256)ᵀ", kind: "gemm", M: 128, K: 256, N: 256, tA: 0, tB: 1 },
  { name: "MLP dW1 gᵀ·x (128×256)ᵀ·128×784", kind: "gemm", M: 256, K: 128, N: 784, tA: 1, tB: 0 },
  { name: "MLP dW2 gᵀ·h (128×256)ᵀ·128×256", kind: "gemm", M: 256, K: 128, N: 256, tA: 1, tB: 0 },
  { name: "MLP dX2 g·W2 128×256·256×256", kind: "gemm", M: 128, K: 256, N: 256, tA: 0, tB: 0 },
  ...conv("CNN conv1 28²×1→32", 128, 28, 1, 32, 3, 1),
  ...conv("CNN conv2 14²×32→64", 128, 14, 32, 64, 3, 1),
  ...conv("ResNet 28²×16→16", 128, 28, 16, 16, 3, 1),
  ...conv("ResNet 14²×32→32", 128, 14, 32, 32, 3, 1),
  ...conv("ResNet 7²×64→64", 128, 7, 64, 64, 3, 1),
  ...conv("ResNet s2 28²×16→32", 128, 28, 16, 32, 3, 2),
];

function geometry(s: Extract<Shape, { kind: "conv" }>) {
  const p = s.k === 3 ? 1 : 0;
  return convGeometry([s.n, s.h, s.w, s.c], [s.k, s.k], [s.s, s.s], [p, p, p, p]);
}

/** 2·(multiply-adds) of a shape. */
export function flopsOf(s: Shape): number {
  if (s.kind === "gemm") return 2 * s.M * s.K * s.N;
  const g = geometry(s);
  return 2 * g.n * g.outH * g.outW * s.k * s.k * s.c * s.cout;
}

const wasmDir = new URL("../wasm/", import.meta.url);
const bytesOf = (name: string): Uint8Array<ArrayBuffer> => readFileSync(new URL(name, wasmDir));
if (!existsSync(new URL("kernels-relaxed.wasm", wasmDir))) throw new Error("run npm run build:wasm first");

function single(name: string): Exports {
  const abort = () => {
    throw new Error("abort");
  };
  return new WebAssembly.Instance(new WebAssembly.Module(bytesOf(name)), { env: { abort } })
    .exports as unknown as Exports;
}

/** Random operands for a shape in `mem` from `base`; returns their byte offsets. */
function operands(mem: WebAssembly.Memory, base: number, sizes: number[]): number[] {
  let top = base;
  return sizes.map((n) => {
    const p = top;
    top = (top + n * 4 + 63) & ~63;
    if (top > mem.buffer.byteLength) mem.grow(Math.ceil((top - mem.buffer.byteLength) / 65536));
    const v = new Float32Array(mem.buffer, p, n);
    for (let i = 0; i < n; i++) v[i] = Math.random() - 0.5;
    return p;
  });
}

/** The call of one variant on one shape: single instance (run all rows) or two threads (chunked). */
function caller(s: Shape, e: Exports, mem: WebAssembly.Memory, t: ThreadedKernels | null): () => void {
  const base = e.heapBase();
  const run = (fn: string, a: number[], rows: number, chunks: number) =>
    t ? t.run(fn, a, rows, chunks) : e[fn](...a, 0, rows);
  if (s.kind === "gemm") {
    const [a, b, c] = operands(mem, base, [s.M * s.K, s.K * s.N, s.M * s.N]);
    const chunks = Math.max(2, Math.min(4, Math.floor((s.M * s.K * s.N) / 2 ** 21)));
    return () => run("gemm", [a, b, c, 0, s.M, s.K, s.N, s.tA, s.tB, 0, 0], s.M, chunks);
  }
  const g = geometry(s);
  const P = g.n * g.outH * g.outW,
    K = s.k * s.k * g.c,
    X = g.n * g.h * g.w * g.c;
  const geo = [g.n, g.h, g.w, g.c, s.cout, s.k, s.k, g.sh, g.sw, 1, 1, g.padTop, g.padLeft, g.outH, g.outW, 1];
  const [x, w, y] = operands(mem, base, [X, s.cout * K, P * s.cout]);
  const chunks = Math.max(2, Math.min(4, Math.floor((P * K * s.cout) / 2 ** 21)));
  if (s.pass === "forward") return () => run("conv2dForward", [x, w, y, 0, ...geo, 0, 0], P, chunks);
  if (s.pass === "input") return () => run("conv2dBackwardInput", [y, w, x, ...geo, 0], X / g.c, chunks);
  const split = filterGradientSplit(g, s.cout);
  return () => run(split.kernel, [x, y, w, ...geo, 0], split.rows, split.chunks);
}

const require = createRequire(import.meta.url);
const startThreads = (name: string): ThreadedKernels => {
  const t = startThreadedKernels(bytesOf(name), require);
  if (!t) throw new Error("two threads are not available here");
  return t;
};
const th = { plain: startThreads("kernels-shared.wasm"), relaxed: startThreads("kernels-shared-relaxed.wasm") };
for (let i = 0; i < 200 && !(th.plain.helperReady() && th.relaxed.helperReady()); i++)
  await new Promise((res) => setTimeout(res, 50));
if (!th.plain.helperReady() || !th.relaxed.helperReady()) throw new Error("helper threads not ready");

const VARIANTS = ["simd128 1T (cpu)", "relaxed 1T (cpu)", "simd128 2T (wall)", "relaxed 2T (wall)"] as const;
const TORCH = ["PyTorch 1T (cpu)", "PyTorch 2T (wall)"] as const;

/**
 * GFLOP/s of each variant on shape s, variants interleaved; median of `reps` batches of ≥ ~15 ms each. One-thread
 * variants by this process's CPU time (user + system: time spent descheduled on a shared machine is not counted,
 * so it measures what a core delivers), two-thread variants by wall time.
 */
function measureOurs(s: Shape): number[] {
  const plain = single("kernels.wasm"),
    relaxed = single("kernels-relaxed.wasm");
  const fns = [
    caller(s, plain, plain.memory, null),
    caller(s, relaxed, relaxed.memory, null),
    caller(s, th.plain.kernels as unknown as Exports, th.plain.memory, th.plain),
    caller(s, th.relaxed.kernels as unknown as Exports, th.relaxed.memory, th.relaxed),
  ];
  const flops = flopsOf(s);
  const n = Math.max(1, Math.round(3e8 / flops));
  const ts = fns.map(() => [] as number[]);
  for (const f of fns) f();
  for (let r = 0; r < reps; r++)
    fns.forEach((f, v) => {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < n; i++) f();
      const wall = performance.now() - t0,
        c = process.cpuUsage(c0);
      ts[v].push((v < 2 ? (c.user + c.system) / 1000 : wall) / n);
    });
  return ts.map((t) => flops / median(t) / 1e6);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function measureTorch(): Record<string, number[]> | null {
  const script = fileURLToPath(new URL("../../bench/torch_gemm.py", import.meta.url));
  const python = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  const r = spawnSync(python, [script, String(reps)], {
    input: JSON.stringify(SHAPES),
    encoding: "utf8",
    env: { ...process.env, OMP_WAIT_POLICY: "PASSIVE" },
    maxBuffer: 1 << 22,
  });
  if (r.status !== 0) {
    process.stderr.write(`gemmBound: PyTorch side failed: ${r.stderr.trim().split("\n").pop() ?? ""}\n`);
    return null;
  }
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as Record<string, number[]>;
}

const load0 = loadavg();
const ours = new Map<string, number[][]>(),
  torch = new Map<string, number[][]>();
for (let r = 0; r < runs; r++) {
  for (const s of SHAPES) {
    const v = measureOurs(s);
    ours.set(s.name, [...(ours.get(s.name) ?? []), v]);
  }
  const t = measureTorch();
  if (t) for (const s of SHAPES) torch.set(s.name, [...(torch.get(s.name) ?? []), t[s.name]]);
  process.stderr.write(`gemmBound: run ${r + 1}/${runs} done (load ${loadavg()[0].toFixed(2)})\n`);
}
const load1 = loadavg();

const head = ["product", "MFLOP", ...VARIANTS, ...TORCH, "ours/PyTorch 1T (cpu)", "ours/PyTorch 2T (wall)"];
console.log(
  `GFLOP/s, medians over ${runs} alternating runs (each the median of ${reps} batches); one thread by CPU time, two ` +
    `threads by wall time; load average ${load0.map((l) => l.toFixed(2)).join(" ")} before, ` +
    `${load1.map((l) => l.toFixed(2)).join(" ")} after.\n`,
);
console.log(`| ${head.join(" | ")} |`);
console.log(
  `|---|${head
    .slice(1)
    .map(() => "---:")
    .join("|")}|`,
);
for (const s of SHAPES) {
  const o = VARIANTS.map((_, v) => median(ours.get(s.name)!.map((x) => x[v])));
  const t = torch.has(s.name) ? TORCH.map((_, v) => median(torch.get(s.name)!.map((x) => x[v]))) : [NaN, NaN];
  const r1 = Math.max(o[0], o[1]) / t[0],
    r2 = Math.max(o[2], o[3]) / t[1];
  console.log(
    `| ${s.name} | ${(flopsOf(s) / 1e6).toFixed(0)} | ${[...o, ...t].map((x) => x.toFixed(1)).join(" | ")} | ` +
      `${r1.toFixed(2)} | ${r2.toFixed(2)} |`,
  );
}
process.exit(0);
