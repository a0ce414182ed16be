/**
 * Picks the trainer worker's engine (issue 12): WebGPU when `navigator.gpu` gives a hardware adapter, else the
 * library's WebAssembly SIMD kernels, else its pure-JS kernels (all three compute in float32; WebGPU's numbers
 * agree with the others to float32 rounding, the CPU ones to every digit). A software adapter (SwiftShader,
 * llvmpipe, WARP) is never picked by itself: it is slower than wasm. The URL parameter `engine=webgpu` forces WebGPU,
 * software adapters included (tests, curious users), and `engine=js` forces the pure-JS kernels.
 *
 * The wasm module built by `npm run build:wasm` is bundled by Vite (inlined as a data: URL while it is under 4 KiB,
 * a hashed file otherwise, either way from this origin, so it works offline) and handed to `initWasmKernels`. On any
 * failure the engine keeps its pure-JS kernels, which compute the same numbers.
 */
import wasmUrl from "../../dist/wasm/kernels.wasm?url";
import { setBackend } from "../../src/engine/backend.js";
import { requestWebGPU } from "../../src/engine/backends/webgpu/index.js";
import { initWasmKernels, wasmAvailable } from "../../src/engine/wasmKernels.js";
import type { EngineChoice, EngineKind } from "./engine.js";

/** Loads the wasm kernels in this realm; `js` with the reason when they cannot run. */
async function loadWasm(): Promise<{ kind: EngineKind; error?: string }> {
  try {
    const response = await fetch(wasmUrl);
    if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
    initWasmKernels(await response.arrayBuffer());
    return { kind: wasmAvailable() ? "wasm" : "js" };
  } catch (e) {
    return { kind: "js", error: `wasm kernels unavailable: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/**
 * Selects this realm's engine (the trainer worker calls it once, before building a session). `error` says why a
 * better engine was not used, when that is worth telling (WebGPU was asked for, or wasm failed); an absent WebGPU
 * under auto is not an error.
 */
export async function loadEngine(choice: EngineChoice): Promise<{ kind: EngineKind; error?: string }> {
  if (choice === "js") return { kind: "js" };
  const hasGpu = typeof navigator !== "undefined" && "gpu" in navigator && navigator.gpu != null;
  let why: string | undefined;
  if (choice === "webgpu" || hasGpu) {
    try {
      const r = await requestWebGPU({ allowSoftware: choice === "webgpu" });
      if (r.backend) {
        setBackend("webgpu");
        return { kind: "webgpu" };
      }
      why = r.reason;
    } catch (e) {
      why = `WebGPU failed: ${e instanceof Error ? e.message : String(e)}`;
    }
  }
  const cpu = await loadWasm();
  const error = [choice === "webgpu" ? why : undefined, cpu.error].filter(Boolean).join("; ");
  return error ? { kind: cpu.kind, error } : { kind: cpu.kind };
}
