/**
 * Two-thread matrix products for Node: the kernels are instantiated over one shared WebAssembly memory in this
 * thread and in a helper worker; a product is split by rows and the halves run at once, synchronised with Atomics
 * on a small shared control block (this thread blocks in Atomics.wait while the helper finishes, which Node allows).
 * Only used from the main thread of a process (sweep workers already use every core), and only for products big
 * enough to repay the hand-off. GCX_THREADS=1 turns it off.
 */

interface Kernels {
  matmul(a: number, b: number, c: number, m: number, k: number, n: number): void;
}

export interface ThreadedKernels {
  memory: WebAssembly.Memory;
  kernels: Kernels;
  /** C rows [0, split) here and [split, M) on the helper, when the helper is ready; else all here. */
  matmul(aOff: number, bOff: number, cOff: number, M: number, K: number, N: number): void;
}

// Control block (Int32): 0 state (0 idle, 1 job posted, 2 job done), 1-6 job arguments, 7 helper ready, 8 helper error.
const HELPER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { module, memory, ctrl } = workerData;
const c = new Int32Array(ctrl);
const inst = new WebAssembly.Instance(module, { env: { memory, abort() { throw new Error("wasm kernel abort"); } } });
Atomics.store(c, 7, 1);
for (;;) {
  Atomics.wait(c, 0, 0);
  const s = Atomics.load(c, 0);
  if (s === 1) {
    try { inst.exports.matmul(c[1], c[2], c[3], c[4], c[5], c[6]); } catch (e) { Atomics.store(c, 8, 1); }
    Atomics.store(c, 0, 2);
    Atomics.notify(c, 0);
  } else if (s === 2) {
    Atomics.wait(c, 0, 2);
  }
}
`;

/** Smallest product (multiply-adds) worth splitting across two threads. */
const MIN_WORK = 1 << 20;

/** `nodeRequire` loads Node built-ins synchronously (the caller passes createRequire's result; browsers never get here). */
export function startThreadedKernels(bytes: Uint8Array, nodeRequire: (id: string) => unknown): ThreadedKernels | null {
  const wt = nodeRequire("node:worker_threads") as typeof import("node:worker_threads");
  const os = nodeRequire("node:os") as typeof import("node:os");
  if (!wt.isMainThread || os.cpus().length < 2) return null;
  const module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
  const memory = new WebAssembly.Memory({ initial: 256, maximum: 65536, shared: true });
  const abort = () => {
    throw new Error("wasm kernel abort");
  };
  const kernels = new WebAssembly.Instance(module, { env: { memory, abort } }).exports as unknown as Kernels;
  const ctrl = new SharedArrayBuffer(16 * 4);
  const c = new Int32Array(ctrl);
  const helper = new wt.Worker(HELPER_SOURCE, { eval: true, workerData: { module, memory, ctrl } });
  helper.unref(); // never keeps the process alive
  helper.on("error", () => Atomics.store(c, 8, 1));
  return {
    memory,
    kernels,
    matmul(aOff, bOff, cOff, M, K, N) {
      const usable = Atomics.load(c, 7) === 1 && Atomics.load(c, 8) === 0;
      if (!usable || M < 8 || M * K * N < MIN_WORK) {
        kernels.matmul(aOff, bOff, cOff, M, K, N);
        return;
      }
      const split = (M >> 3) << 2; // about half, a multiple of 4 rows
      c[1] = aOff + split * K * 4;
      c[2] = bOff;
      c[3] = cOff + split * N * 4;
      c[4] = M - split;
      c[5] = K;
      c[6] = N;
      Atomics.store(c, 0, 1);
      Atomics.notify(c, 0);
      kernels.matmul(aOff, bOff, cOff, split, K, N);
      // A helper that died cannot answer; after a minute its half is done here and it is not asked again.
      for (let waited = 0; Atomics.load(c, 0) !== 2 && waited < 60; waited++) Atomics.wait(c, 0, 1, 1000);
      const finished = Atomics.load(c, 0) === 2;
      Atomics.store(c, 0, 0);
      Atomics.notify(c, 0);
      if (!finished) Atomics.store(c, 8, 1);
      if (Atomics.load(c, 8) !== 0) kernels.matmul(c[1], bOff, c[3], M - split, K, N);
    },
  };
}
