/**
 * Two-thread kernels for Node: the kernels are instantiated over one shared WebAssembly memory in this thread and
 * in a helper worker. Any exported kernel that follows the row-range convention (its last two arguments are the
 * output rows r0, r1 it computes) can be split: this thread computes rows [0, split) while the helper computes
 * [split, rows), synchronised with Atomics on a small shared control block (this thread blocks in Atomics.wait
 * while the helper finishes, which Node allows). Kernels compute every row with the same operations whatever the
 * range, so the result is bit-identical with one or two threads.
 *
 * Only used from the main thread of a process (sweep workers already use every core), and only for calls big enough
 * to repay the hand-off. GCX_THREADS=1 turns it off (the caller checks). A helper that errs or dies is dropped and
 * its rows are computed here; the helper is unref'd, so it never keeps a process alive.
 */

/** A kernel export: numbers in (byte offsets, sizes, scalars), nothing out. */
export type KernelFn = (...args: number[]) => unknown;

export interface ThreadedKernels {
  memory: WebAssembly.Memory;
  /** The kernels of this thread's instance. */
  kernels: Record<string, unknown>;
  /** Whether the helper is alive and ready to take work. */
  helperReady(): boolean;
  /**
   * Runs kernel `name` on rows [0, rows) as `name(...args, r0, r1)`, split across the two threads when `split`
   * (0 < split < rows) is given and the helper is ready; else all rows here.
   */
  run(name: string, args: readonly number[], rows: number, split: number): void;
  /** Legacy: C = A·B (the matmul export), split by rows when large. */
  matmul(aOff: number, bOff: number, cOff: number, M: number, K: number, N: number): void;
}

/** Most kernel arguments (before r0, r1) a job can carry. */
const MAX_ARGS = 24;

// Control block. Int32 view: 0 state (0 idle, 1 job posted, 2 job done), 1 kernel index, 2 argument count,
// 3 helper ready, 4 helper error. Float64 view from byte 64: the arguments, then r0, r1.
const HELPER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { module, memory, ctrl } = workerData;
const c = new Int32Array(ctrl, 0, 16);
const f = new Float64Array(ctrl, 64);
const inst = new WebAssembly.Instance(module, { env: { memory, abort() { throw new Error("wasm kernel abort"); } } });
if (typeof inst.exports.setThreadIndex === "function") inst.exports.setThreadIndex(1);
const names = WebAssembly.Module.exports(module).filter((e) => e.kind === "function").map((e) => e.name);
const fns = names.map((n) => inst.exports[n]);
Atomics.store(c, 3, 1);
for (;;) {
  Atomics.wait(c, 0, 0);
  const s = Atomics.load(c, 0);
  if (s === 1) {
    try {
      const n = c[2];
      const args = new Array(n);
      for (let i = 0; i < n; i++) args[i] = f[i];
      fns[c[1]](...args);
    } catch (e) {
      Atomics.store(c, 4, 1);
    }
    Atomics.store(c, 0, 2);
    Atomics.notify(c, 0);
  } else if (s === 2) {
    Atomics.wait(c, 0, 2);
  }
}
`;

/** Smallest legacy matmul (multiply-adds) worth splitting across two threads. */
const MIN_MATMUL_WORK = 1 << 20;

/**
 * Starts the helper over a fresh shared memory; null when not in a Node main thread or on a single core.
 * `nodeRequire` loads Node built-ins synchronously (the caller passes createRequire's result; browsers never get
 * here).
 */
export function startThreadedKernels(bytes: Uint8Array, nodeRequire: (id: string) => unknown): ThreadedKernels | null {
  const wt = nodeRequire("node:worker_threads") as typeof import("node:worker_threads");
  const os = nodeRequire("node:os") as typeof import("node:os");
  if (!wt.isMainThread || os.cpus().length < 2) return null;
  const module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
  const memory = new WebAssembly.Memory({ initial: 256, maximum: 65536, shared: true });
  const abort = () => {
    throw new Error("wasm kernel abort");
  };
  const kernels = new WebAssembly.Instance(module, { env: { memory, abort } }).exports as Record<string, unknown>;
  const names = WebAssembly.Module.exports(module).filter((e) => e.kind === "function").map((e) => e.name);
  const index = new Map(names.map((n, i) => [n, i]));
  const ctrl = new SharedArrayBuffer(64 + (MAX_ARGS + 2) * 8);
  const c = new Int32Array(ctrl, 0, 16);
  const f = new Float64Array(ctrl, 64);
  const helper = new wt.Worker(HELPER_SOURCE, { eval: true, workerData: { module, memory, ctrl } });
  helper.unref(); // never keeps the process alive
  helper.on("error", () => Atomics.store(c, 4, 1));
  const helperReady = () => Atomics.load(c, 3) === 1 && Atomics.load(c, 4) === 0;
  const kernel = (name: string): KernelFn => {
    const fn = kernels[name];
    if (typeof fn !== "function") throw new Error(`wasm kernel ${name} is not exported`);
    return fn as KernelFn;
  };

  function run(name: string, args: readonly number[], rows: number, split: number): void {
    const fn = kernel(name);
    const id = index.get(name)!;
    if (!(split > 0 && split < rows) || args.length > MAX_ARGS || !helperReady()) {
      fn(...args, 0, rows);
      return;
    }
    for (let i = 0; i < args.length; i++) f[i] = args[i];
    f[args.length] = split;
    f[args.length + 1] = rows;
    c[1] = id;
    c[2] = args.length + 2;
    Atomics.store(c, 0, 1);
    Atomics.notify(c, 0);
    fn(...args, 0, split);
    // A helper that died cannot answer; after a minute its rows are done here and it is not asked again.
    for (let waited = 0; Atomics.load(c, 0) !== 2 && waited < 60; waited++) Atomics.wait(c, 0, 1, 1000);
    const finished = Atomics.load(c, 0) === 2;
    Atomics.store(c, 0, 0);
    Atomics.notify(c, 0);
    if (!finished) Atomics.store(c, 4, 1);
    if (Atomics.load(c, 4) !== 0) fn(...args, split, rows);
  }

  return {
    memory,
    kernels,
    helperReady,
    run,
    matmul(aOff, bOff, cOff, M, K, N) {
      const split = M >= 8 && M * K * N >= MIN_MATMUL_WORK ? (M >> 3) << 2 : 0;
      if (typeof kernels.gemm === "function") {
        run("gemm", [aOff, bOff, cOff, 0, M, K, N, 0, 0, 0, 0], M, split);
      } else {
        (kernels.matmul as KernelFn)(aOff, bOff, cOff, M, K, N);
      }
    },
  };
}
