/**
 * Entry point: load the wasm kernels, read the state from the URL, start the app. `#…&autorun=N` runs N steps
 * at once after loading (a deterministic path for tests and for sharing a trained view), and `window.gcx` is a
 * small hook for scripts: runSteps, metrics, state, fps.
 */
import "./style.css";
import { App } from "./app.js";
import { parseState, paramsOf, writeUrl } from "./state.js";
import { loadKernels } from "./wasm.js";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

async function main(): Promise<void> {
  const engine = await loadKernels();
  const engineEl = $("engine");
  engineEl.textContent = engine.kind === "wasm" ? "engine: wasm SIMD" : "engine: JS";
  engineEl.dataset.value = engine.kind;
  if (engine.error) engineEl.title = `wasm kernels unavailable: ${engine.error}`;

  const params = paramsOf(location.hash);
  const app = new App(
    {
      controls: $("controls"),
      functionCanvas: $("function-canvas"),
      gradientCanvas: $("gradient-canvas"),
      gradientLegend: $("gradient-legend"),
      metrics: $("metrics"),
      lossCanvas: $("loss-chart"),
      gcCanvas: $("gc-chart"),
      playButton: $("play"),
      stepButton: $("step"),
      resetButton: $("reset"),
      status: $("status"),
      message: $("message"),
    },
    parseState(location.hash),
  );
  writeUrl(app.state, engine.kind === "js" && params.get("engine") === "js" ? new URLSearchParams({ engine: "js" }) : undefined);

  // Someone pasted or edited the hash: follow it.
  window.addEventListener("hashchange", () => app.setState(parseState(location.hash)));

  (window as unknown as { gcx: unknown }).gcx = {
    runSteps: (n: number) => app.runSteps(n, Math.min(n, 100)),
    metrics: () => app.history.last,
    history: () => app.history.all,
    state: () => app.state,
    fps: () => app.loop.fps(),
    timings: () => ({ ...app.timings }),
    totals: () => app.loop.totals(),
    play: () => app.loop.play(),
    pause: () => app.loop.pause(),
    engine: engine.kind,
  };

  const autorun = Number(params.get("autorun"));
  if (Number.isInteger(autorun) && autorun > 0) {
    app.setStatus("running");
    // Let the page paint once before the synchronous run.
    await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
    const t0 = performance.now();
    app.runSteps(autorun, Math.min(autorun, 100));
    $("message").textContent = `Ran ${autorun} steps in ${((performance.now() - t0) / 1000).toFixed(2)} s.`;
    app.setStatus("done");
  }
}

main().catch((e) => {
  const msg = document.getElementById("message");
  if (msg) msg.textContent = `Error: ${e instanceof Error ? e.message : String(e)}`;
  throw e;
});
