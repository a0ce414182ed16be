// Per-thread scratch memory for kernels that pack operands. Kernels never allocate: each instance (one per thread,
// all over one shared memory) uses its own region just above the static data, picked by its thread index (an
// instance global). The regions are not data segments (a zero segment would bloat the shared builds by its size);
// the builds start with enough memory to hold them (--initialMemory), and callers place tensors at or above
// heapBase().

/** Bytes of scratch per thread that the GEMM driver (gemm.ts) and the operand gathers it calls may use. */
export const SCRATCH_BYTES: usize = 512 * 1024;
/** Where the convolution kernels (conv.ts) keep what must survive a call of the driver: just above its area. */
export const CONV_SCRATCH_OFF: usize = SCRATCH_BYTES;
/** Bytes of that area. */
export const CONV_SCRATCH_BYTES: usize = 96 * 1024;
/** Bytes of scratch per thread in all. */
const THREAD_SCRATCH_BYTES: usize = CONV_SCRATCH_OFF + CONV_SCRATCH_BYTES;
/** Threads with their own scratch region. */
const MAX_THREADS: i32 = 2;

let thread: i32 = 0;

/** Selects this instance's scratch region (0 = the main thread, 1 = the helper). Call once after instantiation. */
export function setThreadIndex(t: i32): void {
  thread = t < 0 ? 0 : t >= MAX_THREADS ? MAX_THREADS - 1 : t;
}

// @ts-ignore: decorator
@inline function scratchBase(): usize {
  return (__heap_base + 63) & ~63;
}

/** Start of this instance's scratch region. */
// @ts-ignore: decorator
@inline export function scratch(): usize {
  return scratchBase() + <usize>thread * THREAD_SCRATCH_BYTES;
}

/** First byte above the static data and every thread's scratch: where callers may place tensors. */
export function heapBase(): usize {
  return scratchBase() + <usize>MAX_THREADS * THREAD_SCRATCH_BYTES;
}

/** 1 when this build multiplies-adds with relaxed SIMD (f32x4.relaxed_madd), else 0. */
export const KERNEL_RELAXED: i32 = ASC_FEATURE_RELAXED_SIMD ? 1 : 0;

/** This instance's thread index (0 = the main thread, 1 = the helper): for kernels given one scratch per thread. */
// @ts-ignore: decorator
@inline export function threadIndex(): i32 {
  return thread;
}
