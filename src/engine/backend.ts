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
import { setStorageProvider, setStorageReader, Tensor, tensor } from "./tensor.js";
import { isHost, type Data, type DeviceArray, type DType, type IndexStorage, type Storage } from "./storage.js";
import type { Backend, Kept, KernelTable } from "./kernelTable.js";
import { makeWasmBackend } from "./backends/wasm.js";
import { installedWebGPU } from "./backends/webgpu/index.js";

export type {
  Backend,
  BinaryName,
  ConvWindow,
  DenseLayer,
  Kept,
  KernelName,
  KernelTable,
  PoolWindow,
  UnaryName,
} from "./kernelTable.js";

/** The reference backend: JS-heap typed arrays and the JS kernels. */
export const jsBackend: Backend = {
  name: "js",
  variant: "js",
  device: false,
  alloc: (dtype, n) => (dtype === "float64" ? new Float64Array(n) : new Float32Array(n)),
  kernels: {},
  scope: (fn) => fn(),
  unscoped: (fn) => fn(),
};

const registry = new Map<string, () => Backend | null>([
  ["js", () => jsBackend],
  ["wasm", makeWasmBackend],
  ["webgpu", installedWebGPU], // selectable once `await requestWebGPU()` has made it (never by "auto")
]);
let active: Backend | null = null;
let defaultName = "auto";

/**
 * TEST ONLY: makes a backend selectable by name through setBackend/withBackend (the test double `strict`,
 * test/deviceStorage.test.ts). Not listed by availableBackends; the CLI never registers one, so `--backend strict`
 * stays an unknown backend there.
 */
export function registerTestBackend(name: string, make: () => Backend): void {
  if (name === "js" || name === "wasm" || name === "auto") throw new RangeError(`backend "${name}" is built in`);
  registry.set(name, make);
}

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

/**
 * Storage for n values of dtype on the active backend: zeroed, or with `zero` false unspecified contents that the
 * caller overwrites completely (see tensor.ts `newOutput`).
 */
export function allocStorage(dtype: DType, n: number, zero = true): Storage {
  return getBackend().alloc(dtype, n, zero);
}

/** Int32 storage for n indices on the active backend (host backends: an Int32Array). */
export function allocIndices(n: number): IndexStorage {
  const b = getBackend();
  return b.allocIndices ? b.allocIndices(n) : new Int32Array(n);
}

/** True when the active backend's storage is not host memory. */
export function onDevice(): boolean {
  return getBackend().device;
}

/** The error an op throws where the active backend has no kernel for it: `<op>: not available on the <name> backend`. */
export function notAvailable(op: string): RangeError {
  return new RangeError(`${op}: not available on the ${getBackend().name} backend`);
}

/**
 * The host arrays of an op's storage, for its JS reference loop. On a device backend there are none (no JS loop
 * ever runs on device storage): throws `<op>: not available on the <name> backend`. The one place that rule lives.
 */
export function onHost<T extends readonly Storage[]>(op: string, ...s: T): { [K in keyof T]: Data } {
  if (getBackend().device || !s.every(isHost)) throw notAvailable(op);
  return s as unknown as { [K in keyof T]: Data };
}

setStorageProvider({
  get device() {
    return getBackend().device;
  },
  get name() {
    return getBackend().name;
  },
  alloc: (dtype, n, zero) => getBackend().alloc(dtype, n, zero),
  upload(values) {
    const b = getBackend();
    if (b.upload) return b.upload(values);
    if (b.device) throw notAvailable("upload");
    const s = b.alloc(values instanceof Float64Array ? "float64" : "float32", values.length, false) as Data;
    s.set(values);
    return s;
  },
  filled(dtype, n, v) {
    const b = getBackend();
    const s = b.alloc(dtype, n, false);
    if (b.kernels.fill?.(s, v)) return s;
    if (b.device) throw notAvailable("full");
    return (s as Data).fill(v);
  },
  convert(s, dtype) {
    const b = getBackend();
    const out = b.alloc(dtype, s.length, false);
    if (b.kernels.copy?.(s, out)) return out;
    const [o, x] = onHost("cast", out, s);
    o.set(x);
    return o;
  },
});

setStorageReader((s: DeviceArray): Promise<Data> => {
  const b = registry.get(s.device)?.() ?? null;
  if (!b?.read) return Promise.reject(new RangeError(`tensor lives on the ${s.device} backend, which cannot read it`));
  return b.read(s);
});

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

/**
 * Runs fn in a storage scope whose result stays resident in the backend's memory until `drop()` (the wasm backend
 * keeps it in its linear memory instead of copying it to the JS heap; elsewhere this is `scope` and `drop` does
 * nothing). The training loop keeps each step's state this way and drops the previous one, so parameters and
 * optimizer state are used in place from step to step. Nothing may use the result after `drop()`.
 */
export function keptScope<T>(fn: () => T): Kept<T> {
  const b = getBackend();
  return b.scopeKept ? b.scopeKept(fn) : { value: b.scope(fn), drop: () => {} };
}

/**
 * Copies of tensors kept in the active backend's memory until `drop()`: a model's parameters for the duration of a
 * measurement, so that every batch uses them in place instead of staging them into wasm memory for each kernel call
 * (a device backend uploads host ones; on the js backend, or where nothing stays resident, they are returned as
 * they are). On host backends only float32 tensors are copied; a device holds float32 only.
 */
export function keepResident<T extends Record<string, Tensor>>(tensors: T): Kept<T> {
  const b = getBackend();
  const copy = (t: Tensor): Tensor =>
    isHost(t.storage) && (b.device || t.dtype === "float32") ? tensor(t.storage, t.shape, "float32") : t;
  const all = () => Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, copy(t)])) as T;
  if (b.device) return { value: all(), drop: () => {} };
  return b.scopeKept ? b.scopeKept(all) : { value: tensors, drop: () => {} };
}

/**
 * The tensor with its values where the active backend computes, for a value several kernels of a scope read (a
 * training batch: the forward pass and the first layer's weight gradient): uploaded on a device backend, copied
 * once into the open scope's memory on wasm (instead of once per kernel call), itself elsewhere.
 */
export function residentInScope(t: Tensor): Tensor {
  const b = getBackend();
  const s = t.storage;
  if (!isHost(s)) return t;
  if (b.device) return tensor(s, t.shape, "float32");
  const moved = b.adopt ? b.adopt(s) : s;
  return moved === s ? t : new Tensor(moved, t.shape);
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
