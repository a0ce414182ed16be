// The GEMM kernel (assembly/gemm.ts) against float64 products, in every build (SIMD128, relaxed-SIMD FMA,
// shared-memory twins), and the two-thread runner against one thread, bit for bit.
import { setFlagsFromString } from "node:v8";
// This test process (never the library) enables relaxed SIMD on Node 20 so that the relaxed builds are checked too.
setFlagsFromString("--experimental-wasm-relaxed-simd");

import { test } from "node:test";
import assert from "node:assert/strict";
import { Rng } from "../src/util/rng.js";
import { loadHarness, type WasmHarness } from "./wasmHarness.js";

/** Deterministic uniform floats in [-1, 1) from the project's generator. */
function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.uniformIn(-1, 1);
}

interface Case {
  M: number;
  K: number;
  N: number;
  transA: number;
  transB: number;
  act: number;
  accumulate: number;
  bias: boolean;
  r0: number;
  r1: number;
}

/** Runs one case on harness h and compares with a float64 reference; rows outside [r0, r1) must be untouched. */
function check(h: WasmHarness, c: Case, seed: number): void {
  const { M, K, N, transA, transB, act, accumulate, r0, r1 } = c;
  const r = rng(seed);
  const A = Float32Array.from({ length: M * K }, r),
    B = Float32Array.from({ length: K * N }, r);
  const C0 = Float32Array.from({ length: M * N }, r),
    bias = Float32Array.from({ length: N }, r);
  h.reset();
  const a = h.put(A),
    b = h.put(B),
    cp = h.put(C0),
    bp = c.bias ? h.put(bias) : 0;
  h.exports.gemm(a, b, cp, bp, M, K, N, transA, transB, act, accumulate, r0, r1);
  const C = h.get(cp, M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      const got = C[i * N + j];
      if (i < r0 || i >= r1) {
        assert.equal(got, C0[i * N + j], `row ${i} outside [${r0}, ${r1}) was written (${JSON.stringify(c)})`);
        continue;
      }
      let s = accumulate ? C0[i * N + j] : 0,
        mag = Math.abs(s);
      for (let k = 0; k < K; k++) {
        const p = (transA ? A[k * M + i] : A[i * K + k]) * (transB ? B[j * K + k] : B[k * N + j]);
        s += p;
        mag += Math.abs(p);
      }
      if (c.bias) s += bias[j];
      if (act === 1) s = s > 0 ? s : 0;
      const tol = 1e-6 * (mag + 1) * 4;
      assert.ok(Math.abs(got - s) <= tol, `C[${i},${j}] = ${got}, expected ${s} (${JSON.stringify(c)})`);
    }
  }
}

const BUILDS = ["kernels.wasm", "kernels-relaxed.wasm", "kernels-shared.wasm", "kernels-shared-relaxed.wasm"];

for (const build of BUILDS) {
  test(`gemm (${build}): every transpose / bias / relu / accumulate combination, edge sizes, row ranges`, (t) => {
    const h = loadHarness(build);
    if (!h) return t.skip(`dist/wasm/${build} not built`);
    // Sizes straddle the 4-row and 8-column blocks and the 256-deep / 256-wide packing blocks.
    const sizes: [number, number, number][] = [
      [1, 1, 1],
      [3, 5, 7],
      [4, 8, 8],
      [5, 9, 17],
      [13, 1, 9],
      [8, 257, 24],
      [9, 31, 263],
      [17, 300, 5],
      [6, 0, 10],
    ];
    let seed = 1;
    for (const [M, K, N] of sizes) {
      for (let v = 0; v < 16; v++) {
        const transA = v & 1,
          transB = (v >> 1) & 1,
          act = (v >> 2) & 1,
          accumulate = (v >> 3) & 1;
        check(h, { M, K, N, transA, transB, act, accumulate, bias: (v + M) % 3 !== 0, r0: 0, r1: M }, seed++);
      }
      // Row ranges: a part in the middle, an empty one, and a range running past M (clamped).
      check(
        h,
        { M, K, N, transA: 1, transB: 0, act: 0, accumulate: 0, bias: true, r0: M >> 1, r1: M - (M >> 2) },
        seed++,
      );
      check(h, { M, K, N, transA: 0, transB: 1, act: 1, accumulate: 1, bias: false, r0: M, r1: M }, seed++);
      check(h, { M, K, N, transA: 0, transB: 0, act: 0, accumulate: 0, bias: false, r0: 0, r1: M + 5 }, seed++);
    }
  });

  test(`gemm (${build}): rows split at any point give the same bits as one call`, (t) => {
    const h = loadHarness(build);
    if (!h) return t.skip(`dist/wasm/${build} not built`);
    const M = 23,
      K = 300,
      N = 19;
    const r = rng(7);
    for (const [transA, transB] of [
      [0, 0],
      [1, 0],
      [0, 1],
      [1, 1],
    ]) {
      h.reset();
      const a = h.put(Float32Array.from({ length: M * K }, r)),
        b = h.put(Float32Array.from({ length: K * N }, r));
      const bias = h.put(Float32Array.from({ length: N }, r));
      const whole = h.alloc(M * N),
        parts = h.alloc(M * N);
      h.exports.gemm(a, b, whole, bias, M, K, N, transA, transB, 1, 0, 0, M);
      const ref = h.get(whole, M * N);
      for (const split of [1, 3, 5, 11, 22]) {
        h.exports.gemm(a, b, parts, bias, M, K, N, transA, transB, 1, 0, 0, split);
        h.exports.gemm(a, b, parts, bias, M, K, N, transA, transB, 1, 0, split, M);
        assert.deepEqual(h.get(parts, M * N), ref, `split at row ${split} (transA ${transA}, transB ${transB})`);
      }
    }
  });
}

for (const build of BUILDS) {
  test(`gemmColumns (${build}): column panels split anywhere give gemm's bits, the rest of C untouched`, (t) => {
    const h = loadHarness(build);
    if (!h) return t.skip(`dist/wasm/${build} not built`);
    const r = rng(13);
    // N straddles the 8-column panels (a narrow last panel) and the 256-wide packing block; N = 8 is one panel.
    const shapes: [number, number, number][] = [
      [7, 300, 263],
      [13, 33, 8],
      [5, 257, 20],
    ];
    for (const [M, K, N] of shapes) {
      const panels = Math.ceil(N / 8);
      for (let v = 0; v < 16; v++) {
        const transA = v & 1,
          transB = (v >> 1) & 1,
          act = (v >> 2) & 1,
          accumulate = (v >> 3) & 1;
        h.reset();
        const a = h.put(Float32Array.from({ length: M * K }, r)),
          b = h.put(Float32Array.from({ length: K * N }, r)),
          bias = v % 3 ? h.put(Float32Array.from({ length: N }, r)) : 0;
        const C0 = Float32Array.from({ length: M * N }, r);
        const whole = h.put(C0),
          parts = h.put(C0);
        h.exports.gemm(a, b, whole, bias, M, K, N, transA, transB, act, accumulate, 0, M);
        const ref: Float32Array = h.get(whole, M * N);
        const cut = Math.min(panels, 1 + (v % panels));
        h.exports.gemmColumns(a, b, parts, bias, M, K, N, transA, transB, act, accumulate, cut, panels);
        const half: Float32Array = h.get(parts, M * N);
        for (let i = 0; i < M * N; i++) {
          const j = i % N;
          assert.equal(half[i], j >= 8 * cut ? ref[i] : C0[i], `panels [${cut}, ${panels}) element ${i} (case ${v})`);
        }
        h.exports.gemmColumns(a, b, parts, bias, M, K, N, transA, transB, act, accumulate, 0, cut);
        assert.deepEqual(h.get(parts, M * N), ref, `M ${M} K ${K} N ${N} case ${v}, cut at panel ${cut}`);
      }
    }
  });
}

test("gemm: the relaxed-SIMD build agrees with the SIMD128 build to float32 rounding", (t) => {
  const plain = loadHarness("kernels.wasm"),
    relaxed = loadHarness("kernels-relaxed.wasm");
  if (!plain || !relaxed) return t.skip("relaxed build not built");
  const M = 37,
    K = 513,
    N = 45;
  const r = rng(3);
  const A = Float32Array.from({ length: M * K }, r),
    B = Float32Array.from({ length: K * N }, r);
  const out = [plain, relaxed].map((h) => {
    const c = h.alloc(M * N);
    h.exports.gemm(h.put(A), h.put(B), c, 0, M, K, N, 0, 0, 0, 0, 0, M);
    return h.get(c, M * N);
  });
  const flag = (h: WasmHarness) =>
    (h.exports as unknown as { KERNEL_RELAXED: WebAssembly.Global }).KERNEL_RELAXED.value;
  assert.equal(flag(plain), 0);
  assert.equal(flag(relaxed), 1);
  for (let i = 0; i < M * N; i++)
    assert.ok(Math.abs(out[0][i] - out[1][i]) < 1e-4, `element ${i}: ${out[0][i]} vs ${out[1][i]}`);
});

test("wasm runtime: two-thread gemm equals one thread bit for bit, and wasmMatmul still works", async (t) => {
  const { wasmRuntime, wasmGemm, wasmMatmul, kernelVariant } = await import("../src/engine/wasmKernels.js");
  const rt = wasmRuntime();
  if (!rt) return t.skip("wasm kernels not available");
  assert.equal(kernelVariant(), rt.variant);
  if (rt.threads === 2) {
    for (let i = 0; i < 100 && !rt.helperReady(); i++) await new Promise((res) => setTimeout(res, 50));
    assert.ok(rt.helperReady(), "the helper thread started");
  }
  const M = 203,
    K = 301,
    N = 77; // above the parallel threshold
  const r = rng(11);
  const A = Float32Array.from({ length: M * K }, r),
    B = Float32Array.from({ length: K * N }, r);
  const bias = Float32Array.from({ length: N }, r);
  const need = rt.heapBase + 4 * (M * K + K * N + N + 2 * M * N) + 64;
  if (rt.memory.buffer.byteLength < need) rt.memory.grow(Math.ceil((need - rt.memory.buffer.byteLength) / 65536));
  let top = rt.heapBase;
  const put = (x: Float32Array): number => {
    const p = top;
    new Float32Array(rt.memory.buffer, p, x.length).set(x);
    top = (top + x.length * 4 + 15) & ~15;
    return p;
  };
  const a = put(A),
    b = put(B),
    bp = put(bias),
    c1 = put(new Float32Array(M * N)),
    c2 = put(new Float32Array(M * N));
  for (const [transA, transB] of [
    [false, false],
    [true, false],
    [false, true],
  ]) {
    wasmGemm(rt, a, b, c1, M, K, N, { transA, transB, bias: bp, relu: true });
    (rt.exports.gemm as (...x: number[]) => void)(a, b, c2, bp, M, K, N, transA ? 1 : 0, transB ? 1 : 0, 1, 0, 0, M);
    assert.deepEqual(new Float32Array(rt.memory.buffer, c1, M * N), new Float32Array(rt.memory.buffer, c2, M * N));
  }
  const C = new Float32Array(M * N);
  assert.ok(wasmMatmul(A, B, C, M, K, N));
  for (let i = 0; i < M; i += 17) {
    for (let j = 0; j < N; j += 5) {
      let s = 0;
      for (let k = 0; k < K; k++) s += A[i * K + k] * B[k * N + j];
      assert.ok(Math.abs(C[i * N + j] - s) < 1e-4, `C[${i},${j}]`);
    }
  }
});

test("wasm loader: environment switches pick the build (GCX_THREADS=1, GCX_KERNELS=plain, GCX_NO_WASM=1)", async () => {
  const { execFileSync } = await import("node:child_process");
  const mod = new URL("../src/engine/wasmKernels.js", import.meta.url).href;
  // A child process (never this library) sets the relaxed-SIMD flag first, as the CLI does.
  const script = `import("node:v8").then((v8) => { v8.setFlagsFromString("--experimental-wasm-relaxed-simd"); return import(${JSON.stringify(mod)}); })
    .then((K) => { const rt = K.wasmRuntime(); console.log(JSON.stringify(rt ? [rt.variant, rt.threads] : null)); process.exit(0); });`;
  const run = (env: Record<string, string>): unknown =>
    JSON.parse(
      execFileSync(process.execPath, ["--input-type=module", "-e", script], {
        env: { ...process.env, GCX_THREADS: "", GCX_KERNELS: "", GCX_NO_WASM: "", ...env },
      }).toString(),
    );
  const twoCores = (await import("node:os")).cpus().length >= 2;
  assert.deepEqual(run({}), ["wasm-relaxed-fma", twoCores ? 2 : 1]);
  assert.deepEqual(run({ GCX_THREADS: "1" }), ["wasm-relaxed-fma", 1]);
  assert.deepEqual(run({ GCX_KERNELS: "plain" }), ["wasm-simd128", twoCores ? 2 : 1]);
  assert.equal(run({ GCX_NO_WASM: "1" }), null);
});
