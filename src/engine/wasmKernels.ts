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

function load(): Exports | null {
  if (exportsCache !== undefined) return exportsCache;
  exportsCache = null;
  if (!nodeFs || nodeProcess?.env?.GCX_NO_WASM === "1") return null;
  // Under Node, prefer the shared-memory build run on two threads (wasmThreads.ts); fall back to one thread.
  const shared = new URL(SHARED_WASM_FROM_HERE, import.meta.url);
  if (nodeRequire && nodeProcess?.env?.GCX_THREADS !== "1" && nodeFs.existsSync(shared)) {
    threaded = startThreadedKernels(nodeFs.readFileSync(shared), nodeRequire);
    if (threaded) {
      exportsCache = { memory: threaded.memory, matmul: threaded.matmul };
      return exportsCache;
    }
  }
  const url = new URL(WASM_FROM_HERE, import.meta.url);
  if (!nodeFs.existsSync(url)) return null;
  exportsCache = instantiate(nodeFs.readFileSync(url));
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

function ensureBytes(mem: WebAssembly.Memory, bytes: number): void {
  const have = mem.buffer.byteLength;
  if (have < bytes) mem.grow(Math.ceil((bytes - have) / 65536));
}

/** C = A·B for float32 row-major matrices; returns false when wasm is unavailable. */
export function wasmMatmul(A: Float32Array, B: Float32Array, C: Float32Array, M: number, K: number, N: number): boolean {
  const w = load();
  if (!w) return false;
  const aOff = 0, bOff = aOff + M * K * 4, cOff = bOff + K * N * 4;
  ensureBytes(w.memory, cOff + M * N * 4);
  const heap = new Float32Array(w.memory.buffer);
  heap.set(A.subarray(0, M * K), aOff >> 2);
  heap.set(B.subarray(0, K * N), bOff >> 2);
  w.matmul(aOff, bOff, cOff, M, K, N);
  C.set(new Float32Array(w.memory.buffer, cOff, M * N));
  return true;
}
