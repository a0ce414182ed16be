/** The playground's engines (issue 12): which the URL asks for and what the badge calls them. */

/** The engine a trainer worker runs on. */
export type EngineKind = "webgpu" | "wasm" | "js";
/** What the page asks for: the best engine here (`auto`), or one by name (`engine=webgpu`, `engine=js`). */
export type EngineChoice = "auto" | "webgpu" | "js";

/** The engine the URL parameter `engine` asks for (`webgpu` or `js`; anything else, or none, is auto). */
export function engineChoice(value: string | null): EngineChoice {
  return value === "webgpu" || value === "js" ? value : "auto";
}

/** What the engine badge says for each engine. */
export const ENGINE_LABEL: Record<EngineKind, string> = { webgpu: "WebGPU", wasm: "wasm SIMD", js: "JS" };
