/**
 * The controller: owns the page state (base run, compared runs, tour stop), one trainer worker per run, and the
 * views. Training and measuring happen in the workers; this thread reacts to controls at once and redraws at
 * most once per animation frame, whatever the network's size.
 */
import {
  compareProblems,
  parseCompare,
  runLabels,
  runStates,
  serializeCompare,
  writePage,
  type PageState,
} from "./page.js";
import { RunClient } from "./runClient.js";
import type { EngineChoice } from "./engine.js";
import { effectOf, type State } from "./state.js";
import { tourStop, verdict } from "./tour.js";
import { LineChart, type Series } from "./views/chart.js";
import { RUN_COLORS, SERIES_COLORS } from "./views/colors.js";
import { CompareCards } from "./views/compareCards.js";
import { Controls } from "./views/controls.js";
import { dirichletEnergy, FunctionView, minimalInterpolant } from "./views/functionView.js";
import { GradientView } from "./views/gradientView.js";
import { MetricsPanel } from "./views/metricsPanel.js";

export interface Elements {
  controls: HTMLElement;
  functionCanvas: HTMLCanvasElement;
  functionLegend: HTMLElement;
  gradientCanvas: HTMLCanvasElement;
  gradientLegend: HTMLElement;
  compareCards: HTMLElement;
  metrics: HTMLElement;
  lossCanvas: HTMLCanvasElement;
  gcCanvas: HTMLCanvasElement;
  ratioCanvas: HTMLCanvasElement;
  playButton: HTMLButtonElement;
  stepButton: HTMLButtonElement;
  resetButton: HTMLButtonElement;
  seedButton: HTMLButtonElement;
  status: HTMLElement;
  message: HTMLElement;
  tourText: HTMLElement;
  verdict: HTMLElement;
  compareInput: HTMLInputElement;
}

export type Status = "loading" | "ready" | "training" | "paused" | "running" | "done" | "diverged" | "dead";

export class App {
  page: PageState;
  runs: RunClient[] = [];
  private readonly controls: Controls;
  private readonly functionView: FunctionView;
  private readonly gradientView: GradientView;
  private readonly metricsPanel: MetricsPanel;
  private readonly lossChart: LineChart;
  private readonly gcChart: LineChart;
  private readonly ratioChart: LineChart;
  private readonly cards: CompareCards;
  private dirty = false;
  private running = false;
  /** What the status says when nothing is training: after a reset, a pause or step, or an autorun. */
  private phase: "ready" | "paused" | "done" = "ready";
  /** Frames drawn with new training results while playing, and the milliseconds spent playing. */
  private readonly meter = { frames: 0, ms: 0, since: 0 as number | null, recent: [] as number[] };

  constructor(
    private readonly el: Elements,
    initial: PageState,
    private readonly engine: EngineChoice,
  ) {
    this.page = initial;
    this.controls = new Controls(el.controls, initial.state, (next) => this.setState(next));
    this.functionView = new FunctionView(el.functionCanvas, 300, el.functionLegend);
    this.gradientView = new GradientView(el.gradientCanvas, el.gradientLegend);
    this.metricsPanel = new MetricsPanel(el.metrics);
    this.lossChart = new LineChart(el.lossCanvas, { width: 370, height: 170, yLabel: "loss", xLabel: "step" });
    this.gcChart = new LineChart(el.gcCanvas, {
      width: 370,
      height: 200,
      log: true,
      yLabel: "GC and bounds",
      xLabel: "step",
    });
    this.ratioChart = new LineChart(el.ratioCanvas, {
      width: 370,
      height: 170,
      log: true,
      yLabel: "GC / T1 bound",
      xLabel: "step",
    });
    this.cards = new CompareCards(el.compareCards);
    el.playButton.addEventListener("click", () => this.toggle());
    el.stepButton.addEventListener("click", () => this.step());
    el.resetButton.addEventListener("click", () => this.reset());
    el.seedButton.addEventListener("click", () =>
      this.setState({ ...this.page.state, seed: 1 + Math.floor(Math.random() * 999998) }),
    );
    el.compareInput.addEventListener("change", () => this.setCompareText(el.compareInput.value));
    document.addEventListener("keydown", (e) => {
      // Space plays and pauses, unless focus is somewhere Space means something else.
      if (e.key !== " " || e.ctrlKey || e.altKey || e.metaKey) return;
      const t = e.target as HTMLElement | null;
      if (t && t.closest("input, select, textarea, button, a, summary, [contenteditable]") !== null) return;
      e.preventDefault();
      this.toggle();
    });
    this.setPage(initial, true);
  }

  get state(): State {
    return this.page.state;
  }

  get playing(): boolean {
    return this.runs.some((r) => r.playing);
  }

  /** A new page state (URL or tour): runs are rebuilt when their number changes, else reset or retuned. */
  setPage(next: PageState, force = false): void {
    const prevStates = runStates(this.page);
    const nextStates = runStates(next);
    this.page = next;
    this.controls.show(next.state);
    if (document.activeElement !== this.el.compareInput) this.el.compareInput.value = serializeCompare(next.compare);
    writePage(next, this.engine !== "auto" ? new URLSearchParams({ engine: this.engine }) : undefined);
    if (force || prevStates.length !== nextStates.length) {
      for (const r of this.runs) r.terminate();
      this.runs = nextStates.map((s, i) => this.makeRun(s, i));
      this.meter.since = null;
    } else {
      nextStates.forEach((s, i) => {
        const effect = effectOf(prevStates[i], s);
        if (effect === "reset") this.runs[i].reset(s);
        else this.runs[i].configure(s);
      });
    }
    document.body.classList.toggle("comparing", next.compare.length > 0);
    this.showTour();
    this.el.message.textContent = "";
    if (this.runs.some((r) => !r.last)) this.phase = "ready";
    this.updateStatus();
    this.requestDraw();
  }

  /** The compare box: applied when valid, else left as typed and marked invalid with the reasons. */
  private setCompareText(text: string): void {
    const problems = compareProblems(text);
    const help = document.getElementById("help-compare");
    this.el.compareInput.setAttribute("aria-invalid", String(problems.length > 0));
    if (help) help.textContent = problems.length ? `Not applied: ${problems.join("; ")}.` : COMPARE_HELP;
    if (problems.length) return;
    this.setPage({ ...this.page, compare: parseCompare(text), tour: null });
  }

  private makeRun(s: State, i: number): RunClient {
    const r = new RunClient(s, this.engine);
    r.onUpdate = () => {
      if (this.runs.length > 1 && this.runs.every((x) => !x.playing || x.tickDone === this.tickId)) this.nextTick();
      this.requestDraw(true);
    };
    r.onPlaying = () => this.syncPlaying();
    r.onError = (m) => {
      this.el.message.textContent = `Run ${i + 1}: ${m}`;
    };
    return r;
  }

  /** A new state from the controls: every run gets it (with its own overrides). */
  setState(next: State): void {
    this.setPage({ ...this.page, state: next });
  }

  toggle(): void {
    if (this.playing) this.pause();
    else this.play();
  }

  play(): void {
    const lockstep = this.runs.length > 1;
    for (const r of this.runs) r.play(lockstep);
    this.syncPlaying();
    if (lockstep) this.nextTick();
  }

  /** Compare mode: every run plays one frame per tick, and the next tick waits for the slowest run. */
  private tickId = 0;
  private nextTick(): void {
    if (!this.playing) return;
    this.tickId++;
    for (const r of this.runs) if (r.playing) r.tick(this.tickId);
  }

  pause(): void {
    this.phase = "paused";
    for (const r of this.runs) r.pause();
    this.syncPlaying();
  }

  step(): void {
    this.phase = "paused";
    runStates(this.page).forEach((s, i) => this.runs[i].step(s.stepsPerFrame));
    this.syncPlaying();
  }

  /** The same start again: parameters and data from the same seed (use "New seed" for different ones). */
  reset(): void {
    this.phase = "ready";
    runStates(this.page).forEach((s, i) => this.runs[i].reset(s));
    this.el.message.textContent = "";
    this.syncPlaying();
  }

  /** Runs n steps of the base run (compared runs in proportion to their steps per frame) in the workers. */
  async runSteps(n: number, points = Math.min(n, 100)): Promise<number> {
    this.running = true;
    this.setStatus("running");
    const states = runStates(this.page);
    const t0 = performance.now();
    await Promise.all(
      states.map((s, i) => this.runs[i].run(Math.round((n * s.stepsPerFrame) / states[0].stepsPerFrame), points)),
    );
    this.running = false;
    this.phase = "done";
    this.showNumbers(); // with the status: "done" never shows the numbers of before the run
    this.updateStatus();
    this.requestDraw();
    return performance.now() - t0;
  }

  private syncPlaying(): void {
    const playing = this.playing;
    this.el.playButton.textContent = playing ? "❚❚ Pause" : "▶ Play";
    this.el.playButton.setAttribute("aria-pressed", String(playing));
    const now = performance.now();
    if (playing && this.meter.since === null) this.meter.since = now;
    if (!playing && this.meter.since !== null) {
      this.meter.ms += now - this.meter.since;
      this.meter.since = null;
      this.meter.recent = [];
    }
    // The numbers change with the status, not at the next animation frame: "paused" never shows a step that is
    // still about to move.
    if (!playing) this.showNumbers();
    this.updateStatus();
  }

  /** The single run's numbers (step, losses, GC, bounds): cheap text, so shown at once, outside a redraw. */
  private showNumbers(): void {
    if (this.runs.length !== 1) return;
    const r = this.runs[0];
    this.metricsPanel.update(r.last, r.last ? Math.max(r.workerStep, r.last.step) : 0, this.state.activation);
  }

  /**
   * The status badge: loading until every run has its first numbers, "training" until every worker has confirmed
   * a pause (so "paused" means the training really stopped), then diverged, dead, or the phase.
   */
  private updateStatus(): void {
    if (this.running) return this.setStatus("running");
    if (this.runs.some((r) => !r.last)) return this.setStatus("loading");
    if (this.runs.some((r) => r.playing || r.pausing)) return this.setStatus("training");
    const bad = this.problem();
    this.setStatus(bad ? bad.status : this.phase);
  }

  /** Runs that diverged or died (GC 0: every unit off, or a constant output), as a status and a sentence. */
  private problem(): { status: Status; text: string } | null {
    const labels = runLabels(this.page);
    const name = (i: number) => (this.runs.length > 1 ? `Run ${labels[i]}: ` : "");
    const notes: string[] = [];
    let status: Status | null = null;
    this.runs.forEach((r, i) => {
      const m = r.last;
      if (r.diverged || (m && !Number.isFinite(m.trainLoss))) {
        status = "diverged";
        notes.push(`${name(i)}the loss diverged (NaN or ∞): lower the learning rate or the init scale, then Reset.`);
      } else if (m && m.step > 0 && m.gcTrain === 0 && m.gcTest === 0) {
        status ??= "dead";
        notes.push(
          `${name(i)}the network is dead: GC is 0 (every unit is off, or the output is constant) and it cannot learn; lower the learning rate, then Reset.`,
        );
      }
    });
    return status ? { status, text: notes.join(" ") } : null;
  }

  setStatus(s: Status): void {
    this.el.status.textContent = s;
    this.el.status.dataset.value = s;
  }

  /** Frames per second over the last second of playing. */
  fps(): number {
    const r = this.meter.recent;
    if (!this.playing || r.length < 2) return 0;
    return ((r.length - 1) * 1000) / (r[r.length - 1] - r[0]);
  }

  totals(): { frames: number; ms: number } {
    const extra = this.meter.since !== null ? performance.now() - this.meter.since : 0;
    return { frames: this.meter.frames, ms: this.meter.ms + extra };
  }

  private fresh = false;
  private requestDraw(fresh = false): void {
    this.fresh ||= fresh;
    if (this.dirty) return;
    this.dirty = true;
    requestAnimationFrame(() => {
      this.dirty = false;
      if (this.fresh && this.playing) {
        const now = performance.now();
        this.meter.frames++;
        this.meter.recent.push(now);
        while (this.meter.recent.length > 2 && now - this.meter.recent[0] > 1000) this.meter.recent.shift();
      }
      this.fresh = false;
      this.render();
    });
  }

  private showTour(): void {
    const stop = tourStop(this.page.tour);
    this.el.tourText.hidden = !stop;
    this.el.tourText.innerHTML = "";
    if (stop) {
      const h = Object.assign(document.createElement("b"), { textContent: `${stop.tag}: ${stop.title}. ` });
      this.el.tourText.append(h, document.createTextNode(stop.text));
    }
    for (const b of document.querySelectorAll<HTMLButtonElement>("[data-tour]"))
      b.setAttribute("aria-current", String(b.dataset.tour === this.page.tour));
  }

  /** Flags runs that diverged or died in the status and the message line. */
  private health(): void {
    const bad = this.problem();
    if (bad) this.el.message.textContent = bad.text;
    else if (this.el.message.dataset.health) this.el.message.textContent = "";
    this.el.message.dataset.health = bad ? "1" : "";
    this.updateStatus();
  }

  render(): void {
    const comparing = this.runs.length > 1;
    const labels = runLabels(this.page);
    if (!comparing) {
      const r = this.runs[0];
      if (r.domain && r.grid && r.values && r.train && r.test) {
        this.functionView.draw(r.domain, r.grid, r.values, r.train, r.test);
        this.gradientView.draw(r.domain, r.grid, r.values, r.train, r.test, this.state.scale);
      }
      this.showNumbers();
      this.metricsPanel.setFps(this.fps());
      const h = r.history;
      this.lossChart.draw(
        [
          { label: "train", color: SERIES_COLORS.train, ...h.series((m) => m.trainLoss) },
          { label: "test", color: SERIES_COLORS.test, ...h.series((m) => m.testLoss) },
        ],
        "loss",
      );
      this.gcChart.draw([
        { label: "GC train", color: SERIES_COLORS.gc, ...h.series((m) => m.gcTrain) },
        { label: "GC test", color: SERIES_COLORS.gcTest, dashed: true, ...h.series((m) => m.gcTest) },
        { label: "T1", color: SERIES_COLORS.t1, dashed: true, ...h.series((m) => m.t1) },
        { label: "T2", color: SERIES_COLORS.t2, dashed: true, ...h.series((m) => m.t2) },
      ]);
      this.ratioChart.draw([{ label: "GC / T1", color: SERIES_COLORS.t1, ...h.series((m) => m.gcTrain / m.t1) }]);
    } else {
      // Compared heatmaps always share the fixed scale: one colour means one value in every card.
      this.cards.draw(this.runs, labels, "fixed");
      this.metricsPanel.setFps(this.fps());
      const per = (pick: (m: NonNullable<RunClient["last"]>) => number | null, dashed = false): Series[] =>
        this.runs.map((r, i) => ({
          label: labels[i],
          color: RUN_COLORS[i % RUN_COLORS.length],
          dashed,
          ...r.history.series(pick),
        }));
      const classification = this.runs[0].last?.testAcc !== null && this.runs[0].last?.testAcc !== undefined;
      this.lossChart.draw(
        classification ? per((m) => m.testAcc) : per((m) => m.testLoss),
        classification ? "test accuracy" : "test loss",
      );
      this.gcChart.draw(
        per((m) => m.gcTrain),
        "GC (train)",
      );
      this.ratioChart.draw(
        per((m) => m.gcTrain / m.t1),
        "GC / T1 bound",
      );
    }
    this.health();
    const stop = tourStop(this.page.tour);
    const r0 = this.runs[0];
    let energy: { net: number; interpolant: number } | undefined;
    if (stop && r0.domain?.dims === 1 && r0.train && r0.grid && r0.values) {
      const interp = minimalInterpolant(r0.train.x, r0.train.targets!);
      const net = dirichletEnergy(r0.grid, r0.values.gradSq, interp.xs[0], interp.xs[interp.xs.length - 1]);
      energy = { net, interpolant: interp.energy };
    }
    const v =
      stop && this.runs.every((r) => r.last)
        ? verdict(
            stop,
            this.runs.map((r) => r.last),
            labels,
            energy,
          )
        : null;
    this.el.verdict.hidden = !v?.text;
    this.el.verdict.textContent = v?.text ?? "";
    this.el.verdict.dataset.holds = v ? String(v.holds) : "";
  }
}

export const COMPARE_HELP =
  "runs beside this one, each field:value (URL names), runs separated by |: e.g. l2:0.03|gc:0.1|label-noise:0.2";
