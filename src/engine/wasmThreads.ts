/**
 * Two-thread kernels for Node: the kernels are instantiated over one shared WebAssembly memory in this thread and
 * in a helper worker. Any exported kernel that follows the row-range convention (its last two arguments are the
 * output rows r0, r1 it computes) can be shared: its rows are cut into a few chunks that both threads claim with
 * Atomics until none is left (this thread blocks in Atomics.wait for the helper's last chunk, which Node allows).
 * Kernels compute every row with the same operations whatever the range, so the result is bit-identical with one
 * or two threads and whatever chunks each thread happened to take.
 *
 * Only used from the main thread of a process (sweep workers already use every core), and only for calls big enough
 * to repay the hand-off. GCX_THREADS=1 turns it off (the caller checks). A job the helper has not started when this
 * thread runs out of chunks is withdrawn (a busy machine may not schedule the helper in time); a helper that errs or
 * dies is dropped and its unfinished chunks are computed here; the helper is unref'd, so it never keeps a process
 * alive.
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
   * Runs kernel `name` on rows [0, rows) as `name(...args, r0, r1)`: cut into `chunks` chunks (at most MAX_CHUNKS,
   * at least 4 rows each) that both threads claim until none is left, when chunks ≥ 2 and the helper is ready;
   * else all rows here in one call.
   */
  run(name: string, args: readonly number[], rows: number, chunks: number): void;
  /** Legacy: C = A·B (the matmul export), split by rows when large. */
  matmul(aOff: number, bOff: number, cOff: number, M: number, K: number, N: number): void;
}

/** Most kernel arguments (before r0, r1) a job can carry. */
const MAX_ARGS = 24;
/** Most chunks a job's rows are cut into. */
export const MAX_CHUNKS = 16;

// Control block. Int32 view: 0 state (0 idle, 1 job posted, 3 job taken by the helper, 2 helper finished),
// 1 kernel index, 2 argument count, 3 helper ready, 4 helper error, 5 next unclaimed chunk, 6 chunks, 7 rows,
// 16 + i: chunk i done (1). Float64 view from byte 256: the arguments (without r0, r1).
// Both threads claim chunks with Atomics.add until none is left, so a thread the OS does not schedule delays the
// job by one chunk at most; chunk i is rows [bound(i), bound(i+1)), the same on both sides.
const CTRL_INTS = 16 + MAX_CHUNKS;
const ARGS_BYTE = 256;

/** First row of chunk i of `rows` rows in `chunks` chunks (multiples of 4, so GEMM row blocks stay whole). */
export function chunkBound(i: number, chunks: number, rows: number): number {
  return i >= chunks ? rows : Math.floor((rows * i) / chunks) & ~3;
}

const HELPER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { module, memory, ctrl } = workerData;
const c = new Int32Array(ctrl, 0, ${CTRL_INTS});
const f = new Float64Array(ctrl, ${ARGS_BYTE});
const inst = new WebAssembly.Instance(module, { env: { memory, abort() { throw new Error("wasm kernel abort"); } } });
if (typeof inst.exports.setThreadIndex === "function") inst.exports.setThreadIndex(1);
const names = WebAssembly.Module.exports(module).filter((e) => e.kind === "function").map((e) => e.name);
const fns = names.map((n) => inst.exports[n]);
const bound = ${chunkBound.toString()};
Atomics.store(c, 3, 1);
for (;;) {
  Atomics.wait(c, 0, 0);
  const s = Atomics.load(c, 0);
  if (s === 1) {
    // Take the job unless the main thread already withdrew it (then it is idle again).
    if (Atomics.compareExchange(c, 0, 1, 3) !== 1) continue;
    try {
      const n = c[2], chunks = c[6], rows = c[7], fn = fns[c[1]];
      const args = new Array(n + 2);
      for (let i = 0; i < n; i++) args[i] = f[i];
      for (;;) {
        const i = Atomics.add(c, 5, 1);
        if (i >= chunks) break;
        args[n] = bound(i, chunks, rows);
        args[n + 1] = bound(i + 1, chunks, rows);
        fn(...args);
        Atomics.store(c, 16 + i, 1);
      }
    } catch (e) {
      Atomics.store(c, 4, 1);
    }
    Atomics.store(c, 0, 2);
    Atomics.notify(c, 0);
  } else if (s === 2 || s === 3) {
    Atomics.wait(c, 0, s);
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
  const names = WebAssembly.Module.exports(module)
    .filter((e) => e.kind === "function")
    .map((e) => e.name);
  const index = new Map(names.map((n, i) => [n, i]));
  const ctrl = new SharedArrayBuffer(ARGS_BYTE + MAX_ARGS * 8);
  const c = new Int32Array(ctrl, 0, CTRL_INTS);
  const f = new Float64Array(ctrl, ARGS_BYTE);
  const helper = new wt.Worker(HELPER_SOURCE, { eval: true, workerData: { module, memory, ctrl } });
  helper.unref(); // never keeps the process alive
  helper.on("error", () => Atomics.store(c, 4, 1));
  const helperReady = () => Atomics.load(c, 3) === 1 && Atomics.load(c, 4) === 0;
  const kernel = (name: string): KernelFn => {
    const fn = kernels[name];
    if (typeof fn !== "function") throw new Error(`wasm kernel ${name} is not exported`);
    return fn as KernelFn;
  };

  function run(name: string, args: readonly number[], rows: number, chunks: number): void {
    const fn = kernel(name);
    const id = index.get(name)!;
    chunks = Math.min(Math.floor(chunks), MAX_CHUNKS, rows >> 2);
    if (!(chunks >= 2) || args.length > MAX_ARGS || !helperReady()) {
      fn(...args, 0, rows);
      return;
    }
    for (let i = 0; i < args.length; i++) f[i] = args[i];
    for (let i = 0; i < chunks; i++) c[16 + i] = 0;
    c[1] = id;
    c[2] = args.length;
    c[5] = 0;
    c[6] = chunks;
    c[7] = rows;
    Atomics.store(c, 0, 1);
    Atomics.notify(c, 0);
    let mine: unknown = null;
    try {
      for (;;) {
        const i = Atomics.add(c, 5, 1);
        if (i >= chunks) break;
        fn(...args, chunkBound(i, chunks, rows), chunkBound(i + 1, chunks, rows));
        Atomics.store(c, 16 + i, 1);
      }
    } catch (e) {
      mine = e;
      Atomics.store(c, 5, chunks); // nothing more for the helper to claim
    }
    // If the helper has not started (a busy machine may not have scheduled it), withdraw the job: all is done here.
    if (Atomics.compareExchange(c, 0, 1, 0) !== 1) {
      // A helper that died cannot answer; after a minute it is not asked again.
      for (let waited = 0; Atomics.load(c, 0) !== 2 && waited < 60; waited++) Atomics.wait(c, 0, 3, 1000);
      if (Atomics.load(c, 0) !== 2) Atomics.store(c, 4, 1);
      Atomics.store(c, 0, 0);
      Atomics.notify(c, 0);
    }
    if (mine !== null) throw mine instanceof Error ? mine : new Error("a wasm kernel failed on the main thread");
    // Chunks the helper claimed but did not finish (it failed) are done here.
    for (let i = 0; i < chunks; i++) {
      if (Atomics.load(c, 16 + i) !== 1) fn(...args, chunkBound(i, chunks, rows), chunkBound(i + 1, chunks, rows));
    }
  }

  return {
    memory,
    kernels,
    helperReady,
    run,
    matmul(aOff, bOff, cOff, M, K, N) {
      const chunks = M * K * N >= MIN_MATMUL_WORK ? 2 : 0;
      if (typeof kernels.gemm === "function") {
        run("gemm", [aOff, bOff, cOff, 0, M, K, N, 0, 0, 0, 0], M, chunks);
      } else {
        (kernels.matmul as KernelFn)(aOff, bOff, cOff, M, K, N);
      }
    },
  };
}
