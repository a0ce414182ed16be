/**
 * Kernels a backend may provide beyond the KernelTable of kernelTable.ts, looked up the same way (optional, false
 * when declined, the caller then runs its JS loop): `(kernels() as KernelExtensions).name?.(…)`. A staging place
 * for kernels added while kernelTable.ts is being reworked; each entry moves into KernelTable when that settles.
 * Types only, like kernelTable.ts, so backend implementations can depend on it.
 */
import type { Data } from "./tensor.js";
import type { PoolWindow } from "./kernelTable.js";

/** Kernels beyond KernelTable (see the module comment). */
export interface KernelExtensions {
  /**
   * Max pooling's input gradient, added into dx: dx[idx[o]] += dy[o] for every output o in order (idx from the
   * `maxPool` kernel, flat into dx; −1 skipped). The same additions in the same order as a JS scatter-add loop
   * (callers pass freshly allocated, hence zeroed, dx: no second clearing pass).
   */
  maxPoolBackward?: (dy: Data, idx: Int32Array, dx: Data, g: PoolWindow) => boolean;
  /**
   * BatchNorm with fixed statistics over the last axis of x [rows, C]: out[r, c] = (x[r, c] − mean[c])·k[c] + β[c],
   * float32 with a rounding after each operation (the same bits as elementwise.ts subB, mulB, addB in turn).
   */
  bnApply?: (x: Data, mean: Data, k: Data, beta: Data, out: Data, rows: number, C: number) => boolean;
}
