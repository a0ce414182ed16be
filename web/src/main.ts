/**
 * Entry point: read the page state from the URL, start the app (which starts one trainer worker per run), wire
 * the tour. `#…&autorun=N` runs N steps at once after loading or when the hash changes to it (a deterministic
 * path for tests and for sharing a trained view), and `window.gcx` is a small hook for scripts.
 */
import "./style.css";
import { App, COMPARE_HELP } from "./app.js";
import { parsePage } from "./page.js";
import { paramsOf } from "./state.js";
import { TOUR } from "./tour.js";
import { ENGINE_LABEL, engineChoice } from "./engine.js";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

async function autorunFrom(app: App, hash: string): Promise<void> {
  const autorun = Number(paramsOf(hash).get("autorun"));
  if (!(Number.isInteger(autorun) && autorun >= 0) || paramsOf(hash).get("autorun") === null) return;
  const ms = await app.runSteps(autorun);
  $("message").textContent = `Ran ${autorun} steps in ${(ms / 1000).toFixed(2)} s.`;
}

function tourButtons(): void {
  const box = $("tour-buttons");
  for (const stop of TOUR) {
    const b = Object.assign(document.createElement("button"), {
      textContent: stop.tag,
      title: stop.title,
      type: "button",
    });
    b.dataset.tour = stop.id;
    b.dataset.testid = `tour-${stop.id}`;
    b.setAttribute("aria-label", `${stop.tag}: ${stop.title}`);
    // A tour stop is a link like any other: set the hash, and the hash-change handler loads and runs it.
    b.addEventListener("click", () => {
      location.hash = `${stop.hash}&tour=${stop.id}&autorun=${stop.steps}`;
    });
    box.append(b);
  }
}

async function main(): Promise<void> {
  const initialHash = location.hash; // before the app rewrites the address bar (without autorun)
  const choice = engineChoice(paramsOf(initialHash).get("engine"));
  $("help-compare").textContent = COMPARE_HELP;
  tourButtons();
  const app = new App(
    {
      controls: $("controls"),
      functionCanvas: $("function-canvas"),
      functionLegend: $("function-legend"),
      gradientCanvas: $("gradient-canvas"),
      gradientLegend: $("gradient-legend"),
      compareCards: $("compare-cards"),
      metrics: $("metrics"),
      lossCanvas: $("loss-chart"),
      gcCanvas: $("gc-chart"),
      ratioCanvas: $("ratio-chart"),
      playButton: $("play"),
      stepButton: $("step"),
      resetButton: $("reset"),
      seedButton: $("new-seed"),
      status: $("status"),
      message: $("message"),
      tourText: $("tour-text"),
      verdict: $("verdict"),
      compareInput: $("compare-input"),
    },
    parsePage(location.hash),
    choice,
  );
  $("controls").append(document.querySelector(".compare-box")!); // after the generated controls
  const engine = await app.runs[0].ready;
  const engineEl = $("engine");
  engineEl.textContent = `engine: ${ENGINE_LABEL[engine.engine]} (worker)`;
  engineEl.dataset.value = engine.engine;
  if (engine.error) engineEl.title = engine.error;

  // Someone pasted or edited the hash (or took a tour stop): follow it, autorun included.
  window.addEventListener("hashchange", () => {
    const hash = location.hash;
    // With autorun (a tour stop, a pasted link) every run starts afresh; without, settings apply to the runs as they are.
    app.setPage(parsePage(hash), paramsOf(hash).get("autorun") !== null);
    void autorunFrom(app, hash);
  });

  (window as unknown as { gcx: unknown }).gcx = {
    runSteps: (n: number) => app.runSteps(n),
    metrics: () => app.runs[0].last,
    history: () => app.runs[0].history.all,
    runs: () => app.runs.map((r) => ({ last: r.last, timings: r.timings, playing: r.playing })),
    state: () => app.state,
    page: () => app.page,
    fps: () => app.fps(),
    timings: () => ({ ...app.runs[0].timings }),
    totals: () => app.totals(),
    play: () => app.play(),
    pause: () => app.pause(),
    engine: engine.engine,
  };
  await autorunFrom(app, initialHash);
}

main().catch((e) => {
  const msg = document.getElementById("message");
  if (msg) msg.textContent = `Error: ${e instanceof Error ? e.message : String(e)}`;
  throw e;
});
