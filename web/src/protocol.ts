/**
 * Messages between the page and the trainer worker (web/src/trainer.worker.ts). The worker owns training and
 * measuring; the page only sends commands and draws what comes back. Every reply carries the generation of the
 * reset it belongs to, so the page can drop replies that a newer reset made stale.
 */
import type { Dataset } from "../../src/data/dataset.js";
import type { Metrics } from "./session.js";
import type { State } from "./state.js";
import type { Domain } from "./views/plane.js";
import type { EngineChoice, EngineKind } from "./engine.js";

export type ToWorker =
  /** Pick the engine (web/src/wasm.ts: WebGPU on a hardware adapter, else wasm, else JS), then build a session. */
  | { type: "init"; state: State; engine: EngineChoice }
  /** New data and parameters from the state (same seed → same start). */
  | { type: "reset"; state: State; gen: number }
  /** New training settings on the same model. */
  | { type: "configure"; state: State }
  /** Play: frame after frame (`lockstep` false), or one frame per "tick" (compare mode keeps runs at equal steps). */
  | { type: "play"; lockstep: boolean }
  /** Lockstep play: run one frame; every frame after it echoes `id`. */
  | { type: "tick"; id: number }
  | { type: "pause" }
  /** Pause, run n steps, measure exactly. */
  | { type: "step"; n: number }
  /** Pause, run n steps recording about `points` measurements, measure exactly, answer "done" with `id`. */
  | { type: "run"; n: number; points: number; id: number };

/** A range [start, start + gradSq.length) of the probe grid, recomputed. */
export interface ProbeChunk {
  start: number;
  /** Outputs (softmax probabilities for classifiers), k per point. */
  outputs: Float32Array;
  k: number;
  /** ‖∂g(x)/∂x‖_F² per point. */
  gradSq: Float64Array;
}

export type FromWorker =
  /** The engine the worker runs on; `error`: why a better one was not used (WebGPU asked for, wasm failed). */
  | { type: "ready"; engine: EngineKind; error?: string }
  /** After a reset: the data sets, the input-space box and its probe grid. */
  | { type: "data"; gen: number; train: Dataset; test: Dataset; domain: Domain; grid: Float32Array }
  /**
   * New measurements (history points in step order; the last may replace an earlier one at the same step) and
   * part or all of the probe grid. `playing` is the worker's state after this frame, having handled the first
   * `handled` commands (the page trusts it only once every command it sent is among them).
   */
  | {
      type: "frame";
      gen: number;
      handled: number;
      tick: number;
      step: number;
      metrics: Metrics[];
      probe: ProbeChunk | null;
      playing: boolean;
      diverged: boolean;
      ms: FrameTimings;
    }
  | { type: "done"; gen: number; id: number; ms: number }
  | { type: "error"; message: string };

/** Milliseconds the worker spent on the last frame's parts. */
export interface FrameTimings {
  steps: number;
  measure: number;
  probe: number;
}
