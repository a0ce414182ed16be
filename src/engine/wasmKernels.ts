/**
 * Loads the WebAssembly SIMD kernels (built from assembly/kernels.ts) and exposes them on Float32Arrays.
 * Measured ~9x faster than the pure-JS matmul here (docs/decisions/0002-wasm-matmul.md). When the module is
 * missing or GCX_NO_WASM=1 is set, callers fall back to the JS kernels.
 *
 * Environment-agnostic: under Node the module reads dist/wasm/kernels.wasm itself (node:fs is imported
 * dynamically, behind a runtime check, so bundlers for the browser never see it); in a browser the page fetches
 * the bytes and hands them to `initWasmKernels` (web/src/wasm.ts). Until then the JS kernels are used.
 */

import { startThreadedKernels, type ThreadedKernels } from "./wasmThreads.js";

interface Exports {
  memory: WebAssembly.Memory;
  matmul(a: number, b: number, c: number, m: number, k: number, n: number): void;
}

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

// Specifiers held in variables so that bundlers neither resolve node:fs nor emit kernels.wasm as an asset.
const NODE_FS = "node:fs";
// dist/src/engine/wasmKernels.js → dist/wasm/kernels.wasm
const WASM_FROM_HERE = "../../wasm/kernels.wasm";

const NODE_MODULE = "node:module";
const SHARED_WASM_FROM_HERE = "../../wasm/kernels-shared.wasm";

const nodeFs: NodeFs | null = isNode ? ((await import(/* @vite-ignore */ NODE_FS)) as NodeFs) : null;
const nodeRequire: ((id: string) => unknown) | null = isNode
  ? ((await import(/* @vite-ignore */ NODE_MODULE)) as { createRequire(url: string): (id: string) => unknown }).createRequire(import.meta.url)
  : null;

let exportsCache: Exports | null | undefined;

function instantiate(bytes: BufferSource): Exports {
  const module = new WebAssembly.Module(bytes);
  const instance = new WebAssembly.Instance(module, { env: { abort: () => { throw new Error("wasm kernel abort"); } } });
  return instance.exports as unknown as Exports;
}

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

function load(): Exports | null {
  if (exportsCache !== undefined) return exportsCache;
  exportsCache = null;
  if (!nodeFs || nodeProcess?.env?.GCX_NO_WASM === "1") return null;
  // Under Node, prefer the shared-memory build run on two threads (wasmThreads.ts); fall back to one thread, and to
  // the JS kernels when WebAssembly memory cannot be reserved (e.g. under a virtual-memory limit, ulimit -v).
  let failure: unknown = null;
  const shared = new URL(SHARED_WASM_FROM_HERE, import.meta.url);
  if (nodeRequire && nodeProcess?.env?.GCX_THREADS !== "1" && nodeFs.existsSync(shared)) {
    try {
      threaded = startThreadedKernels(nodeFs.readFileSync(shared), nodeRequire);
    } catch (e) {
      failure = e;
      threaded = null;
    }
    if (threaded) {
      exportsCache = { memory: threaded.memory, matmul: threaded.matmul.bind(threaded) };
      return exportsCache;
    }
  }
  const url = new URL(WASM_FROM_HERE, import.meta.url);
  if (!nodeFs.existsSync(url)) return null;
  try {
    exportsCache = instantiate(nodeFs.readFileSync(url));
  } catch (e) {
    failure = e;
    exportsCache = null;
  }
  if (!exportsCache && failure) note("load", `WebAssembly kernels unavailable (${reason(failure)}); using the slower JavaScript kernels`);
  return exportsCache;
}

/**
 * Installs the kernels from the bytes of kernels.wasm (for environments without a file system, e.g. a browser
 * that fetched them). Replaces whatever was loaded before; throws if the bytes are not a valid module.
 */
export function initWasmKernels(bytes: BufferSource): void {
  exportsCache = instantiate(bytes);
}

export function wasmAvailable(): boolean {
  return load() !== null;
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
    note("grow", `WebAssembly memory could not grow to ${(bytes / 2 ** 30).toFixed(2)} GiB (${reason(e)}); large products use the slower JavaScript kernels`);
    return false;
  }
}

/** C = A·B for float32 row-major matrices; returns false when wasm is unavailable or the product does not fit its memory. */
export function wasmMatmul(A: Float32Array, B: Float32Array, C: Float32Array, M: number, K: number, N: number): boolean {
  const w = load();
  if (!w) return false;
  const aOff = 0, bOff = aOff + M * K * 4, cOff = bOff + K * N * 4;
  if (!ensureBytes(w.memory, cOff + M * N * 4)) return false;
  const heap = new Float32Array(w.memory.buffer);
  heap.set(A.subarray(0, M * K), aOff >> 2);
  heap.set(B.subarray(0, K * N), bOff >> 2);
  w.matmul(aOff, bOff, cOff, M, K, N);
  C.set(new Float32Array(w.memory.buffer, cOff, M * N));
  return true;
}
