/**
 * Test harness for the raw WebAssembly kernels (assembly/*.ts → dist/wasm/*.wasm): instantiates a build on its own
 * memory and gives tests a bump allocator over it, so a kernel can be called on byte offsets and its output compared
 * with a JavaScript reference.
 */
import { readFileSync, existsSync } from "node:fs";

export interface WasmHarness {
  /** The module's exported kernels (numbers in, nothing out unless the kernel returns a value). */
  readonly exports: Record<string, (...args: number[]) => number | void>;
  readonly memory: WebAssembly.Memory;
  /** Copies `values` into fresh memory (16-byte aligned) and returns its byte offset. */
  put(values: ArrayLike<number>): number;
  /** Reserves `n` float32 slots (zeroed, 16-byte aligned) and returns the byte offset. */
  alloc(n: number): number;
  /** A copy of `n` float32 values at byte offset `ptr`. */
  get(ptr: number, n: number): Float32Array;
  /** Copies `n` int32 values at byte offset `ptr`. */
  getInt(ptr: number, n: number): Int32Array;
  /** Forgets every allocation. */
  reset(): void;
}

/** Loads dist/wasm/NAME (default: the single-thread build, which owns its memory). Null when it was not built. */
export function loadHarness(name = "kernels.wasm"): WasmHarness | null {
  const url = new URL(`../wasm/${name}`, import.meta.url); // dist/test/ → dist/wasm/
  if (!existsSync(url)) return null;
  const shared = name.includes("shared");
  const memory = shared ? new WebAssembly.Memory({ initial: 256, maximum: 65536, shared: true }) : undefined;
  const imports = {
    env: {
      abort: () => {
        throw new Error("wasm kernel abort");
      },
      ...(memory ? { memory } : {}),
    },
  };
  const instance = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(url)), imports);
  const exps = instance.exports as Record<string, unknown>;
  const mem = (memory ?? exps.memory) as WebAssembly.Memory;
  const base = mem.buffer.byteLength; // static data lives below the initial size
  let top = base;
  const reserve = (bytes: number): number => {
    const ptr = top;
    top = (top + bytes + 15) & ~15;
    if (top > mem.buffer.byteLength) mem.grow(Math.ceil((top - mem.buffer.byteLength) / 65536));
    new Uint8Array(mem.buffer, ptr, bytes).fill(0);
    return ptr;
  };
  return {
    exports: exps as WasmHarness["exports"],
    memory: mem,
    put(values) {
      const ptr = reserve(values.length * 4);
      new Float32Array(mem.buffer, ptr, values.length).set(Array.from(values));
      return ptr;
    },
    alloc: (n) => reserve(n * 4),
    get: (ptr, n) => new Float32Array(mem.buffer.slice(ptr, ptr + n * 4)),
    getInt: (ptr, n) => new Int32Array(mem.buffer.slice(ptr, ptr + n * 4)),
    reset() {
      top = base;
    },
  };
}
