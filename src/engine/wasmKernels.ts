/**
 * Loads the WebAssembly SIMD kernels (built from assembly/kernels.ts) and exposes them on Float32Arrays.
 * Measured ~9x faster than the pure-JS matmul here (docs/decisions/0002-wasm-matmul.md). When the module is
 * missing or GCX_NO_WASM=1 is set, callers fall back to the JS kernels.
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

interface Exports {
  memory: WebAssembly.Memory;
  matmul(a: number, b: number, c: number, m: number, k: number, n: number): void;
}

let exportsCache: Exports | null | undefined;

function load(): Exports | null {
  if (exportsCache !== undefined) return exportsCache;
  exportsCache = null;
  if (process.env.GCX_NO_WASM === "1") return null;
  // dist/src/engine/wasmKernels.js → dist/wasm/kernels.wasm
  const path = fileURLToPath(new URL("../../wasm/kernels.wasm", import.meta.url));
  if (!existsSync(path)) return null;
  const module = new WebAssembly.Module(readFileSync(path));
  const instance = new WebAssembly.Instance(module, { env: { abort: () => { throw new Error("wasm kernel abort"); } } });
  exportsCache = instance.exports as unknown as Exports;
  return exportsCache;
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
