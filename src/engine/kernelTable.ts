/**
 * The types of the backend interface (see backend.ts): a backend, and the table of native kernels it may provide.
 * Kept apart from backend.ts so that backend implementations depend on these types only.
 */
import type { Data, DType, IndexStorage, Storage } from "./storage.js";
import type { WasmWindow } from "./wasmKernels.js";

/**
 * Kernels a backend may implement natively. Each returns false (or null) when it does not handle the call (a dtype
 * or size it lacks, or memory it cannot get). On a host backend (`device` false) the caller then runs the JS
 * reference loop (reference.ts) on the same arrays; on a device backend a missing or declining kernel makes the op
 * throw `<op>: not available on the <name> backend` — no JS loop ever runs on device storage.
 * Arrays are row-major; outputs are written completely (never accumulated into). Storage parameters receive the
 * backend's own storage (host backends narrow them to typed arrays); index parameters may be host Int32Arrays
 * (indices computed from shapes alone, which a device backend uploads) or indices the device computed.
 * Every entry here has a JS reference in reference.ts, and the test double `strict` (backends/strict.ts)
 * implements all of them, so this list is the complete set of per-element work the engine does.
 */
export interface KernelTable {
  // ---- Dense algebra ----
  /** C[M,N] = op(A)·op(B), op(A) = Aᵀ when transA (A stored [K,M]), op(B) = Bᵀ when transB (B stored [N,K]). */
  gemm?: (
    A: Storage,
    B: Storage,
    C: Storage,
    M: number,
    K: number,
    N: number,
    transA: boolean,
    transB: boolean,
  ) => boolean;
  /** out = act(x·Wᵀ + b) for x [M, K], W [N, K], b [N]; act relu when `relu`, else none (a dense layer in one call). */
  linear?: (
    x: Storage,
    W: Storage,
    b: Storage,
    out: Storage,
    M: number,
    K: number,
    N: number,
    relu: boolean,
  ) => boolean;
  /** out[N,M] = x[M,N]ᵀ. */
  transpose?: (x: Storage, out: Storage, M: number, N: number) => boolean;

  // ---- Elementwise ----
  /** out = a ∘ b elementwise (same length). */
  binary?: (name: BinaryName, a: Storage, b: Storage, out: Storage) => boolean;
  /** out = f(x) elementwise. */
  unary?: (name: UnaryName, x: Storage, out: Storage) => boolean;
  /** out = x·s (no added zero: −0 stays −0). */
  scale?: (x: Storage, out: Storage, s: number) => boolean;
  /** out = alpha·x + beta. */
  affine?: (x: Storage, out: Storage, alpha: number, beta: number) => boolean;
  /** out[i] = value for every i. */
  fill?: (out: Storage, value: number) => boolean;
  /** out = x, converting precision when their dtypes differ (same length). */
  copy?: (x: Storage, out: Storage) => boolean;
  /** out = x^p (exact squares and square roots for p = 2, ±0.5; 1/x for p = −1; else Math.pow). */
  powScalar?: (x: Storage, out: Storage, p: number) => boolean;
  /** mask = [x > 0] (1 or 0). */
  reluMask?: (x: Storage, mask: Storage) => boolean;
  /** out = max(x, 0) and mask = [x > 0]. */
  relu?: (x: Storage, out: Storage, mask: Storage) => boolean;
  /** mask = 1 where x > 0 else alpha; out = x·mask. */
  leakyRelu?: (x: Storage, out: Storage, mask: Storage, alpha: number) => boolean;
  /**
   * PyTorch softplus: out = log(1 + e^{βx})/β, or x where βx > threshold; mask = 1 where the log branch is used,
   * else 0.
   */
  softplus?: (x: Storage, out: Storage, mask: Storage, beta: number, threshold: number) => boolean;
  /** out[i, j] = x[i, j] + v[j] for x [rows, cols]. */
  addRowVector?: (x: Storage, v: Storage, out: Storage, rows: number, cols: number) => boolean;

  // ---- Broadcasting ----
  /** out = a ∘ b over outShape with numpy broadcasting (strides in elements, 0 on broadcast axes); op 0 add, 1 sub, 2 mul, 3 div. */
  broadcastBinary?: (
    op: number,
    a: Storage,
    aStrides: readonly number[],
    b: Storage,
    bStrides: readonly number[],
    out: Storage,
    outShape: readonly number[],
  ) => boolean;
  /** out (of outShape) = x read through broadcast strides xStrides (0 on repeated axes). */
  broadcastCopy?: (x: Storage, xStrides: readonly number[], out: Storage, outShape: readonly number[]) => boolean;
  /**
   * Adjoint of broadcastCopy: out[k] = Σ of the x elements (x of xShape) that outStrides (broadcast strides of
   * out's shape against xShape) map to k, accumulated in float64 in x's row-major order.
   */
  sumToShape?: (x: Storage, xShape: readonly number[], out: Storage, outStrides: readonly number[]) => boolean;

  // ---- Reductions ----
  /** out[j] = Σ_i x[i, j] accumulated in float64 in row order (x [rows, cols]): sumTo over leading axes. */
  sumColumns64?: (x: Storage, out: Storage, rows: number, cols: number) => boolean;
  /** out[j] = Σ_i x[i, j] (x [rows, cols]). */
  sumColumns?: (x: Storage, out: Storage, rows: number, cols: number) => boolean;
  /** out[i] = Σ_j x[i, j]. */
  sumRows?: (x: Storage, out: Storage, rows: number, cols: number) => boolean;
  /** out[0] = Σ x accumulated in float64 (out has one value). */
  sum?: (x: Storage, out: Storage) => boolean;
  /** Row-wise softmax of x [rows, cols]. */
  softmaxRows?: (x: Storage, out: Storage, rows: number, cols: number) => boolean;
  /** Row-wise log Σ exp of x [rows, cols] → [rows]. */
  logSumExpRows?: (x: Storage, out: Storage, rows: number, cols: number) => boolean;

  // ---- Indexing and layout ----
  /** out[i] = x[idx[i]] (out.length = idx.length). */
  gather?: (x: Storage, idx: IndexStorage, out: Storage) => boolean;
  /** out = 0, then out[idx[i]] += g[i] for i in order (the adjoint of gather). */
  scatterAdd?: (g: Storage, idx: IndexStorage, out: Storage) => boolean;
  /** out = x with its axes permuted: result axis i is x's axis perm[i] (x of shape `shape`). */
  permute?: (x: Storage, out: Storage, shape: readonly number[], perm: readonly number[]) => boolean;
  /** Concatenation along the last axis: xs[k] is [rows, widths[k]], out is [rows, Σ widths]. */
  concatLastAxis?: (xs: readonly Storage[], widths: readonly number[], rows: number, out: Storage) => boolean;
  /**
   * Constant padding of NHWC x (shape [n,h,w,c]) into out [n, h+top+bottom, w+left+right, c]; padded positions get
   * value. padding is [top, left, bottom, right].
   */
  pad2d?: (x: Storage, out: Storage, shape: readonly number[], padding: readonly number[], value: number) => boolean;
  /** Adjoint of pad2d: out = x (shape [n,H,W,c]) without `padding` on the H and W axes. */
  crop2d?: (x: Storage, out: Storage, shape: readonly number[], padding: readonly number[]) => boolean;

  // ---- Convolution and pooling (NHWC) ----
  /** Patches of channels [c0, c0+cg) of x into cols [n·outH·outW, kh·kw·cg] (order ky, kx, c); zero in padding. */
  im2col?: (x: Storage, cols: Storage, g: ConvWindow) => boolean;
  /** Adjoint of im2col: sums cols into channels [c0, c0+cg) of x [n,h,w,c] (other channels 0). */
  col2im?: (cols: Storage, x: Storage, g: ConvWindow) => boolean;
  /**
   * Convolution of NHWC images with weights [cout, kh, kw, c] (one group), geometry as kernels.ts `convGeometry`:
   * "forward" y = conv(a = x, b = w); "input" out = dx from (a = dy, b = w); "filter" out = dw from (a = x, b = dy).
   */
  conv?: (
    which: "forward" | "input" | "filter",
    a: Storage,
    b: Storage,
    out: Storage,
    g: PoolWindow,
    cout: number,
  ) => boolean;
  /**
   * The forward convolution (one group) with a bias per output channel added after the sum and, when `relu`, the
   * clamp max(·, 0): out = act(conv(x, w) + bias), the values of conv then a broadcast add then relu.
   */
  convBiasAct?: (
    x: Storage,
    w: Storage,
    bias: Storage,
    out: Storage,
    g: PoolWindow,
    cout: number,
    relu: boolean,
  ) => boolean;
  /**
   * Max pooling of NHWC x (padding counts as −∞): values y and flat argmax indices idx into x (first maximum in
   * scan order; a NaN wins). The window must not lie wholly in the padding (callers check the geometry first).
   */
  maxPool?: (x: Storage, y: Storage, idx: IndexStorage, g: PoolWindow) => boolean;
  /**
   * Adjoint of maxPool (max pooling's input gradient): dx = 0, then dx[idx[o]] += dy[o] for every output o in order
   * (idx from `maxPool`, flat into dx of g's input shape; −1 skipped): scatterAdd's sums with the pooling geometry.
   */
  maxPoolBackward?: (dy: Storage, idx: IndexStorage, dx: Storage, g: PoolWindow) => boolean;
  /**
   * Average pooling with zero padding: out[o] = (Σ of window o's input elements)/divisor, divisor kh·kw when
   * countIncludePad, else the number of input elements in the window (reference: kernels.ts `avgPoolWindows`).
   */
  avgPool?: (x: Storage, out: Storage, g: PoolWindow, countIncludePad: boolean) => boolean;
  /** Adjoint of avgPool: dx = 0, then every window o spreads dy[o]/divisor over its input elements. */
  avgPoolBackward?: (dy: Storage, dx: Storage, g: PoolWindow, countIncludePad: boolean) => boolean;
  /** Mean over the hw positions of x [n, hw, c] → out [n, c]. */
  globalAvgPool?: (x: Storage, out: Storage, n: number, hw: number, c: number) => boolean;
  /** Adjoint of globalAvgPool: out [n, hw, c] = g [n, c] / hw at every position. */
  spreadMean?: (g: Storage, out: Storage, n: number, hw: number, c: number) => boolean;

  // ---- Normalization ----
  /**
   * BatchNorm with fixed statistics over the last axis of x [rows, C]: out[r, c] = (x[r, c] − mean[c])·k[c] + β[c],
   * rounded to the storage precision after each operation (float32: the same bits as broadcast sub, mul, add in turn).
   */
  bnApply?: (x: Storage, mean: Storage, k: Storage, beta: Storage, out: Storage, rows: number, C: number) => boolean;
  /**
   * BatchNorm in training over the last axis of float32 x [rows, C], statistics of the batch, in two passes:
   * mean[c] = fl32(fl32(Σ_r x[r, c])·(1/rows)) and variance[c] = fl32(fl32(Σ_r fl32(fl32(x − mean)²))·(1/rows)) (each
   * sum accumulated in float64 over rows in order), k[c] = fl32(γ·fl32(1/√fl32(var + eps))), then
   * out[r, c] = (x − mean)·k + β rounded after each operation (as bnApply). Writes mean, variance (both [C]) and out.
   */
  batchNormForward?: (
    x: Storage,
    gamma: Storage,
    beta: Storage,
    mean: Storage,
    variance: Storage,
    out: Storage,
    rows: number,
    C: number,
    eps: number,
  ) => boolean;
  /**
   * The closed-form first-order backward of {@link KernelTable.batchNormForward} for cotangent g [rows, C] (float32),
   * with the forward's mean and variance: per channel Σg and Σg·fl32(x − mean) (float64 over rows in order, stored
   * float32); in float64 then stored float32, s² = 1/(var + eps), s = √s², k = γ·s, b = −k·Σg/rows,
   * q = −k·s²·Σg(x − mean)/rows, dγ = s·Σg(x − mean), dβ = Σg; dx[r, c] = (k·g + b) + q·fl32(x − mean), each
   * operation rounded to float32.
   */
  batchNormBackward?: (
    g: Storage,
    x: Storage,
    mean: Storage,
    variance: Storage,
    gamma: Storage,
    dx: Storage,
    dgamma: Storage,
    dbeta: Storage,
    rows: number,
    C: number,
    eps: number,
  ) => boolean;

  // ---- Optimizer updates ----
  /** out = c·a + b·d (d null: c·a). */
  axpby?: (c: number, a: Storage, b: number, d: Storage | null, out: Storage) => boolean;
  /** Adam's moments and update (updates.ts `adamMoments`), written to m2, v2, u. */
  adam?: (
    g: Storage,
    m: Storage,
    v: Storage,
    m2: Storage,
    v2: Storage,
    u: Storage,
    lr: number,
    b1: number,
    b2: number,
    c1: number,
    c2: number,
    eps: number,
  ) => boolean;

  // ---- Fused measures ----
  /**
   * out[e] = ‖∂g(x_e)/∂x_e‖_F² for a small MLP g (x [n, d]; layers with W [out, in] and b [out]; hidden activation
   * 0 identity, 1 relu, 2 tanh; linear output), all layers in one call. out is float64 on host backends.
   */
  mlpJacobianSqNorms?: (x: Storage, d: number, layers: readonly DenseLayer[], act: 0 | 1 | 2, out: Storage) => boolean;
}

/** The names of the kernel table's entries. */
export type KernelName = keyof KernelTable;

/** Elementwise functions a backend may run natively. */
export type UnaryName = "exp" | "tanh" | "sigmoid" | "erf" | "silu" | "geluErf" | "geluTanh";
/** Elementwise binary operations a backend may run natively. */
export type BinaryName = "add" | "sub" | "mul" | "div";

/** A dense layer for fused kernels: W [outSize, inSize] row-major, b [outSize]. */
export interface DenseLayer {
  w: Storage;
  b: Storage;
  inSize: number;
  outSize: number;
}

/** A pooling or convolution window over NHWC data [n, h, w, c] (PyTorch semantics; padded positions never win a max). */
export type PoolWindow = WasmWindow;

/** A window reading the channel range [c0, c0 + cg) of the input (one group of a grouped convolution). */
export interface ConvWindow extends PoolWindow {
  c0: number;
  cg: number;
  padBottom: number;
  padRight: number;
}

/** A scope's result kept resident by `Backend.scopeKept` / `keptScope`. */
export interface Kept<T> {
  /** The result, its storage still in the backend's memory. */
  value: T;
  /** Frees that storage (once; later calls do nothing): nothing may use `value` afterwards. */
  drop: () => void;
}

/**
 * An engine backend: where tensor storage lives and which kernels run (see the module comment of backend.ts).
 *
 * Host backends (`device` false: js, wasm) store values in typed arrays that `tensor.data` reads synchronously.
 * Device backends (`device` true: webgpu, the test double `strict`) store values elsewhere; they implement
 * `upload` and `read`, every kernel the ops need (a missing one makes that op throw, never fall back), and `scope`.
 */
export interface Backend {
  /** "js" | "wasm" | "webgpu" | "strict" (tests). */
  readonly name: string;
  /** The kernel variant, e.g. "js", "wasm-simd128", "wasm-relaxed-fma": results may differ between variants. */
  readonly variant: string;
  /** True when storage is not host memory (a GPU buffer): values leave it only through `read`. */
  readonly device: boolean;
  /**
   * Storage for n values, zeroed unless `zero` is false: then its contents are unspecified (the caller's kernel
   * writes every value; a backend may zero it anyway). Device backends may refuse float64 with a RangeError.
   */
  alloc(dtype: DType, n: number, zero?: boolean): Storage;
  /**
   * Int32 storage for n indices, contents unspecified until a kernel writes them (max-pooling argmax); device
   * backends implement it, host ones default to Int32Array.
   */
  allocIndices?(n: number): IndexStorage;
  /** New storage holding a copy of host values (tensor(), full(), parameters, batches). Device backends must have it. */
  upload?(values: Data): Storage;
  /** The values of storage as a new host array, after the work queued before it (device backends must have it). */
  read?(s: Storage): Promise<Data>;
  /**
   * Host storage copied into the memory of the open scope, where kernels use it in place (optional; wasm): for a
   * value several kernels of a scope read, one copy instead of one staging copy per call. Returns `s` itself when
   * there is nothing to gain (no scope open, already there, float64).
   */
  adopt?(s: Storage): Storage;
  /** Frees storage now (optional; scopes reclaim what they allocated anyway). */
  release?(s: Storage): void;
  /** Native kernels of this backend. */
  readonly kernels: KernelTable;
  /**
   * Runs fn with a storage scope: what fn allocates is reclaimed when it returns, except what its result holds.
   * Host backends copy the result's tensors to the JS heap (without graphs); device backends keep the result's
   * storage on the device (moved to the enclosing scope, or made long-lived at top level) and cut its graphs.
   */
  scope<T>(fn: () => T): T;
  /**
   * Like `scope`, but the result's storage stays where it is resident (no copy to the JS heap) until `drop()`:
   * for state one call hands to the next (a training loop's parameters and optimizer state), so the next call
   * uses it in place. Using the result after `drop()` is a bug. Optional: `keptScope` runs `scope` without it.
   */
  scopeKept?<T>(fn: () => T): Kept<T>;
  /** Runs fn with its allocations outside any scope (long-lived caches built while a scope is open). */
  unscoped<T>(fn: () => T): T;
}
