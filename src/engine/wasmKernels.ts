/**
 * Loads the WebAssembly kernels (built from assembly/kernels.ts) and exposes them: raw, as a runtime over the
 * module's linear memory (`wasmRuntime`, for tensors resident in wasm memory), and on Float32Arrays (`wasmMatmul`,
 * which copies operands in and out). When the module is missing or GCX_NO_WASM=1 is set, callers fall back to the
 * JS kernels.
 *
 * Four builds of one source (`npm run build:wasm`): kernels.wasm (SIMD128), kernels-relaxed.wasm (relaxed-SIMD
 * fused multiply-add), and their shared-memory twins for two threads. Under Node the best available one is picked:
 * relaxed SIMD when the runtime validates it (Node 20 needs the V8 flag --experimental-wasm-relaxed-simd, which only
 * the CLI may set; this library never changes host flags) unless GCX_KERNELS=plain, and two threads (wasmThreads.ts)
 * in the main thread unless GCX_THREADS=1. Relaxed and plain builds may differ in the last bits, so callers record
 * `kernelVariant()` with their results.
 *
 * Environment-agnostic: under Node the module reads dist/wasm/*.wasm itself (node:fs is imported dynamically,
 * behind a runtime check, so bundlers for the browser never see it); in a browser the page fetches the bytes
 * (`preferredKernelFile()` names the best one) and hands them to `initWasmKernels`; browser memory is not shared.
 */

import { startThreadedKernels, type KernelFn, type ThreadedKernels } from "./wasmThreads.js";

/** Which instruction set the loaded kernels multiply-add with. */
export type KernelVariant = "wasm-simd128" | "wasm-relaxed-fma";

/** The exported kernels this module calls by name (every export is reachable through `WasmRuntime.exports`). */
export interface KernelExports {
  memory?: WebAssembly.Memory;
  matmul(a: number, b: number, c: number, m: number, k: number, n: number): void;
  gemm?(
    a: number,
    b: number,
    c: number,
    bias: number,
    M: number,
    K: number,
    N: number,
    transA: number,
    transB: number,
    act: number,
    accumulate: number,
    r0: number,
    r1: number,
  ): void;
  heapBase?(): number;
  [name: string]: unknown;
}

/** A loaded kernel module over its linear memory. */
export interface WasmRuntime {
  /** The linear memory every byte offset refers to (a SharedArrayBuffer when threaded). */
  readonly memory: WebAssembly.Memory;
  /** The kernels, called on byte offsets into `memory`. */
  readonly exports: KernelExports;
  readonly variant: KernelVariant;
  /** 2 when a helper thread shares the work, else 1. */
  readonly threads: 1 | 2;
  /** First byte above the module's static data (kernel scratch): tensors must live at or above it. */
  readonly heapBase: number;
  /** Whether the helper thread is up (it starts asynchronously; until then, and after it fails, one thread runs). */
  helperReady(): boolean;
  /**
   * Runs a row-range kernel `name(...args, r0, r1)` over output rows [0, rows), on two threads when `work`
   * (multiply-adds, or any per-call cost in the same unit) reaches `parallelThreshold` and a helper is ready: the
   * rows are cut into up to `maxChunks` chunks (one per `chunkWork` of work, at least 2) that both threads claim.
   * The result is the same whatever the thread count.
   */
  parallel(name: string, args: readonly number[], rows: number, work?: number, maxChunks?: number): void;
}

/**
 * Smallest work (multiply-adds) shared by two threads: where decision 0004 measured a gain on a quiet 2-core box.
 * Under heavy load the second thread paid only from about 2^23 (decision 0008); the runner withdraws work the helper
 * has not started, so smaller shared calls lose little. Re-measure with `node dist/bench/kernels.js threads`.
 */
export const parallelThreshold = 1 << 20;

/** Work per chunk when a call is shared: small enough to balance a late helper, large enough to repay a claim. */
export const chunkWork = 1 << 21;

/** The slice of node:fs used here (typed locally so browser builds need no Node types). */
interface NodeFs {
  existsSync(path: URL): boolean;
  readFileSync(path: URL): Uint8Array<ArrayBuffer>;
}

interface NodeProcessLike {
  versions?: { node?: string };
  env?: Record<string, string | undefined>;
  stderr?: { write(s: string): unknown };
}

const nodeProcess = (globalThis as { process?: NodeProcessLike }).process;
const isNode = typeof nodeProcess?.versions?.node === "string";

// Specifiers held in variables so that bundlers neither resolve node:fs nor emit the .wasm files as assets.
const NODE_FS = "node:fs";
const NODE_MODULE = "node:module";
// dist/src/engine/wasmKernels.js → dist/wasm/
const WASM_DIR_FROM_HERE = "../../wasm/";

const nodeFs: NodeFs | null = isNode ? ((await import(/* @vite-ignore */ NODE_FS)) as NodeFs) : null;
const nodeRequire: ((id: string) => unknown) | null = isNode
  ? (
      (await import(/* @vite-ignore */ NODE_MODULE)) as { createRequire(url: string): (id: string) => unknown }
    ).createRequire(import.meta.url)
  : null;

/**
 * Whether this runtime validates relaxed-SIMD code: a 1-function module computing f32x4.relaxed_madd of three
 * zero vectors. Does not change any flag.
 */
export function relaxedSimdSupported(): boolean {
  const zero = [0xfd, 0x0c, ...new Array<number>(16).fill(0)]; // v128.const 0
  const bytes = new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00, // magic, version
    0x01,
    0x05,
    0x01,
    0x60,
    0x00,
    0x01,
    0x7b, // type: () → v128
    0x03,
    0x02,
    0x01,
    0x00, // one function of type 0
    0x0a,
    0x3d,
    0x01,
    0x3b,
    0x00,
    ...zero,
    ...zero,
    ...zero,
    0xfd,
    0x85,
    0x02,
    0x0b, // f32x4.relaxed_madd; end
  ]);
  try {
    return WebAssembly.validate(bytes);
  } catch {
    return false;
  }
}

/** GCX_KERNELS=plain forces the SIMD128 build even where relaxed SIMD is available. */
function relaxedWanted(): boolean {
  return nodeProcess?.env?.GCX_KERNELS !== "plain" && relaxedSimdSupported();
}

/** The build a page should fetch (from dist/wasm/): the relaxed-SIMD one where the browser validates it. */
export function preferredKernelFile(): "kernels.wasm" | "kernels-relaxed.wasm" {
  return relaxedWanted() ? "kernels-relaxed.wasm" : "kernels.wasm";
}

let runtimeCache: WasmRuntime | null | undefined;
let threaded: ThreadedKernels | null = null;

/** Notes shown once per process on stderr (Node) or the console: why a faster path is not used. */
const noted = new Set<string>();
function note(key: string, text: string): void {
  if (noted.has(key)) return;
  noted.add(key);
  if (nodeProcess?.stderr) nodeProcess.stderr.write(`gcx: note: ${text}\n`);
  else console.warn(`gcx: note: ${text}`);
}

function reason(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function variantOf(exps: Record<string, unknown>): KernelVariant {
  const g = exps.KERNEL_RELAXED as WebAssembly.Global | undefined;
  return g && typeof g === "object" && g.value === 1 ? "wasm-relaxed-fma" : "wasm-simd128";
}

function heapBaseOf(exps: KernelExports): number {
  return typeof exps.heapBase === "function" ? exps.heapBase() >>> 0 : 0;
}

/** A one-thread runtime over a module that owns its memory. */
function singleRuntime(bytes: BufferSource): WasmRuntime {
  const module = new WebAssembly.Module(bytes);
  const instance = new WebAssembly.Instance(module, {
    env: {
      abort: () => {
        throw new Error("wasm kernel abort");
      },
    },
  });
  const exps = instance.exports as unknown as KernelExports;
  const heapBase = heapBaseOf(exps);
  // The kernels' scratch lies below heapBase; the builds start with room for it, but make sure.
  if (exps.memory && exps.memory.buffer.byteLength < heapBase)
    exps.memory.grow(Math.ceil((heapBase - exps.memory.buffer.byteLength) / 65536));
  return {
    memory: exps.memory!,
    exports: exps,
    variant: variantOf(exps),
    threads: 1,
    heapBase,
    helperReady: () => false,
    parallel(name, args, rows) {
      const fn = exps[name];
      if (typeof fn !== "function") throw new Error(`wasm kernel ${name} is not exported`);
      (fn as KernelFn)(...args, 0, rows);
    },
  };
}

/** A two-thread runtime over shared memory. */
function threadedRuntime(t: ThreadedKernels): WasmRuntime {
  const exps = t.kernels as unknown as KernelExports;
  return {
    memory: t.memory,
    exports: exps,
    variant: variantOf(t.kernels),
    threads: 2,
    heapBase: heapBaseOf(exps),
    helperReady: () => t.helperReady(),
    parallel(name, args, rows, work = Infinity, maxChunks = 4) {
      const chunks = work >= parallelThreshold ? Math.max(2, Math.min(maxChunks, Math.floor(work / chunkWork))) : 0;
      t.run(name, args, rows, chunks);
    },
  };
}

function fileUrl(name: string): URL {
  return new URL(WASM_DIR_FROM_HERE + name, import.meta.url);
}

function load(): WasmRuntime | null {
  if (runtimeCache !== undefined) return runtimeCache;
  runtimeCache = null;
  if (!nodeFs || nodeProcess?.env?.GCX_NO_WASM === "1") return null;
  const relaxed = relaxedWanted();
  const pick = (base: string): URL | null => {
    const candidates = relaxed ? [`${base}-relaxed.wasm`, `${base}.wasm`] : [`${base}.wasm`];
    for (const name of candidates) {
      const url = fileUrl(name);
      if (nodeFs.existsSync(url)) return url;
    }
    return null;
  };
  // Prefer the shared-memory build run on two threads; fall back to one thread, and to the JS kernels when
  // WebAssembly memory cannot be reserved (e.g. under a virtual-memory limit, ulimit -v).
  let failure: unknown = null;
  const shared = pick("kernels-shared");
  if (nodeRequire && nodeProcess?.env?.GCX_THREADS !== "1" && shared) {
    try {
      threaded = startThreadedKernels(nodeFs.readFileSync(shared), nodeRequire);
    } catch (e) {
      failure = e;
      threaded = null;
    }
    if (threaded) {
      runtimeCache = threadedRuntime(threaded);
      return runtimeCache;
    }
  }
  const single = pick("kernels");
  if (!single) return null;
  try {
    runtimeCache = singleRuntime(nodeFs.readFileSync(single));
  } catch (e) {
    failure = e;
    runtimeCache = null;
  }
  if (!runtimeCache && failure)
    note("load", `WebAssembly kernels unavailable (${reason(failure)}); using the slower JavaScript kernels`);
  return runtimeCache;
}

/**
 * Installs the kernels from the bytes of one build (for environments without a file system, e.g. a browser that
 * fetched them; the memory is not shared and one thread runs). Replaces whatever was loaded before; throws if the
 * bytes are not a valid module for this runtime.
 */
export function initWasmKernels(bytes: BufferSource): void {
  runtimeCache = singleRuntime(bytes);
}

export function wasmAvailable(): boolean {
  return load() !== null;
}

/** The loaded kernel runtime, or null when the JS kernels are in use. */
export function wasmRuntime(): WasmRuntime | null {
  return load();
}

/** The instruction set of the loaded kernels, or null when the JS kernels are in use. */
export function kernelVariant(): KernelVariant | null {
  return load()?.variant ?? null;
}

/** Wasm memory is 32-bit addressed and the builds cap it at 65536 pages (4 GiB). */
const MAX_WASM_BYTES = 65536 * 65536;

/** Grows the memory to hold `bytes`; false when it cannot (too large, or the system refuses the memory). */
function ensureBytes(mem: WebAssembly.Memory, bytes: number): boolean {
  const have = mem.buffer.byteLength;
  if (have >= bytes) return true;
  if (bytes > MAX_WASM_BYTES) return false;
  try {
    mem.grow(Math.ceil((bytes - have) / 65536));
    return true;
  } catch (e) {
    note(
      "grow",
      `WebAssembly memory could not grow to ${(bytes / 2 ** 30).toFixed(2)} GiB (${reason(e)}); large products use the slower JavaScript kernels`,
    );
    return false;
  }
}

/**
 * C = act(op(A)·op(B) + bias) (or C += … with `accumulate`) on byte offsets into the runtime's memory, split across
 * threads when large. op(A) is M×K (A stored [K, M] when transA), op(B) K×N (B stored [N, K] when transB); bias 0 =
 * none, else N floats; act "relu" clamps at zero after the bias.
 */
export function wasmGemm(
  rt: WasmRuntime,
  a: number,
  b: number,
  c: number,
  M: number,
  K: number,
  N: number,
  o: { transA?: boolean; transB?: boolean; bias?: number; relu?: boolean; accumulate?: boolean } = {},
): void {
  const args = [
    a,
    b,
    c,
    o.bias ?? 0,
    M,
    K,
    N,
    o.transA ? 1 : 0,
    o.transB ? 1 : 0,
    o.relu ? 1 : 0,
    o.accumulate ? 1 : 0,
  ];
  if (byColumns(M, N)) rt.parallel("gemmColumns", args, Math.ceil(N / 8), M * K * N);
  else rt.parallel("gemm", args, M, M * K * N);
}

/**
 * Whether two threads share a product by column panels (gemmColumns: each packs only its half of op(B)) rather
 * than by rows (each packs all of it): for the few-row, wide products of small-batch layers (the MLP's 128 × 256 …
 * 784 products gained 3–10 % at two threads, issue 11). Both give the same bits.
 */
function byColumns(M: number, N: number): boolean {
  return N >= 64 && M <= 512;
}

/** C = A·B for float32 row-major matrices; returns false when wasm is unavailable or the product does not fit its memory. */
export function wasmMatmul(
  A: Float32Array,
  B: Float32Array,
  C: Float32Array,
  M: number,
  K: number,
  N: number,
): boolean {
  const w = load();
  if (!w) return false;
  const aOff = w.heapBase,
    bOff = aOff + ((M * K * 4 + 15) & ~15),
    cOff = bOff + ((K * N * 4 + 15) & ~15);
  if (!ensureBytes(w.memory, cOff + M * N * 4)) return false;
  const heap = new Float32Array(w.memory.buffer);
  heap.set(A.subarray(0, M * K), aOff >> 2);
  heap.set(B.subarray(0, K * N), bOff >> 2);
  if (typeof w.exports.gemm === "function") wasmGemm(w, aOff, bOff, cOff, M, K, N);
  else w.exports.matmul(aOff, bOff, cOff, M, K, N);
  C.set(new Float32Array(w.memory.buffer, cOff, M * N));
  return true;
}

/**
 * The window geometry the convolution and pooling kernels need (NHWC input [n, h, w, c], PyTorch semantics; the
 * engine's ConvGeometry from kernels.ts has these fields). Padding bottom/right is implied by outH/outW.
 */
export interface WasmWindow {
  n: number;
  h: number;
  w: number;
  c: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  padTop: number;
  padLeft: number;
  outH: number;
  outW: number;
}

function convArgs(g: WasmWindow, cout: number, groups: number): number[] {
  return [g.n, g.h, g.w, g.c, cout, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.padTop, g.padLeft, g.outH, g.outW, groups];
}

function poolArgs(g: WasmWindow): number[] {
  return [g.n, g.h, g.w, g.c, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.padTop, g.padLeft, g.outH, g.outW];
}

/**
 * y [n, outH, outW, cout] = act(conv(x, w) + bias) without an im2col matrix; w [cout, kh, kw, c/groups]; byte
 * offsets into the runtime's memory; split across threads by output pixels when large.
 */
export function wasmConv2dForward(
  rt: WasmRuntime,
  x: number,
  w: number,
  y: number,
  g: WasmWindow,
  cout: number,
  groups = 1,
  o: { bias?: number; relu?: boolean; accumulate?: boolean } = {},
): void {
  const rows = g.n * g.outH * g.outW;
  rt.parallel(
    "conv2dForward",
    [x, w, y, o.bias ?? 0, ...convArgs(g, cout, groups), o.relu ? 1 : 0, o.accumulate ? 1 : 0],
    rows,
    (rows * cout * g.kh * g.kw * g.c) / groups,
  );
}

/** dx [n, h, w, c] = the input gradient of wasmConv2dForward for dy [n, outH, outW, cout]; split by input pixels. */
export function wasmConv2dBackwardInput(
  rt: WasmRuntime,
  dy: number,
  w: number,
  dx: number,
  g: WasmWindow,
  cout: number,
  groups = 1,
  o: { accumulate?: boolean } = {},
): void {
  const rows = g.n * g.h * g.w;
  rt.parallel(
    "conv2dBackwardInput",
    [dy, w, dx, ...convArgs(g, cout, groups), o.accumulate ? 1 : 0],
    rows,
    (rows * cout * g.kh * g.kw * g.c) / groups,
  );
}

/**
 * How the filter gradient of a convolution is shared across threads: by columns of dw (kernel
 * conv2dBackwardFilterColumns over kh·kw·c/groups columns, in two slabs, so each thread gathers only its part of
 * every patch; four slabs measured slower, as each slab streams all of dy) when there are at least two panels of 8
 * columns, else by output channels (conv2dBackwardFilter over cout rows, in two halves and only for layers of 16
 * channels or more: each thread then gathers every patch). Both kernels compute the same numbers.
 */
export function filterGradientSplit(
  g: WasmWindow,
  cout: number,
  groups = 1,
): { kernel: "conv2dBackwardFilterColumns" | "conv2dBackwardFilter"; rows: number; chunks: number; shared: boolean } {
  const K = (g.kh * g.kw * g.c) / groups;
  if (K >= 16) return { kernel: "conv2dBackwardFilterColumns", rows: K, chunks: 2, shared: true };
  return { kernel: "conv2dBackwardFilter", rows: cout, chunks: 2, shared: cout >= 16 };
}

/** dw [cout, kh, kw, c/groups] = the weight gradient of wasmConv2dForward; split as filterGradientSplit says. */
export function wasmConv2dBackwardFilter(
  rt: WasmRuntime,
  x: number,
  dy: number,
  dw: number,
  g: WasmWindow,
  cout: number,
  groups = 1,
  o: { accumulate?: boolean } = {},
): void {
  const work = (g.n * g.outH * g.outW * cout * g.kh * g.kw * g.c) / groups;
  const split = filterGradientSplit(g, cout, groups);
  rt.parallel(
    split.kernel,
    [x, dy, dw, ...convArgs(g, cout, groups), o.accumulate ? 1 : 0],
    split.rows,
    split.shared ? work : 0,
    split.chunks,
  );
}

/**
 * The first pooling window (oy, ox) that lies wholly in the padding, or null. Max pooling and average pooling
 * without count_include_pad have no value there (the kernels write −∞ / index −1, or 0).
 */
export function emptyPoolWindow(g: WasmWindow): [number, number] | null {
  const emptyAt = (size: number, k: number, s: number, d: number, pad: number, out: number): number => {
    for (let o = 0; o < out; o++) {
      let inside = false;
      for (let t = 0; t < k && !inside; t++) {
        const i = o * s + t * d - pad;
        inside = i >= 0 && i < size;
      }
      if (!inside) return o;
    }
    return -1;
  };
  const oy = emptyAt(g.h, g.kh, g.sh, g.dh, g.padTop, g.outH),
    ox = emptyAt(g.w, g.kw, g.sw, g.dw, g.padLeft, g.outW);
  if (oy < 0 && ox < 0) return null;
  return [Math.max(oy, 0), Math.max(ox, 0)];
}

/** y and idx (int32 flat indices into x) [n, outH, outW, c] of max pooling; split by output pixels. */
export function wasmMaxPoolForward(rt: WasmRuntime, x: number, y: number, idx: number, g: WasmWindow): void {
  const rows = g.n * g.outH * g.outW;
  rt.parallel("maxPoolForward", [x, y, idx, ...poolArgs(g)], rows, rows * g.c * g.kh * g.kw);
}

/** dx = scatter-add of dy at idx (overwrites dx unless accumulate); split by images. */
export function wasmMaxPoolBackward(
  rt: WasmRuntime,
  dy: number,
  idx: number,
  dx: number,
  g: WasmWindow,
  o: { accumulate?: boolean } = {},
): void {
  rt.parallel(
    "maxPoolBackward",
    [dy, idx, dx, g.n, g.h, g.w, g.c, g.outH, g.outW, o.accumulate ? 1 : 0],
    g.n,
    g.n * g.outH * g.outW * g.c,
  );
}

/** Average pooling (divisor kh·kw when countIncludePad, else the elements inside the window); split by output pixels. */
export function wasmAvgPoolForward(
  rt: WasmRuntime,
  x: number,
  y: number,
  g: WasmWindow,
  countIncludePad: boolean,
): void {
  const rows = g.n * g.outH * g.outW;
  rt.parallel("avgPoolForward", [x, y, ...poolArgs(g), countIncludePad ? 1 : 0], rows, rows * g.c * g.kh * g.kw);
}

/** The adjoint of wasmAvgPoolForward (overwrites dx unless accumulate); split by images. */
export function wasmAvgPoolBackward(
  rt: WasmRuntime,
  dy: number,
  dx: number,
  g: WasmWindow,
  countIncludePad: boolean,
  o: { accumulate?: boolean } = {},
): void {
  rt.parallel(
    "avgPoolBackward",
    [dy, dx, ...poolArgs(g), countIncludePad ? 1 : 0, o.accumulate ? 1 : 0],
    g.n,
    g.n * g.outH * g.outW * g.c * g.kh * g.kw,
  );
}
