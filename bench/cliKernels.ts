/** Benchmarks run the kernels the CLI runs (src/cli/main.ts): relaxed-SIMD FMA where the runtime can. */
import { setFlagsFromString } from "node:v8";
import { relaxedSimdSupported } from "../src/engine/wasmKernels.js";

/** Call before any kernel runs (the kernels compile on first use). GCX_KERNELS=plain keeps SIMD128. */
export function useCliKernels(): void {
  if (process.env.GCX_KERNELS !== "plain" && !relaxedSimdSupported())
    setFlagsFromString("--experimental-wasm-relaxed-simd");
}
