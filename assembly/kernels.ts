// WebAssembly SIMD kernels (AssemblyScript), compiled by `npm run build:wasm` to dist/wasm/kernels.wasm.
// Arguments are byte offsets into the module's linear memory; the JS side (src/engine/wasmKernels.ts) copies
// operands in and results out.

// C[M,N] = A[M,K] · B[K,N], row-major float32. Four rows of A share each loaded 4-wide vector of B; groups of four
// zeros in A (common after ReLU) are skipped.
export function matmul(a: usize, b: usize, c: usize, M: i32, K: i32, N: i32): void {
  memory.fill(c, 0, <usize>(M * N) << 2);
  let i = 0;
  for (; i + 3 < M; i += 4) {
    const c0 = c + (<usize>(i * N) << 2), c1 = c0 + (<usize>N << 2), c2 = c1 + (<usize>N << 2), c3 = c2 + (<usize>N << 2);
    const a0 = a + (<usize>(i * K) << 2), a1 = a0 + (<usize>K << 2), a2 = a1 + (<usize>K << 2), a3 = a2 + (<usize>K << 2);
    for (let k = 0; k < K; k++) {
      const ko = <usize>k << 2;
      const s0 = load<f32>(a0 + ko), s1 = load<f32>(a1 + ko), s2 = load<f32>(a2 + ko), s3 = load<f32>(a3 + ko);
      if (s0 == 0 && s1 == 0 && s2 == 0 && s3 == 0) continue;
      const v0 = f32x4.splat(s0), v1 = f32x4.splat(s1), v2 = f32x4.splat(s2), v3 = f32x4.splat(s3);
      const bk = b + (<usize>(k * N) << 2);
      let j = 0;
      for (; j + 3 < N; j += 4) {
        const jo = <usize>j << 2;
        const bv = v128.load(bk + jo);
        v128.store(c0 + jo, f32x4.add(v128.load(c0 + jo), f32x4.mul(v0, bv)));
        v128.store(c1 + jo, f32x4.add(v128.load(c1 + jo), f32x4.mul(v1, bv)));
        v128.store(c2 + jo, f32x4.add(v128.load(c2 + jo), f32x4.mul(v2, bv)));
        v128.store(c3 + jo, f32x4.add(v128.load(c3 + jo), f32x4.mul(v3, bv)));
      }
      for (; j < N; j++) {
        const jo = <usize>j << 2;
        const bb = load<f32>(bk + jo);
        store<f32>(c0 + jo, load<f32>(c0 + jo) + s0 * bb);
        store<f32>(c1 + jo, load<f32>(c1 + jo) + s1 * bb);
        store<f32>(c2 + jo, load<f32>(c2 + jo) + s2 * bb);
        store<f32>(c3 + jo, load<f32>(c3 + jo) + s3 * bb);
      }
    }
  }
  for (; i < M; i++) {
    const ci = c + (<usize>(i * N) << 2), ai = a + (<usize>(i * K) << 2);
    for (let k = 0; k < K; k++) {
      const s = load<f32>(ai + (<usize>k << 2));
      if (s == 0) continue;
      const v = f32x4.splat(s);
      const bk = b + (<usize>(k * N) << 2);
      let j = 0;
      for (; j + 3 < N; j += 4) {
        const jo = <usize>j << 2;
        v128.store(ci + jo, f32x4.add(v128.load(ci + jo), f32x4.mul(v, v128.load(bk + jo))));
      }
      for (; j < N; j++) {
        const jo = <usize>j << 2;
        store<f32>(ci + jo, load<f32>(ci + jo) + s * load<f32>(bk + jo));
      }
    }
  }
}
