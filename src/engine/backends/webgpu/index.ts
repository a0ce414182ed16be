/// <reference types="@webgpu/types" />
/**
 * The WebGPU backend (issue 12): float32 tensors in GPU buffers, every KernelTable entry as a WGSL compute kernel,
 * one command encoder per batch of work flushed only at a read (docs/decisions/0014-webgpu-backend.md).
 *
 * `requestWebGPU()` finds an adapter in a browser (navigator.gpu) or in Node (the `webgpu` package, Dawn) and
 * returns the backend or a one-line reason. Software adapters (SwiftShader, llvmpipe/lavapipe, WARP, any adapter
 * that says it is a fallback) are refused unless `allowSoftware`: they are correct but slower than the wasm backend,
 * so only tests ask for them.
 */
import type { Data, DType } from "../../tensor.js";
import type { DeviceArray, Storage } from "./contract.js";
import { GpuArray, GpuContext } from "./context.js";
import { makeWebGPUKernels, type WebGPUKernels } from "./kernels.js";

export { GpuArray, GpuContext } from "./context.js";
export type { WebGPUKernels } from "./kernels.js";

/** The WebGPU backend: the engine's Backend interface over GPU storage (device: reads are async). */
export interface WebGPUBackend {
  readonly name: "webgpu";
  /** "webgpu-<vendor>-<architecture>": kernels' transcendental functions differ between GPUs in the last bits. */
  readonly variant: string;
  readonly device: true;
  alloc(dtype: DType, n: number): Storage;
  upload(values: Data): Storage;
  read(s: Storage): Promise<Data>;
  release(s: Storage): void;
  readonly kernels: WebGPUKernels;
  scope<T>(fn: () => T): T;
  unscoped<T>(fn: () => T): T;
  /** The device context (counters, pool usage, errors): for tests and benchmarks. */
  readonly ctx: GpuContext;
  /** What the adapter says it is. */
  readonly adapter: AdapterDescription;
}

/** An adapter's identity, as reported by `adapter.info`. */
export interface AdapterDescription {
  vendor: string;
  architecture: string;
  description: string;
  software: boolean;
}

/** Tensor-like objects whose storage a scope's result keeps (the engine's Tensor has `storage`, older ones `data`). */
function collect(v: unknown, out: GpuArray[], seen: Set<unknown>): void {
  if (v === null || typeof v !== "object" || seen.has(v)) return;
  seen.add(v);
  if (v instanceof GpuArray) {
    out.push(v);
    return;
  }
  if (ArrayBuffer.isView(v)) return;
  if (Array.isArray(v)) {
    for (const x of v) collect(x, out, seen);
    return;
  }
  if (v instanceof Map) {
    for (const x of v.values()) collect(x, out, seen);
    return;
  }
  const o = v as { storage?: unknown; data?: unknown };
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) {
    // A class instance: a tensor keeps its storage; nothing else is walked.
    if (o.storage instanceof GpuArray) out.push(o.storage);
    return;
  }
  for (const x of Object.values(v)) collect(x, out, seen);
}

/** The storages a scope's result holds (tensors, arrays, maps and plain objects of them). */
export function storagesOf(v: unknown): GpuArray[] {
  const out: GpuArray[] = [];
  collect(v, out, new Set());
  return out;
}

const asGpu = (s: Storage | DeviceArray): GpuArray => {
  if (!(s instanceof GpuArray)) throw new TypeError("webgpu: storage of another backend");
  return s;
};

/** The WebGPU backend on a device (from `requestWebGPU`, or a device the caller already has). */
export function makeWebGPUBackend(device: GPUDevice, adapter?: AdapterDescription): WebGPUBackend {
  const ctx = new GpuContext(device);
  const kernels = makeWebGPUKernels(ctx);
  const desc = adapter ?? { vendor: "unknown", architecture: "unknown", description: "", software: false };
  const tag = (s: string) =>
    s
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-|-$/g, "") || "unknown";
  return {
    name: "webgpu",
    variant: `webgpu-${tag(desc.vendor)}-${tag(desc.architecture)}`,
    device: true,
    alloc: (_dtype, n) => ctx.alloc(n),
    upload: (values) => ctx.upload(values),
    read: (s) => (s instanceof GpuArray ? ctx.read(s) : Promise.resolve(s as Data)),
    release: (s) => ctx.recycle(asGpu(s)),
    kernels,
    scope: (fn) => ctx.scope(fn, storagesOf),
    unscoped: (fn) => ctx.unscoped(fn),
    ctx,
    adapter: desc,
  };
}

/** Options of `requestWebGPU`. */
export interface RequestOptions {
  /** Accept a software adapter (SwiftShader, llvmpipe, WARP): tests only. */
  allowSoftware?: boolean;
  /** The GPU object to use instead of navigator.gpu / the `webgpu` package (tests). */
  gpu?: GPU;
}

const SOFTWARE = /swiftshader|llvmpipe|lavapipe|softpipe|microsoft basic render|warp/i;

/** Whether an adapter is a CPU implementation. */
export function isSoftwareAdapter(
  info: { vendor?: string; architecture?: string; description?: string; device?: string },
  fallback = false,
): boolean {
  return fallback || SOFTWARE.test([info.vendor, info.architecture, info.description, info.device].join(" "));
}

/** navigator.gpu in a browser; in Node the `webgpu` package (Dawn), loaded on demand; null when neither exists. */
async function findGpu(): Promise<GPU | string> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  const isNode =
    typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === "string";
  if (!isNode) return "this browser has no WebGPU (navigator.gpu is absent; it needs a secure context)";
  try {
    const pkg = "webgpu"; // a variable: bundlers must not pull the Node binding into a page
    const mod = (await import(/* @vite-ignore */ pkg)) as { create(flags: string[]): GPU };
    return mod.create([]);
  } catch (e) {
    return `the webgpu package cannot load here (${(e as Error).message.split("\n")[0]})`;
  }
}

/** The WebGPU backend on the best adapter here, or a one-line reason why there is none. */
export async function requestWebGPU(
  opts: RequestOptions = {},
): Promise<{ backend: WebGPUBackend; reason?: undefined } | { backend?: undefined; reason: string }> {
  const gpu = opts.gpu ?? (await findGpu());
  if (typeof gpu === "string") return { reason: gpu };
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  } catch (e) {
    return { reason: `requesting a WebGPU adapter failed (${(e as Error).message.split("\n")[0]})` };
  }
  if (!adapter) return { reason: "no WebGPU adapter found (no GPU, or no driver WebGPU can use)" };
  const info = (adapter as { info?: GPUAdapterInfo }).info ?? ({} as GPUAdapterInfo);
  const fallback =
    (info as { isFallbackAdapter?: boolean }).isFallbackAdapter === true ||
    (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  const desc: AdapterDescription = {
    vendor: info.vendor ?? "",
    architecture: info.architecture ?? "",
    description: info.description ?? "",
    software: isSoftwareAdapter(info, fallback),
  };
  if (desc.software && !opts.allowSoftware) {
    const what = [desc.vendor, desc.architecture].filter(Boolean).join(" ") || desc.description || "unknown";
    return {
      reason: `the only WebGPU adapter is a software renderer (${what}): slower than the CPU backends, so not used`,
    };
  }
  const lim = adapter.limits;
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({
      requiredLimits: {
        maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize,
        maxBufferSize: lim.maxBufferSize,
        maxStorageBuffersPerShaderStage: Math.min(lim.maxStorageBuffersPerShaderStage, 10),
      },
    });
  } catch (e) {
    return { reason: `the WebGPU adapter refused a device (${(e as Error).message.split("\n")[0]})` };
  }
  return { backend: makeWebGPUBackend(device, desc) };
}
