/**
 * Micro-benchmark of the wasm kernels (`node dist/bench/kernels.js [gemm|conv|threads|all] [reps]`): GFLOP/s of the
 * old 4×8 matmul and of the blocked GEMM (SIMD128 and relaxed-SIMD FMA builds, one thread, and two threads over
 * shared memory) on MLP, CNN-im2col and transposed-operand (backward) shapes; implicit-GEMM convolutions against the
 * old path (JS im2col + wasm matmul); and the size at which the second thread starts to pay. Variants run
 * interleaved, repetition by repetition, so that load on a shared machine hits them alike; prints medians of wall
 * time and of CPU time.
 */
import { setFlagsFromString } from "node:v8";
// A benchmark is a host program: it may enable relaxed SIMD on Node 20 (the library never does).
setFlagsFromString("--experimental-wasm-relaxed-simd");

import { readFileSync, existsSync } from "node:fs";
import { createRequire } from "node:module";
import { startThreadedKernels, type ThreadedKernels } from "../src/engine/wasmThreads.js";
import { convGeometry, im2colGeneral, type ConvGeometry } from "../src/engine/kernels.js";
import { filterGradientSplit } from "../src/engine/wasmKernels.js";

type Fn = (...a: number[]) => unknown;
type Exports = Record<string, Fn> & { memory: WebAssembly.Memory; heapBase: () => number };

const wasmDir = new URL("../wasm/", import.meta.url);
const bytesOf = (name: string): Uint8Array<ArrayBuffer> => readFileSync(new URL(name, wasmDir));

function single(name: string): Exports {
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytesOf(name)), {
    env: {
      abort: () => {
        throw new Error("abort");
      },
    },
  });
  return inst.exports as unknown as Exports;
}

/** A bump allocator over a memory, from `base`. */
function arena(mem: WebAssembly.Memory, base: number) {
  let top = base;
  return {
    alloc(n: number, fill = true): number {
      const p = top;
      top = (top + n * 4 + 63) & ~63;
      if (top > mem.buffer.byteLength) mem.grow(Math.ceil((top - mem.buffer.byteLength) / 65536));
      if (fill) {
        const v = new Float32Array(mem.buffer, p, n);
        for (let i = 0; i < n; i++) v[i] = Math.random() - 0.5;
      }
      return p;
    },
    reset(): void {
      top = base;
    },
  };
}

/**
 * Medians of `reps` interleaved repetitions, ms per call: wall time, and this process's CPU time (user + system, all
 * threads). On a shared machine CPU time is the steadier measure of a one-thread kernel (time spent descheduled is
 * not counted); two-thread runs are judged by wall time. Each repetition runs a batch of calls of ≥ ~20 ms.
 */
function race(fns: (() => void)[], reps: number, flopsHint: number): { med: number; best: number; cpu: number }[] {
  const n = Math.max(1, Math.round(4e8 / Math.max(flopsHint, 1)));
  const times = fns.map(() => [] as number[]),
    cpus = fns.map(() => [] as number[]);
  for (const f of fns) f();
  for (let r = 0; r < reps; r++) {
    fns.forEach((f, v) => {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < n; i++) f();
      times[v].push((performance.now() - t0) / n);
      const c = process.cpuUsage(c0);
      cpus[v].push((c.user + c.system) / 1000 / n);
    });
  }
  const med = (t: number[]) => t.sort((a, b) => a - b)[t.length >> 1];
  return times.map((t, v) => ({ med: med(t), best: t[0], cpu: med(cpus[v]) }));
}

/** GFLOP/s by wall time, and [by CPU time] (meaningful for one-thread runs only). */
const fmt = (flops: number, t: { med: number; cpu: number }): string =>
  `${(flops / t.med / 1e6).toFixed(1).padStart(5)} [${(flops / t.cpu / 1e6).toFixed(1)}]`.padEnd(14);

const reps = Number(process.argv[3] ?? 9);
const what = process.argv[2] ?? "all";
const require = createRequire(import.meta.url);
const plain = single("kernels.wasm"),
  relaxed = single("kernels-relaxed.wasm");
const startThreads = (name: string): ThreadedKernels => {
  const t = startThreadedKernels(bytesOf(name), require);
  if (!t) throw new Error("two threads are not available here");
  return t;
};
const th: Record<string, ThreadedKernels> = {
  plain: startThreads("kernels-shared.wasm"),
  relaxed: startThreads("kernels-shared-relaxed.wasm"),
};
for (let i = 0; i < 200 && !Object.values(th).every((t) => t.helperReady()); i++)
  await new Promise((res) => setTimeout(res, 50));
for (const [k, t] of Object.entries(th)) if (!t.helperReady()) throw new Error(`helper ${k} not ready`);

function gemmBench(): void {
  const shapes: [string, number, number, number, number, number][] = [
    ["MLP fwd 128x784 . 784x256", 128, 784, 256, 0, 0],
    ["MLP fwd 128x256 . 256x256", 128, 256, 256, 0, 0],
    ["MLP fwd 128x256 . 256x10", 128, 256, 10, 0, 0],
    ["MLP dW  (784x128)T . 128x256", 784, 128, 256, 1, 0],
    ["MLP dX  128x256 . (784x256)T", 128, 256, 784, 0, 1],
    ["MLP dW2 (256x128)T . 128x256", 256, 128, 256, 1, 0],
    ["CNN c1  100352x9 . (32x9)T", 100352, 9, 32, 0, 1],
    ["CNN c2  25088x288 . (64x288)T", 25088, 288, 64, 0, 1],
    ["CNN dW2 (25088x64)T . 25088x288", 64, 25088, 288, 1, 0],
    ["CNN dX2 25088x64 . 64x288", 25088, 64, 288, 0, 0],
  ];
  console.log("\nGEMM, GFLOP/s: by wall time [by CPU time], medians of", reps, "interleaved repetitions");
  console.log(
    "shape".padEnd(34) +
      ["old matmul*", "gemm simd128", "gemm relaxed", "2T simd128", "2T relaxed"].map((s) => s.padEnd(14)).join(""),
  );
  for (const [name, M, K, N, tA, tB] of shapes) {
    const runs: (() => void)[] = [];
    const mk = (e: Exports, mem: WebAssembly.Memory, base: number) => {
      const ar = arena(mem, base);
      return { a: ar.alloc(M * K), b: ar.alloc(K * N), c: ar.alloc(M * N, false) };
    };
    const p = mk(plain, plain.memory, plain.heapBase());
    // *The old kernel has no transposed operands: it runs the untransposed product of the same size.
    runs.push(() => plain.matmul(p.a, p.b, p.c, M, K, N));
    runs.push(() => plain.gemm(p.a, p.b, p.c, 0, M, K, N, tA, tB, 0, 0, 0, M));
    const r = mk(relaxed, relaxed.memory, relaxed.heapBase());
    runs.push(() => relaxed.gemm(r.a, r.b, r.c, 0, M, K, N, tA, tB, 0, 0, 0, M));
    for (const t of [th.plain, th.relaxed]) {
      const hb = (t.kernels.heapBase as () => number)();
      const q = mk(t.kernels as unknown as Exports, t.memory, hb);
      runs.push(() =>
        t.run(
          "gemm",
          [q.a, q.b, q.c, 0, M, K, N, tA, tB, 0, 0],
          M,
          M * K * N >= 2 ** 20 ? Math.max(2, Math.min(8, Math.floor((M * K * N) / 2 ** 20))) : 0,
        ),
      );
    }
    const flops = 2 * M * K * N;
    const res = race(runs, reps, flops);
    console.log(name.padEnd(34) + res.map((t) => fmt(flops, t)).join(""));
  }
}

function convBench(): void {
  // The benchmark CNN at batch 128: conv3x3 1→32 on 28x28, conv3x3 32→64 on 14x14 (same padding).
  const layers: [string, number[], number][] = [
    ["conv1 128x28x28x1 -> 32", [128, 28, 28, 1], 32],
    ["conv2 128x14x14x32 -> 64", [128, 14, 14, 32], 64],
  ];
  console.log(
    "\nConvolution, GFLOP/s: wall [CPU] medians; old = JS im2col + wasm matmul (no copies counted), new = implicit GEMM",
  );
  console.log(
    "layer / pass".padEnd(34) +
      ["old 1T", "new simd128", "new relaxed", "new 2T relaxed"].map((s) => s.padEnd(14)).join(""),
  );
  for (const [name, shape, cout] of layers) {
    const g: ConvGeometry = convGeometry(shape, [3, 3], [1, 1], [1, 1, 1, 1]);
    const P = g.n * g.outH * g.outW,
      K = 9 * g.c,
      X = g.n * g.h * g.w * g.c;
    const geo = [g.n, g.h, g.w, g.c, cout, 3, 3, 1, 1, 1, 1, 1, 1, g.outH, g.outW, 1];
    const setup = (mem: WebAssembly.Memory, base: number) => {
      const ar = arena(mem, base);
      return {
        x: ar.alloc(X),
        w: ar.alloc(cout * K),
        y: ar.alloc(P * cout, false),
        dy: ar.alloc(P * cout),
        dx: ar.alloc(X, false),
        dw: ar.alloc(cout * K, false),
        cols: ar.alloc(P * K, false),
      };
    };
    const o = setup(plain.memory, plain.heapBase());
    const s1 = setup(plain.memory, o.cols + P * K * 4 + 64);
    const s2 = setup(relaxed.memory, relaxed.heapBase());
    const hb = (th.relaxed.kernels.heapBase as () => number)();
    const s3 = setup(th.relaxed.memory, hb);
    const xs = new Float32Array(X);
    const flops = 2 * P * K * cout;
    const passes: [string, (() => void)[]][] = [
      [
        "forward",
        [
          () => {
            xs.set(new Float32Array(plain.memory.buffer, o.x, X));
            const cols = new Float32Array(plain.memory.buffer, o.cols, P * K);
            im2colGeneral(xs, cols, g);
            plain.gemm(o.cols, o.w, o.y, 0, P, K, cout, 0, 1, 0, 0, 0, P);
          },
          () => plain.conv2dForward(s1.x, s1.w, s1.y, 0, ...geo, 0, 0, 0, P),
          () => relaxed.conv2dForward(s2.x, s2.w, s2.y, 0, ...geo, 0, 0, 0, P),
          () => th.relaxed.run("conv2dForward", [s3.x, s3.w, s3.y, 0, ...geo, 0, 0], P, 8),
        ],
      ],
      [
        "input grad",
        [
          () => {
            plain.matmul(o.dy, o.w, o.cols, P, cout, K);
            // col2im is the JS adjoint; its cost is about that of im2col
            xs.set(new Float32Array(plain.memory.buffer, o.x, X));
            im2colGeneral(xs, new Float32Array(plain.memory.buffer, o.cols, P * K), g);
          },
          () => plain.conv2dBackwardInput(s1.dy, s1.w, s1.dx, ...geo, 0, 0, X / g.c),
          () => relaxed.conv2dBackwardInput(s2.dy, s2.w, s2.dx, ...geo, 0, 0, X / g.c),
          () => th.relaxed.run("conv2dBackwardInput", [s3.dy, s3.w, s3.dx, ...geo, 0], X / g.c, 8),
        ],
      ],
      [
        "filter grad",
        [
          () => {
            xs.set(new Float32Array(plain.memory.buffer, o.x, X));
            im2colGeneral(xs, new Float32Array(plain.memory.buffer, o.cols, P * K), g);
            plain.gemm(o.dy, o.cols, o.dw, 0, cout, P, K, 1, 0, 0, 0, 0, cout);
          },
          () => plain.conv2dBackwardFilter(s1.x, s1.dy, s1.dw, ...geo, 0, 0, cout),
          () => relaxed.conv2dBackwardFilter(s2.x, s2.dy, s2.dw, ...geo, 0, 0, cout),
          () => {
            const split = filterGradientSplit(g, cout);
            th.relaxed.run(split.kernel, [s3.x, s3.dy, s3.dw, ...geo, 0], split.rows, split.chunks);
          },
        ],
      ],
    ];
    for (const [pass, fns] of passes) {
      const res = race(fns, reps, flops);
      console.log(
        `${name} ${pass}`.padEnd(34) +
          res.map((t) => fmt(flops, t)).join("") +
          `  ms: ${res.map((t) => t.med.toFixed(2)).join(" / ")}`,
      );
    }
  }
  // Pooling 2x2/2 after conv1 (128x28x28x32): forward with argmax and backward scatter.
  const pg = convGeometry([128, 28, 28, 32], [2, 2], [2, 2], [0, 0, 0, 0]);
  const X = 128 * 28 * 28 * 32,
    Y = 128 * 14 * 14 * 32;
  const ar = arena(relaxed.memory, relaxed.heapBase());
  const x = ar.alloc(X),
    y = ar.alloc(Y, false),
    idx = ar.alloc(Y, false),
    dy = ar.alloc(Y),
    dx = ar.alloc(X, false);
  const pgeo = [128, 28, 28, 32, 2, 2, 2, 2, 1, 1, 0, 0, 14, 14];
  const res = race(
    [
      () => relaxed.maxPoolForward(x, y, idx, ...pgeo, 0, 128 * 14 * 14),
      () => relaxed.maxPoolBackward(dy, idx, dx, 128, 28, 28, 32, 14, 14, 0, 0, 128),
    ],
    reps,
    X,
  );
  console.log(
    `max pool 2x2 128x28x28x32: forward ${res[0].med.toFixed(2)} ms, backward ${res[1].med.toFixed(2)} ms (one thread)`,
  );
  void pg;
}

function threadBench(): void {
  console.log("\nTwo threads vs one (relaxed build over shared memory), ms median; work = M·K·N multiply-adds");
  for (const s of [32, 48, 64, 80, 96, 128, 160, 192, 256]) {
    const M = s,
      K = s,
      N = s;
    const t = th.relaxed;
    const ar = arena(t.memory, (t.kernels.heapBase as () => number)());
    const a = ar.alloc(M * K),
      b = ar.alloc(K * N),
      c = ar.alloc(M * N, false);
    const args = [a, b, c, 0, M, K, N, 0, 0, 0, 0];
    const res = race(
      [() => t.run("gemm", args, M, 0), () => t.run("gemm", args, M, 2), () => t.run("gemm", args, M, 8)],
      reps,
      2 * M * K * N,
    );
    console.log(
      `${M}x${K}x${N} work 2^${Math.log2(M * K * N).toFixed(1)}: 1T ${(res[0].med * 1000).toFixed(1)} µs, ` +
        `2T 2 chunks ${(res[1].med * 1000).toFixed(1)} µs (x${(res[0].med / res[1].med).toFixed(2)}), ` +
        `2T 8 chunks ${(res[2].med * 1000).toFixed(1)} µs (x${(res[0].med / res[2].med).toFixed(2)})`,
    );
  }
}

if (!existsSync(new URL("kernels-relaxed.wasm", wasmDir))) throw new Error("run npm run build:wasm first");
if (what === "gemm" || what === "all") gemmBench();
if (what === "conv" || what === "all") convBench();
if (what === "threads" || what === "all") threadBench();
process.exit(0);
