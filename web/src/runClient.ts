/**
 * The page's handle on one training run: a trainer worker (web/src/trainer.worker.ts) plus what it has sent back
 * (history of measurements, data sets, the probe grid's latest outputs and gradient norms). It never trains or
 * measures on the page's thread; `onUpdate` tells the page that something new can be drawn.
 */
import type { Dataset } from "../../src/data/dataset.js";
import { History } from "./history.js";
import type { FrameTimings, FromWorker, ToWorker } from "./protocol.js";
import type { Metrics } from "./session.js";
import type { State } from "./state.js";
import type { Domain } from "./views/plane.js";
import type { EngineChoice, EngineKind } from "./engine.js";

/** Model outputs and ‖∂g/∂x‖² over the probe grid, as far as the worker has computed them. */
export interface GridValues {
  outputs: Float32Array;
  k: number;
  gradSq: Float64Array;
}

export class RunClient {
  readonly history = new History();
  train?: Dataset;
  test?: Dataset;
  domain?: Domain;
  grid?: Float32Array;
  values?: GridValues;
  playing = false;
  /** A pause was sent and the worker has not yet confirmed it (it finishes the frame it is in first). */
  pausing = false;
  diverged = false;
  timings: FrameTimings = { steps: 0, measure: 0, probe: 0 };
  /** The worker's step count (ahead of the last measurement while a large network plays). */
  workerStep = 0;
  /** The latest lockstep tick the worker has answered. */
  tickDone = 0;
  readonly ready: Promise<{ engine: EngineKind; error?: string }>;
  onUpdate: () => void = () => {};
  onPlaying: (playing: boolean) => void = () => {};
  onError: (message: string) => void = () => {};
  private readonly worker: Worker;
  private gen = 0;
  private runId = 0;
  private readonly pending = new Map<number, (ms: number) => void>();

  constructor(state: State, engine: EngineChoice) {
    this.worker = new Worker(new URL("./trainer.worker.ts", import.meta.url), { type: "module" });
    let resolveReady!: (r: { engine: EngineKind; error?: string }) => void;
    this.ready = new Promise((r) => (resolveReady = r));
    this.worker.onmessage = (e: MessageEvent<FromWorker>) => {
      const m = e.data;
      if (m.type === "ready") resolveReady({ engine: m.engine, error: m.error });
      else if (m.type === "error") this.onError(m.message);
      else if (m.gen !== this.gen)
        return; // from before the latest reset
      else if (m.type === "data") this.onData(m.train, m.test, m.domain, m.grid);
      else if (m.type === "frame") {
        this.workerStep = m.step;
        this.tickDone = m.tick;
        // Until the worker has handled every command sent, its `playing` may predate the latest play or pause, and
        // frames it ran before a pause may still be on their way: only a frame that answers every command confirms.
        const confirmed = m.handled === this.sent;
        this.onFrame(m.metrics, m.probe, confirmed ? m.playing : this.playing, confirmed, m.diverged, m.ms);
      } else if (m.type === "done") {
        this.pending.get(m.id)?.(m.ms);
        this.pending.delete(m.id);
      }
    };
    this.worker.onerror = (e) => this.onError(e.message || "the trainer worker failed to start");
    this.send({ type: "init", state, engine });
    this.reset(state);
  }

  private sent = 0;

  private send(m: ToWorker): void {
    this.sent++;
    this.worker.postMessage(m);
  }

  get last(): Metrics | undefined {
    return this.history.last;
  }

  /** New data and parameters from the state; what was drawn stays until the new start arrives. */
  reset(state: State): void {
    this.gen++;
    this.playing = false;
    this.pausing = false;
    this.diverged = false;
    this.history.clear();
    this.workerStep = 0;
    this.send({ type: "reset", state, gen: this.gen });
  }

  configure(state: State): void {
    this.send({ type: "configure", state });
  }

  /** Starts playing: frame after frame, or (lockstep) one frame per `tick`. */
  play(lockstep = false): void {
    if (this.diverged) return;
    this.setPlaying(true);
    this.send({ type: "play", lockstep });
  }

  /** Lockstep play: one more frame; `tickDone` becomes `id` once it is done. */
  tick(id: number): void {
    this.send({ type: "tick", id });
  }

  pause(): void {
    if (this.playing) this.pausing = true;
    this.setPlaying(false);
    this.send({ type: "pause" });
  }

  step(n: number): void {
    this.setPlaying(false);
    this.send({ type: "step", n });
  }

  /** Runs n steps in the worker; resolves with the worker's milliseconds once the exact numbers have arrived. */
  run(n: number, points: number): Promise<number> {
    this.setPlaying(false);
    const id = ++this.runId;
    this.send({ type: "run", n, points, id });
    return new Promise((resolve) => this.pending.set(id, resolve));
  }

  terminate(): void {
    this.worker.terminate();
  }

  private setPlaying(p: boolean): void {
    if (this.playing === p) return;
    this.playing = p;
    this.onPlaying(p);
  }

  private onData(train: Dataset, test: Dataset, domain: Domain, grid: Float32Array): void {
    this.train = train;
    this.test = test;
    this.domain = domain;
    this.grid = grid;
    this.values = undefined;
  }

  private onFrame(
    metrics: Metrics[],
    probe: { start: number; outputs: Float32Array; k: number; gradSq: Float64Array } | null,
    playing: boolean,
    confirmed: boolean,
    diverged: boolean,
    ms: FrameTimings,
  ): void {
    for (const m of metrics) this.history.add(m);
    if (probe && this.grid && this.domain) {
      const n = this.grid.length / (this.domain.dims === 2 ? 2 : 1);
      if (!this.values || this.values.k !== probe.k)
        this.values = { outputs: new Float32Array(n * probe.k), k: probe.k, gradSq: new Float64Array(n) };
      this.values.outputs.set(probe.outputs, probe.start * probe.k);
      this.values.gradSq.set(probe.gradSq, probe.start);
    }
    this.timings = ms;
    this.diverged = diverged;
    const wasPausing = this.pausing;
    if (!playing && confirmed) this.pausing = false;
    // The worker stops by itself when the loss diverges; a stale "playing" echo after a pause is ignored.
    if (!playing) this.setPlaying(false);
    if (wasPausing && !this.pausing) this.onPlaying(false);
    this.onUpdate();
  }
}
