// WebAssembly SIMD kernels (AssemblyScript), compiled by `npm run build:wasm` to dist/wasm/kernels.wasm.
// Arguments are byte offsets into the module's linear memory; the JS side (src/engine/wasmKernels.ts) copies
// operands in and results out.

// C[M,N] = A[M,K] · B[K,N] (row-major f32). 4×8 register-blocked micro-kernel: eight f32x4 accumulators stay in
// registers over the whole k loop, and a K×8 panel of B stays in cache across row blocks.
@inline function kernel4x8(a: usize, b: usize, c: usize, K: i32, N: i32, lda: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  const ldb = <usize>N << 2;
  let bp = b, ap = a;
  for (let k = 0; k < K; k++) {
    const b0 = v128.load(bp), b1 = v128.load(bp, 16);
    let av = f32x4.splat(load<f32>(ap));
    c00 = f32x4.add(c00, f32x4.mul(av, b0)); c01 = f32x4.add(c01, f32x4.mul(av, b1));
    av = f32x4.splat(load<f32>(ap + lda));
    c10 = f32x4.add(c10, f32x4.mul(av, b0)); c11 = f32x4.add(c11, f32x4.mul(av, b1));
    av = f32x4.splat(load<f32>(ap + 2 * lda));
    c20 = f32x4.add(c20, f32x4.mul(av, b0)); c21 = f32x4.add(c21, f32x4.mul(av, b1));
    av = f32x4.splat(load<f32>(ap + 3 * lda));
    c30 = f32x4.add(c30, f32x4.mul(av, b0)); c31 = f32x4.add(c31, f32x4.mul(av, b1));
    bp += ldb;
    ap += 4;
  }
  v128.store(c, c00); v128.store(c, c01, 16);
  v128.store(c + ldb, c10); v128.store(c + ldb, c11, 16);
  v128.store(c + 2 * ldb, c20); v128.store(c + 2 * ldb, c21, 16);
  v128.store(c + 3 * ldb, c30); v128.store(c + 3 * ldb, c31, 16);
}

// One element C[i,j] by a plain dot product (edges).
@inline function dot1(a: usize, b: usize, K: i32, N: i32): f32 {
  let s: f32 = 0;
  const ldb = <usize>N << 2;
  for (let k = 0; k < K; k++) s += load<f32>(a + (<usize>k << 2)) * load<f32>(b + <usize>k * ldb);
  return s;
}

export function matmul(a: usize, b: usize, c: usize, M: i32, K: i32, N: i32): void {
  const lda = <usize>K << 2, ldc = <usize>N << 2;
  const M4 = M & ~3, N8 = N & ~7;
  for (let j = 0; j < N8; j += 8) {
    const bj = b + (<usize>j << 2);
    for (let i = 0; i < M4; i += 4) kernel4x8(a + <usize>i * lda, bj, c + <usize>i * ldc + (<usize>j << 2), K, N, lda);
    for (let i = M4; i < M; i++)
      for (let jj = j; jj < j + 8; jj++) store<f32>(c + <usize>i * ldc + (<usize>jj << 2), dot1(a + <usize>i * lda, b + (<usize>jj << 2), K, N));
  }
  for (let i = 0; i < M; i++)
    for (let jj = N8; jj < N; jj++) store<f32>(c + <usize>i * ldc + (<usize>jj << 2), dot1(a + <usize>i * lda, b + (<usize>jj << 2), K, N));
}

export { setThreadIndex, heapBase, KERNEL_RELAXED } from "./scratch";
export { gemm, gemmColumns } from "./gemm";
export * from "./conv";
export * from "./pool";
export * from "./elementwise";
export * from "./reduce";
export * from "./optim";
export * from "./norm";
export * from "./jacobian";

