import { test } from "node:test";
import assert from "node:assert/strict";
import { loadHarness } from "./wasmHarness.js";

test("wasm harness: matmul kernel on harness memory equals a float64 product", (t) => {
  const h = loadHarness();
  if (!h) return t.skip("dist/wasm/kernels.wasm not built");
  const M = 5,
    K = 7,
    N = 9;
  const A = Array.from({ length: M * K }, (_, i) => Math.sin(i + 1));
  const B = Array.from({ length: K * N }, (_, i) => Math.cos(2 * i + 1));
  const a = h.put(A),
    b = h.put(B),
    c = h.alloc(M * N);
  h.exports.matmul(a, b, c, M, K, N);
  const C = h.get(c, M * N);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += Math.fround(A[i * K + k]) * Math.fround(B[k * N + j]);
      assert.ok(Math.abs(C[i * N + j] - s) < 1e-5, `C[${i},${j}] = ${C[i * N + j]}, expected ${s}`);
    }
});
