/**
 * How ops run a kernel: the active backend's native kernel when it has one and accepts the call; otherwise, on a
 * host backend, the JS reference loop (reference.ts) on the same arrays; on a device backend, never a JS loop:
 * the op throws `<op>: not available on the <name> backend` (backend.ts `notAvailable`).
 */
import { getBackend, kernels, notAvailable } from "./backend.js";
import type { KernelName, KernelTable } from "./kernelTable.js";
import { reference } from "./reference.js";

/** The arguments of kernel entry N. */
export type KernelArgs<N extends KernelName> = Parameters<NonNullable<KernelTable[N]>>;

type Loose = (...a: unknown[]) => unknown;

/** Device storage (an object with a `device` field) among a kernel's arguments, or null. */
function deviceArgument(args: readonly unknown[]): string | null {
  for (const a of args) {
    if (a === null || typeof a !== "object" || ArrayBuffer.isView(a)) continue;
    if (Array.isArray(a)) {
      const d = deviceArgument(a);
      if (d) return d;
    } else if ("device" in a) return String(a.device);
  }
  return null;
}

function hostReference<N extends KernelName>(op: string, name: N, args: KernelArgs<N>): void {
  const dev = deviceArgument(args);
  if (dev !== null)
    throw new RangeError(`${op}: a tensor lives on the ${dev} backend but the active backend is ${getBackend().name}`);
  (reference[name] as Loose)(...args);
}

/**
 * Runs kernel `name` for op `op`: the backend's native kernel, else (host backends) the JS reference; a device
 * backend without the kernel (or whose kernel declines) makes the op throw.
 */
export function run<N extends KernelName>(op: string, name: N, ...args: KernelArgs<N>): void {
  const k = kernels()[name] as Loose | undefined;
  if (k?.(...args)) return;
  if (getBackend().device) throw notAvailable(op);
  hostReference(op, name, args);
}

/**
 * Like {@link run}, for ops whose host path has always been the JS reference even where a host backend has a native
 * kernel of that name (their CPU numbers stay what they were): the native kernel runs on device backends only.
 */
export function runOnDevice<N extends KernelName>(op: string, name: N, ...args: KernelArgs<N>): void {
  if (!getBackend().device) return hostReference(op, name, args);
  const k = kernels()[name] as Loose | undefined;
  if (!k?.(...args)) throw notAvailable(op);
}
