/**
 * The wasm backend: float32 kernels in WebAssembly SIMD (assembly/*.ts) over tensors that live in the kernels'
 * linear memory while a scope is open (arena.ts). Float64 tensors (the exactness tests) and kernels it lacks use the
 * JS reference implementations on the same storage, so every op works on every backend.
 */
import { Tensor } from "../tensor.js";
import { registerBackend, type Backend, type KernelTable } from "../backend.js";
import { Arena } from "../arena.js";
import { wasmRuntime, type WasmRuntime } from "../wasmKernels.js";

interface ProcessLike {
  env?: Record<string, string | undefined>;
  stderr?: { write(s: string): unknown };
}
const proc = (globalThis as { process?: ProcessLike }).process;

/** Static data of the kernel module stays below this offset. */
const BASE = 1 << 20;

let made: Backend | null | undefined;
let arenaOf: Arena | null = null;

function note(text: string): void {
  if (proc?.stderr) proc.stderr.write(`gcx: note: ${text}\n`);
  else console.warn(`gcx: note: ${text}`);
}

/** Copies of arena-backed values in a scope's result, so nothing returned points into released memory. */
function detach(v: unknown, arena: Arena): unknown {
  if (v instanceof Tensor) {
    if (arena.owns(v.data)) return new Tensor(v.data.slice(), v.shape);
    return v.requiresGrad ? new Tensor(v.data, v.shape) : v;
  }
  if (v instanceof Float32Array) return arena.owns(v) ? v.slice() : v;
  if (Array.isArray(v)) return v.map((x) => detach(x, arena));
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [k, detach(x, arena)]));
  if (v !== null && typeof v === "object") {
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = detach(x, arena);
    return out;
  }
  return v;
}

function makeKernels(rt: WasmRuntime, arena: Arena): KernelTable {
  return {
    gemm(A, B, C, M, K, N, transA, transB) {
      if (transA || transB) return false;
      const s = arena.stage([A, B], [C]);
      if (!s) return false;
      rt.matmul(s.ptrs[0], s.ptrs[1], s.ptrs[2], M, K, N);
      s.done();
      return true;
    },
  };
}

function make(): Backend | null {
  if (made !== undefined) return made;
  made = null;
  if (proc?.env?.GCX_NO_WASM === "1") return null;
  const rt = wasmRuntime();
  if (!rt) return null;
  const arena = new Arena(rt.memory, rt.shared, BASE, proc?.env?.GCX_ARENA_POISON === "1", (bytes) =>
    note(`a step needs ${(bytes / 2 ** 30).toFixed(2)} GiB of WebAssembly memory, more than its 4 GiB address space allows; the rest of it uses JavaScript memory (use a smaller --batch-size to stay fast)`),
  );
  arenaOf = arena;
  made = {
    name: "wasm",
    variant: "wasm-simd128",
    alloc: (dtype, n) => (dtype === "float64" ? new Float64Array(n) : (arena.alloc(n) ?? new Float32Array(n))),
    kernels: makeKernels(rt, arena),
    scope: (fn) => arena.run(fn, (r) => detach(r, arena) as typeof r),
    unscoped: (fn) => arena.outside(fn),
  };
  return made;
}

registerBackend("wasm", make);

/** Bytes of wasm memory the open scopes hold, and the high-water mark (tests check that steps do not leak). */
export function wasmArenaUsage(): { used: number; peak: number } | null {
  make();
  return arenaOf ? { used: arenaOf.used, peak: arenaOf.peak } : null;
}
