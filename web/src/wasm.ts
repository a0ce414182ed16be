/**
 * Puts the library's WebAssembly SIMD matmul kernel to work in the browser: the trainer worker fetches the module built by
 * `npm run build:wasm` (bundled by Vite: inlined as a data: URL while it is under 4 KiB, a hashed file otherwise,
 * either way from this origin, so it works offline) and hands the bytes to `initWasmKernels`. On any failure
 * the engine keeps its pure-JS kernels, which compute the same numbers.
 */
import wasmUrl from "../../dist/wasm/kernels.wasm?url";
import { initWasmKernels, wasmAvailable } from "../../src/engine/wasmKernels.js";

export type EngineKind = "wasm" | "js";

/** Installs the wasm kernels in this realm (the trainer worker calls it); `js` keeps the pure-JS kernels. */
export async function loadKernels(js = false): Promise<{ kind: EngineKind; error?: string }> {
  if (js) return { kind: "js" };
  try {
    const response = await fetch(wasmUrl);
    if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
    initWasmKernels(await response.arrayBuffer());
    return { kind: wasmAvailable() ? "wasm" : "js" };
  } catch (e) {
    return { kind: "js", error: e instanceof Error ? e.message : String(e) };
  }
}
