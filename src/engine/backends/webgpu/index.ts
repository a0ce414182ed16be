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
import { Tensor } from "../../tensor.js";
import type { Backend } from "../../kernelTable.js";
import type { Data, DeviceArray, Storage } from "./contract.js";
import { GpuArray, GpuContext, GpuIndexArray, type Bindable } from "./context.js";
import { makeWebGPUKernels, type WebGPUKernels } from "./kernels.js";

export { GpuArray, GpuContext, GpuIndexArray } from "./context.js";
export type { WebGPUKernels } from "./kernels.js";

/** The WebGPU backend: the engine's Backend interface over GPU storage (device: reads are async). */
export interface WebGPUBackend extends Backend {
  readonly name: "webgpu";
  /** "webgpu-<vendor>-<architecture>": kernels' transcendental functions differ between GPUs in the last bits. */
  readonly variant: string;
  readonly device: true;
  allocIndices(n: number): GpuIndexArray;
  upload(values: Data): Storage;
  read(s: Storage): Promise<Data>;
  release(s: Storage): void;
  readonly kernels: WebGPUKernels;
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

/**
 * A scope's result made independent of the scope: tensors keep their device storage but lose their graphs (whose
 * intermediate buffers the scope reclaims); arrays, maps and plain objects are rebuilt around them. Collects the
 * storages to keep in `keep`.
 */
export function detach(v: unknown, keep: Bindable[]): unknown {
  if (v instanceof Tensor) {
    const s = v.storage;
    if (s instanceof GpuArray) keep.push(s);
    return v.requiresGrad || v.node ? new Tensor(s, v.shape) : v;
  }
  if (v instanceof GpuArray || v instanceof GpuIndexArray) {
    keep.push(v);
    return v;
  }
  if (v === null || typeof v !== "object" || ArrayBuffer.isView(v)) return v;
  if (Array.isArray(v)) return v.map((x) => detach(x, keep));
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [k, detach(x, keep)]));
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = detach(x, keep);
  return out;
}

const asGpu = (s: Storage | DeviceArray): GpuArray => {
  if (!(s instanceof GpuArray)) throw new TypeError("webgpu: storage of another backend");
  return s;
};

const float64Refused = () => new RangeError("float64: not available on the webgpu backend (it computes in float32)");

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
    alloc: (dtype, n) => {
      if (dtype === "float64") throw float64Refused();
      return ctx.alloc(n);
    },
    allocIndices: (n) => ctx.allocIndices(n),
    upload: (values) => {
      if (values instanceof Float64Array) throw float64Refused(); // never a silent change of precision
      return ctx.upload(values);
    },
    read: (s) => (s instanceof GpuArray ? ctx.read(s) : Promise.resolve(s as Data)),
    release: (s) => ctx.recycle(asGpu(s)),
    kernels,
    scope<T>(fn: () => T): T {
      let detached: unknown;
      ctx.scope(fn, (r) => {
        const keep: Bindable[] = [];
        detached = detach(r, keep);
        return keep;
      });
      return detached as T;
    },
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

/**
 * On Linux, Dawn reaches GPUs through the Vulkan loader; without libvulkan.so.1 it finds nothing and prints a
 * native warning on stderr, so look for the loader first (LD_LIBRARY_PATH and the usual library folders).
 */
async function missingVulkanLoader(): Promise<string | null> {
  const proc = (globalThis as { process?: { platform?: string; env?: Record<string, string | undefined> } }).process;
  if (proc?.platform !== "linux") return null;
  const fsName = "node:fs";
  const fs = (await import(/* @vite-ignore */ fsName)) as { existsSync: (p: string) => boolean };
  const dirs = [
    ...(proc.env?.LD_LIBRARY_PATH ?? "").split(":").filter(Boolean),
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/lib/x86_64-linux-gnu",
    "/lib64",
    "/lib",
    "/usr/local/lib",
  ];
  return dirs.some((d) => fs.existsSync(`${d}/libvulkan.so.1`))
    ? null
    : "no WebGPU adapter: no Vulkan loader (libvulkan.so.1) for the webgpu package to reach a GPU through";
}

/** navigator.gpu in a browser; in Node the `webgpu` package (Dawn), loaded on demand; null when neither exists. */
async function findGpu(): Promise<GPU | string> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  const isNode =
    typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === "string";
  if (!isNode) return "this browser has no WebGPU (navigator.gpu is absent; it needs a secure context)";
  const noLoader = await missingVulkanLoader();
  if (noLoader) return noLoader;
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
  let adapter: GPUAdapter | null;
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
  const backend = makeWebGPUBackend(device, desc);
  installed = backend;
  return { backend };
}

let installed: WebGPUBackend | null = null;

/** The backend the last successful `requestWebGPU` made (what `setBackend("webgpu")` selects), or null. */
export function installedWebGPU(): WebGPUBackend | null {
  return installed;
}
