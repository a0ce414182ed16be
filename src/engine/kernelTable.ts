/**
 * The types of the backend interface (see backend.ts): a backend, and the table of native kernels it may provide.
 * Kept apart from backend.ts so that backend implementations depend on these types only.
 */
import type { Data, DType } from "./tensor.js";
import type { WasmWindow } from "./wasmKernels.js";

/**
 * Kernels a backend may implement natively. Each returns false (or null) when it does not handle the call (a dtype
 * or size it lacks, or memory it cannot get), and the caller then runs the JS reference loop on the same arrays.
 * Arrays are row-major; outputs are written completely (never accumulated into).
 */
export interface KernelTable {
  /** C[M,N] = op(A)·op(B), op(A) = Aᵀ when transA (A stored [K,M]), op(B) = Bᵀ when transB (B stored [N,K]). */
  gemm?: (A: Data, B: Data, C: Data, M: number, K: number, N: number, transA: boolean, transB: boolean) => boolean;
  /** out = act(x·Wᵀ + b) for x [M, K], W [N, K], b [N]; act relu when `relu`, else none (a dense layer in one call). */
  linear?: (x: Data, W: Data, b: Data, out: Data, M: number, K: number, N: number, relu: boolean) => boolean;
  /** out = a ∘ b elementwise (same length). */
  binary?: (name: BinaryName, a: Data, b: Data, out: Data) => boolean;
  /** out = f(x) elementwise. */
  unary?: (name: UnaryName, x: Data, out: Data) => boolean;
  /** out = x·s (no added zero: −0 stays −0). */
  scale?: (x: Data, out: Data, s: number) => boolean;
  /** out = alpha·x + beta. */
  affine?: (x: Data, out: Data, alpha: number, beta: number) => boolean;
  /** mask = [x > 0] (1 or 0). */
  reluMask?: (x: Data, mask: Data) => boolean;
  /** out = max(x, 0) and mask = [x > 0]. */
  relu?: (x: Data, out: Data, mask: Data) => boolean;
  /** out[i, j] = x[i, j] + v[j] for x [rows, cols]. */
  addRowVector?: (x: Data, v: Data, out: Data, rows: number, cols: number) => boolean;
  /** out = a ∘ b over outShape with numpy broadcasting (strides in elements, 0 on broadcast axes); op 0 add, 1 sub, 2 mul, 3 div. */
  broadcastBinary?: (
    op: number,
    a: Data,
    aStrides: readonly number[],
    b: Data,
    bStrides: readonly number[],
    out: Data,
    outShape: readonly number[],
  ) => boolean;
  /** out[j] = Σ_i x[i, j] accumulated in float64 in row order (x [rows, cols]): sumTo over leading axes. */
  sumColumns64?: (x: Data, out: Data, rows: number, cols: number) => boolean;
  /** out[j] = Σ_i x[i, j] (x [rows, cols]). */
  sumColumns?: (x: Data, out: Data, rows: number, cols: number) => boolean;
  /** out[i] = Σ_j x[i, j]. */
  sumRows?: (x: Data, out: Data, rows: number, cols: number) => boolean;
  /** Σ x (accumulated in float64), or null. */
  sum?: (x: Data) => number | null;
  /** Row-wise softmax of x [rows, cols]. */
  softmaxRows?: (x: Data, out: Data, rows: number, cols: number) => boolean;
  /** Row-wise log Σ exp of x [rows, cols] → [rows]. */
  logSumExpRows?: (x: Data, out: Data, rows: number, cols: number) => boolean;
  /** out = c·a + b·d (d null: c·a). */
  axpby?: (c: number, a: Data, b: number, d: Data | null, out: Data) => boolean;
  /** Adam's moments and update (updates.ts `adamMoments`), written to m2, v2, u. */
  adam?: (
    g: Data,
    m: Data,
    v: Data,
    m2: Data,
    v2: Data,
    u: Data,
    lr: number,
    b1: number,
    b2: number,
    c1: number,
    c2: number,
    eps: number,
  ) => boolean;
  /**
   * out[e] = ‖∂g(x_e)/∂x_e‖_F² for a small MLP g (x [n, d]; layers with W [out, in] and b [out]; hidden activation
   * 0 identity, 1 relu, 2 tanh; linear output), all layers in one call.
   */
  mlpJacobianSqNorms?: (
    x: Data,
    d: number,
    layers: readonly DenseLayer[],
    act: 0 | 1 | 2,
    out: Float64Array,
  ) => boolean;
  /**
   * Convolution of NHWC images with weights [cout, kh, kw, c] (one group), geometry as kernels.ts `convGeometry`:
   * "forward" y = conv(a = x, b = w); "input" out = dx from (a = dy, b = w); "filter" out = dw from (a = x, b = dy).
   */
  conv?: (which: "forward" | "input" | "filter", a: Data, b: Data, out: Data, g: PoolWindow, cout: number) => boolean;
  /** Max pooling of NHWC x: values y and flat argmax indices idx (first maximum in scan order). */
  maxPool?: (x: Data, y: Data, idx: Int32Array, g: PoolWindow) => boolean;
}

/** Elementwise functions a backend may run natively. */
export type UnaryName = "exp" | "tanh" | "sigmoid" | "erf" | "silu" | "geluErf" | "geluTanh";
/** Elementwise binary operations a backend may run natively. */
export type BinaryName = "add" | "sub" | "mul" | "div";

/** A dense layer for fused kernels: W [outSize, inSize] row-major, b [outSize]. */
export interface DenseLayer {
  w: Data;
  b: Data;
  inSize: number;
  outSize: number;
}

/** A pooling or convolution window over NHWC data [n, h, w, c] (PyTorch semantics; padded positions never win a max). */
export type PoolWindow = WasmWindow;

/** An engine backend: where tensor storage lives and which kernels run (see the module comment). */
export interface Backend {
  /** "js" | "wasm" (| "webgpu" later). */
  readonly name: string;
  /** The kernel variant, e.g. "js", "wasm-simd128", "wasm-relaxed-fma": results may differ between variants. */
  readonly variant: string;
  /** Storage for n values (zeroed). */
  alloc(dtype: DType, n: number): Data;
  /** Native kernels of this backend. */
  readonly kernels: KernelTable;
  /** Runs fn with a storage scope: what fn allocates is released when it returns (see `scope`). */
  scope<T>(fn: () => T): T;
  /** Runs fn with its allocations outside any scope (long-lived caches built while a scope is open). */
  unscoped<T>(fn: () => T): T;
}
