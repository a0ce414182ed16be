/**
 * The engine's backend interface: where tensor storage lives and which implementation runs each kernel.
 *
 * Ops (ops.ts, elementwise.ts, spatial.ts) and the raw kernels (kernels.ts) never ask which backend is active; they
 * allocate through `allocStorage` and call kernels through `kernels()`. Two backends exist today:
 * - `js`: plain JavaScript loops on JS-heap typed arrays (the reference, always available, float32 and float64);
 * - `wasm` (default when the WebAssembly kernels are built): float32 kernels in WebAssembly SIMD; inside a `scope`
 *   tensors are allocated in the kernels' own linear memory, so they are computed where they live with no copies.
 * A WebGPU backend (issue 12) implements the same interface with GPU buffers as storage; for it `Tensor.data` is not
 * readable synchronously (see docs/decisions/0007-backends-and-storage.md for the read-back rule).
 *
 * Determinism: a backend and kernel variant give the same numbers whatever the thread count (kernels split work by
 * output rows only, never a reduction). `engineInfo()` names both so runs, checkpoints and trials can record them.
 */
import { setStorageAllocator, type Data, type DType } from "./tensor.js";
import type { Backend, KernelTable } from "./kernelTable.js";
import { makeWasmBackend } from "./backends/wasm.js";

export type { Backend, BinaryName, DenseLayer, KernelTable, PoolWindow, UnaryName } from "./kernelTable.js";

/** The reference backend: JS-heap typed arrays and the JS kernels. */
export const jsBackend: Backend = {
  name: "js",
  variant: "js",
  alloc: (dtype, n) => (dtype === "float64" ? new Float64Array(n) : new Float32Array(n)),
  kernels: {},
  scope: (fn) => fn(),
  unscoped: (fn) => fn(),
};

const registry = new Map<string, () => Backend | null>([
  ["js", () => jsBackend],
  ["wasm", makeWasmBackend],
]);
let active: Backend | null = null;
let defaultName = "auto";

/** Backends that can run here, best first. */
export function availableBackends(): string[] {
  return ["wasm", "js"].filter((n) => registry.get(n)?.() != null);
}

/**
 * Selects the backend by name: "auto" (wasm when available, else js), "wasm" or "js". Throws a RangeError naming
 * the choices when the backend is unknown or cannot run here.
 */
export function setBackend(name: string): Backend {
  if (name === "auto") {
    defaultName = "auto";
    active = null;
    return getBackend();
  }
  const make = registry.get(name);
  const b = make?.() ?? null;
  if (!b) {
    const have = availableBackends().join(", ");
    throw new RangeError(
      make
        ? `backend "${name}" is not available here (available: ${have})`
        : `unknown backend "${name}" (choose auto, ${have})`,
    );
  }
  defaultName = name;
  active = b;
  return b;
}

/** The active backend. */
export function getBackend(): Backend {
  // "auto" keeps looking for wasm while on js: a browser installs the kernels after the page has started.
  if (!active || (defaultName === "auto" && active === jsBackend)) active = registry.get("wasm")?.() ?? jsBackend;
  return active;
}

/** Runs fn on another backend, then restores the previous one. */
export function withBackend<T>(name: string, fn: () => T): T {
  const prevActive = active,
    prevName = defaultName;
  setBackend(name);
  try {
    return fn();
  } finally {
    active = prevActive;
    defaultName = prevName;
  }
}

/** Storage for n values of dtype on the active backend. */
export function allocStorage(dtype: DType, n: number): Data {
  return getBackend().alloc(dtype, n);
}

setStorageAllocator(allocStorage);

/** The active backend's native kernels. */
export function kernels(): KernelTable {
  return getBackend().kernels;
}

/**
 * Runs fn in a storage scope of the active backend: tensors fn allocates are reclaimed when it returns, in a
 * deterministic order (no garbage-collector timing). The result is made independent of the scope first: tensors
 * and typed arrays in it (also inside arrays and plain objects) are copied to the JS heap, without their graphs.
 * A training step, one batch of a measure and one evaluation batch each run in a scope.
 */
export function scope<T>(fn: () => T): T {
  return getBackend().scope(fn);
}

/** Runs fn with allocation outside any open scope: for values cached beyond the scope (e.g. a weight's transpose). */
export function unscoped<T>(fn: () => T): T {
  return getBackend().unscoped(fn);
}

/** What runs the numbers: recorded in run configs, checkpoint fingerprints and trial keys. */
export interface EngineInfo {
  backend: string;
  variant: string;
}

/** The active backend's name and kernel variant. */
export function engineInfo(): EngineInfo {
  const b = getBackend();
  return { backend: b.name, variant: b.variant };
}
