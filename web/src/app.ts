/**
 * The controller: owns the state, the training session and its history, reacts to control changes, and runs
 * the frame work (a few steps, one measurement, a redraw) that the loop calls while playing.
 */
import { History } from "./history.js";
import { Loop } from "./loop.js";
import { Session, type Metrics } from "./session.js";
import { effectOf, writeUrl, type State } from "./state.js";
import { LineChart } from "./views/chart.js";
import { SERIES_COLORS } from "./views/colors.js";
import { Controls } from "./views/controls.js";
import { FunctionView } from "./views/functionView.js";
import { GradientView } from "./views/gradientView.js";
import { MetricsPanel } from "./views/metricsPanel.js";
import { domainOf, gridPoints, type Domain } from "./views/plane.js";

export interface Elements {
  controls: HTMLElement;
  functionCanvas: HTMLCanvasElement;
  gradientCanvas: HTMLCanvasElement;
  gradientLegend: HTMLElement;
  metrics: HTMLElement;
  lossCanvas: HTMLCanvasElement;
  gcCanvas: HTMLCanvasElement;
  playButton: HTMLButtonElement;
  stepButton: HTMLButtonElement;
  resetButton: HTMLButtonElement;
  status: HTMLElement;
  message: HTMLElement;
}

export type Status = "ready" | "training" | "paused" | "running" | "done" | "diverged";

export class App {
  state: State;
  session!: Session;
  readonly history = new History();
  readonly loop: Loop;
  private domain!: Domain;
  private grid!: Float32Array;
  private readonly controls: Controls;
  private readonly functionView: FunctionView;
  private readonly gradientView: GradientView;
  private readonly metricsPanel: MetricsPanel;
  private readonly lossChart: LineChart;
  private readonly gcChart: LineChart;

  constructor(private readonly el: Elements, initial: State) {
    this.state = initial;
    this.controls = new Controls(el.controls, initial, (next) => this.setState(next));
    this.functionView = new FunctionView(el.functionCanvas);
    this.gradientView = new GradientView(el.gradientCanvas, el.gradientLegend);
    this.metricsPanel = new MetricsPanel(el.metrics);
    this.lossChart = new LineChart(el.lossCanvas, { width: 370, height: 170, yLabel: "loss" });
    this.gcChart = new LineChart(el.gcCanvas, { width: 370, height: 200, log: true, yLabel: "GC and bounds" });
    this.loop = new Loop(
      () => this.frame(),
      (playing) => {
        el.playButton.textContent = playing ? "❚❚ Pause" : "▶ Play";
        this.setStatus(playing ? "training" : "paused");
      },
    );
    el.playButton.addEventListener("click", () => this.loop.toggle());
    el.stepButton.addEventListener("click", () => {
      this.loop.pause();
      this.advance(this.state.stepsPerFrame);
    });
    el.resetButton.addEventListener("click", () => this.reset());
    this.reset();
    this.setStatus("ready");
  }

  /** A new state from the controls or the URL: rebuild the model, retune training, or just remember it. */
  setState(next: State): void {
    const effect = effectOf(this.state, next);
    this.state = next;
    this.controls.show(next);
    writeUrl(next);
    if (effect === "reset") this.reset();
    else if (effect === "train") this.session.configure(next);
  }

  /** Fresh data and parameters from the state (same seed → same start). */
  reset(): void {
    const wasPlaying = this.loop.playing;
    this.session = new Session(this.state);
    this.domain = domainOf(this.session.train, this.session.test);
    this.grid = gridPoints(this.domain);
    this.history.clear();
    this.el.message.textContent = "";
    this.record();
    this.render();
    if (!wasPlaying) this.setStatus("ready");
  }

  /** Runs n steps now (synchronously), recording about `points` measurements along the way, then redraws. */
  runSteps(n: number, points = 1): Metrics {
    const every = Math.max(1, Math.ceil(n / points));
    for (let done = 0; done < n; ) {
      const k = Math.min(every, n - done);
      const ok = this.session.runSteps(k);
      done += k;
      this.record();
      if (!ok) {
        this.diverged();
        break;
      }
    }
    this.render();
    return this.history.last!;
  }

  /** Milliseconds spent in the last frame's steps, measurement and drawing (probe: the model on the grid, part of draw). */
  readonly timings = { steps: 0, measure: 0, draw: 0, probe: 0 };

  private advance(n: number): void {
    const t0 = performance.now();
    const ok = this.session.runSteps(n);
    const t1 = performance.now();
    this.record();
    const t2 = performance.now();
    this.render();
    const t3 = performance.now();
    Object.assign(this.timings, { steps: t1 - t0, measure: t2 - t1, draw: t3 - t2 });
    if (!ok) this.diverged();
  }

  private frame(): void {
    this.advance(this.state.stepsPerFrame);
    this.metricsPanel.setFps(this.loop.fps());
  }

  private diverged(): void {
    this.loop.pause();
    this.setStatus("diverged");
    this.el.message.textContent = "The loss diverged (NaN or ∞): lower the learning rate or the init scale, then reset.";
  }

  setStatus(s: Status): void {
    this.el.status.textContent = s;
    this.el.status.dataset.value = s;
  }

  private record(): void {
    this.history.add(this.session.measure());
  }

  render(): void {
    const { train, test } = this.session;
    const t0 = performance.now();
    const probe = this.session.probe(this.grid);
    this.timings.probe = performance.now() - t0;
    this.functionView.draw(this.domain, this.grid, probe, train, test);
    this.gradientView.draw(this.domain, this.grid, probe, train, test);
    this.metricsPanel.update(this.history.last);
    const h = this.history;
    this.lossChart.draw([
      { label: "train", color: SERIES_COLORS.train, ...h.series((m) => m.trainLoss) },
      { label: "test", color: SERIES_COLORS.test, ...h.series((m) => m.testLoss) },
    ]);
    this.gcChart.draw([
      { label: "GC train", color: SERIES_COLORS.gc, ...h.series((m) => m.gcTrain) },
      { label: "GC test", color: SERIES_COLORS.gcTest, dashed: true, ...h.series((m) => m.gcTest) },
      { label: "T1", color: SERIES_COLORS.t1, dashed: true, ...h.series((m) => m.t1) },
      { label: "T2", color: SERIES_COLORS.t2, dashed: true, ...h.series((m) => m.t2) },
    ]);
  }
}
