/**
 * TEST DOUBLE — the `strict` backend: a device backend (`device: true`) whose storage is an opaque object wrapping
 * a Float32Array that nothing outside this module can read synchronously. Its kernels are the JS reference loops
 * (reference.ts) run on the wrapped arrays, so it gives the js backend's numbers bit for bit, and every entry of the
 * kernel table exists. Reading back is asynchronous (`read`) and counted. It proves, in Node and without a GPU,
 * that forward, backward, double backward, optimizer steps, BatchNorm and convolution/pooling run on storage that
 * is not host memory, without one synchronous read (a synchronous read throws).
 *
 * It is not selectable from the CLI: tests install it with {@link installStrictBackend} (backend.ts
 * `registerTestBackend`) and select it with `withBackend("strict", …)`.
 * Strictness: kernels refuse host float arrays (a tensor made on the host and used on the device: the kind of
 * silent mix a GPU backend would have to upload), float64 storage is refused, and storage used after the scope that
 * allocated it has ended throws.
 */
import { Tensor } from "../tensor.js";
import type { Data, DType, IndexStorage, Storage } from "../storage.js";
import type { Backend, KernelName, KernelTable } from "../kernelTable.js";
import { reference } from "../reference.js";
import { registerTestBackend } from "../backend.js";

const NAME = "strict";

/** The values behind each storage object, null once its scope has reclaimed it (module-private: opaque outside). */
const VALUES = new WeakMap<object, Float32Array | Int32Array | null>();

/** Opaque float32 device storage of the strict backend. */
export class StrictArray {
  readonly device = NAME;
  readonly dtype = "float32" as const;
  readonly length: number;
  constructor(values: Float32Array) {
    this.length = values.length;
    VALUES.set(this, values);
  }
}

/** Opaque int32 device indices of the strict backend (max-pooling argmax). */
export class StrictIndices {
  readonly device = NAME;
  readonly dtype = "int32" as const;
  readonly length: number;
  constructor(values: Int32Array) {
    this.length = values.length;
    VALUES.set(this, values);
  }
}

function free(s: object): void {
  VALUES.set(s, null);
}

/** What the strict backend has done since the last {@link resetStrictStats}. */
export interface StrictStats {
  /** Asynchronous read-backs (`read`): the only way values leave the backend. */
  reads: number;
  /** Host → device copies (`upload`). */
  uploads: number;
  /** Storage allocations. */
  allocs: number;
  /** Kernel calls, by entry name. */
  kernels: Record<string, number>;
  /** Storage reclaimed by scopes. */
  released: number;
}

const stats: StrictStats = { reads: 0, uploads: 0, allocs: 0, kernels: {}, released: 0 };

/** The strict backend's counters (a snapshot). */
export function strictStats(): StrictStats {
  return { ...stats, kernels: { ...stats.kernels } };
}

/** Sets the counters to zero. */
export function resetStrictStats(): void {
  stats.reads = stats.uploads = stats.allocs = stats.released = 0;
  stats.kernels = {};
}

function released(): RangeError {
  return new RangeError("strict: storage used after the scope that allocated it ended");
}

function unwrap(a: unknown, kernel: string): unknown {
  if (a instanceof StrictArray || a instanceof StrictIndices) {
    const v = VALUES.get(a);
    if (!v) throw released();
    return v;
  }
  if (a instanceof Float32Array || a instanceof Float64Array)
    throw new RangeError(
      `strict: host storage passed to the ${kernel} kernel (a tensor made on the host, not uploaded)`,
    );
  if (Array.isArray(a)) return a.map((x) => unwrap(x, kernel));
  if (a !== null && typeof a === "object" && !ArrayBuffer.isView(a)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(a)) out[k] = unwrap(v, kernel);
    return out;
  }
  return a; // numbers, booleans, names, host Int32Array indices (an upload), null
}

function strictKernels(): KernelTable {
  const table: Record<string, unknown> = {};
  for (const name of Object.keys(reference) as KernelName[]) {
    const ref = reference[name] as (...a: unknown[]) => unknown;
    table[name] = (...args: unknown[]) => {
      stats.kernels[name] = (stats.kernels[name] ?? 0) + 1;
      return ref(...args.map((a) => unwrap(a, name)));
    };
  }
  return table;
}

/** Storage of the open scopes, innermost last; null entries mark `unscoped` regions. */
const scopes: (Set<StrictArray | StrictIndices> | null)[] = [];

function track<T extends StrictArray | StrictIndices>(s: T): T {
  stats.allocs++;
  const top = scopes[scopes.length - 1];
  if (top) top.add(s);
  return s;
}

/** The storage a scope's result holds; tensors in it lose their graphs (nothing returned points into the scope). */
function keep(v: unknown, kept: Set<unknown>): unknown {
  if (v instanceof Tensor) {
    kept.add(v.storage);
    return v.requiresGrad ? new Tensor(v.storage, v.shape) : v;
  }
  if (v instanceof StrictArray || v instanceof StrictIndices) {
    kept.add(v);
    return v;
  }
  if (Array.isArray(v)) return v.map((x) => keep(x, kept));
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [k, keep(x, kept)]));
  if (v !== null && typeof v === "object" && !ArrayBuffer.isView(v)) {
    const proto: unknown = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = keep(x, kept);
    return out;
  }
  return v;
}

function runScope<T>(fn: () => T): T {
  const mine = new Set<StrictArray | StrictIndices>();
  scopes.push(mine);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const s of mine) free(s);
    stats.released += mine.size;
    throw e;
  }
  scopes.pop();
  const kept = new Set<unknown>();
  const out = keep(result, kept) as T;
  const parent = scopes[scopes.length - 1];
  for (const s of mine) {
    if (kept.has(s)) parent?.add(s);
    else {
      free(s);
      stats.released++;
    }
  }
  return out;
}

function make(): Backend {
  return {
    name: NAME,
    variant: "strict-js",
    device: true,
    alloc(dtype: DType, n: number): Storage {
      if (dtype !== "float32") throw new RangeError(`${dtype} storage is not available on the strict backend`);
      return track(new StrictArray(new Float32Array(n)));
    },
    allocIndices: (n: number): IndexStorage => track(new StrictIndices(new Int32Array(n))),
    upload(values: Data): Storage {
      if (!(values instanceof Float32Array))
        throw new RangeError("float64 storage is not available on the strict backend");
      stats.uploads++;
      return track(new StrictArray(values.slice()));
    },
    async read(s: Storage): Promise<Data> {
      if (!(s instanceof StrictArray))
        throw new RangeError("strict: read() of storage that is not the strict backend's");
      const v = VALUES.get(s);
      if (!v) throw released();
      stats.reads++;
      await Promise.resolve(); // a device read completes later, never synchronously
      return (v as Float32Array).slice();
    },
    release(s: Storage): void {
      if (s instanceof StrictArray) free(s);
    },
    kernels: strictKernels(),
    scope: runScope,
    unscoped<T>(fn: () => T): T {
      scopes.push(null);
      try {
        return fn();
      } finally {
        scopes.pop();
      }
    },
  };
}

let made: Backend | null = null;

/** The strict backend (one instance). */
export function strictBackend(): Backend {
  return (made ??= make());
}

/** TEST ONLY: makes "strict" selectable with setBackend/withBackend (never from the CLI). */
export function installStrictBackend(): Backend {
  registerTestBackend(NAME, strictBackend);
  return strictBackend();
}
