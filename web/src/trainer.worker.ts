/**
 * The trainer: a Web Worker that owns the training session (the library's data, model, optimizer, regularizers
 * and exact GC) so that the page stays responsive at every network size. While playing it runs frames (a few
 * steps, a measurement, part of the probe grid) back to back, at most about 60 a second, and posts each to the
 * page. A command (pause, step, a new setting) is handled between two frames, so it takes effect within one
 * frame's time. Large networks are measured on the first examples of each split while playing (the page labels
 * such numbers); whenever training pauses, steps or finishes a run, GC is exact over every example.
 *
 * Engines (issue 12): WebGPU on a hardware adapter, else wasm, else JS (web/src/loadEngine.ts). On WebGPU every
 * number is read back with `await tensor.read()`, so frames and commands are async; they run one after another
 * through one queue ({@link serial}), so a command still never lands inside a frame, and on the CPU engines (where
 * nothing is awaited but the kernels) they behave and compute exactly as before.
 */
/// <reference lib="webworker" />
import type { FrameTimings, FromWorker, ProbeChunk, ToWorker } from "./protocol.js";
import { Session, type Metrics } from "./session.js";
import type { State } from "./state.js";
import { domainOf, gridPoints } from "./views/plane.js";
import { loadEngine } from "./loadEngine.js";

declare const self: DedicatedWorkerGlobalScope;

/** Work (parameters × examples measured) above which a playing frame measures a sample instead of every example. */
const EXACT_WORK = 2e6;
/** Milliseconds of probe-grid work per playing frame; the rest of the grid follows in the next frames. */
const PROBE_BUDGET_MS = 15;
/** Shortest time between two playing frames (about the display's refresh). */
const MIN_FRAME_MS = 16;
/** Large networks: shortest time between two measurements while playing (frames in between show steps and pictures). */
const MEASURE_EVERY_MS = 150;

let session: Session | null = null;
let state: State;
let gen = 0;
let playing = false;
let diverged = false;
let grid: Float32Array = new Float32Array(0);
let gridN = 0;
let cursor = 0;
let msPerPoint = 0.01;
/** The grid still needs a full refresh at the current parameters (done in chunks between commands). */
let gridStale = false;
let lastMeasure = 0;
/** Compare mode: playing, but one frame per "tick" from the page (so that compared runs stay at equal steps). */
let lockstep = false;
/** The latest tick handled (echoed in every frame). */
let tick = 0;
const timings: FrameTimings = { steps: 0, measure: 0, probe: 0 };
let ready: Promise<void>;
/** Commands handled so far: a frame's `playing` answers every command up to this one. */
let handled = 0;

const post = (m: FromWorker, transfer: Transferable[] = []) => self.postMessage(m, transfer);

/** Examples per split a playing frame measures (every example when the network and data are small). */
function sampleSize(s: Session): number | undefined {
  const work = s.paramCount * (s.train.n + s.test.n);
  if (work <= EXACT_WORK) return undefined;
  return Math.max(100, Math.floor(EXACT_WORK / (2 * s.paramCount)));
}

/** Probes `count` grid points from the cursor on (wrapping to the start). */
async function probeChunk(count: number): Promise<ProbeChunk> {
  const s = session!;
  const d = grid.length / gridN;
  const start = cursor >= gridN ? 0 : cursor;
  const end = Math.min(gridN, start + count);
  const t0 = performance.now();
  const p = await s.probeAsync(grid.subarray(start * d, end * d));
  const ms = performance.now() - t0;
  msPerPoint = 0.7 * msPerPoint + (0.3 * ms) / Math.max(1, end - start);
  cursor = end;
  return { start, outputs: p.outputs, k: p.k, gradSq: p.gradSq };
}

function sendFrame(metrics: Metrics[], probe: ProbeChunk | null): void {
  const transfer: Transferable[] = probe ? [probe.outputs.buffer, probe.gradSq.buffer] : [];
  post(
    {
      type: "frame",
      gen,
      handled,
      tick,
      step: session?.step ?? 0,
      metrics,
      probe,
      playing,
      diverged,
      ms: { ...timings },
    },
    transfer,
  );
}

/** Grid points one frame may probe within the time budget (whole rows; the whole grid when it is small). */
function chunkSize(): number {
  if (gridN <= 1000) return gridN;
  const row = Math.round(Math.sqrt(gridN));
  return Math.min(gridN, Math.max(row, Math.round(PROBE_BUDGET_MS / msPerPoint / row) * row));
}

/**
 * Exact measurement over every example, then the whole grid refreshed from its first row: what a paused view
 * shows. The grid follows in chunks between commands, so a click right after a pause is not kept waiting.
 */
async function settle(): Promise<void> {
  if (!session) return;
  const t0 = performance.now();
  const m = await session.measureAsync();
  timings.measure = performance.now() - t0;
  cursor = 0;
  gridStale = true;
  if (gridN <= chunkSize()) {
    gridStale = false;
    sendFrame([m], await probeChunk(gridN));
  } else {
    sendFrame([m], null);
    schedule();
  }
}

async function steps(n: number): Promise<boolean> {
  const ok = await session!.runStepsAsync(n);
  if (!ok) {
    diverged = true;
    playing = false;
  }
  return ok;
}

let lastFrame = 0;
let scheduled = false;
const channel = new MessageChannel();
channel.port1.onmessage = () =>
  serial(async () => {
    scheduled = false;
    if (playing && lockstep) return; // lockstep frames run on the page's ticks only
    await frame();
  });

function schedule(): void {
  if (scheduled || !((playing && !lockstep) || gridStale)) return;
  scheduled = true;
  const wait = MIN_FRAME_MS - (performance.now() - lastFrame);
  // A message port runs the next frame as its own task, so commands queued meanwhile are handled first.
  if (wait > 1) setTimeout(() => channel.port2.postMessage(null), wait);
  else channel.port2.postMessage(null);
}

async function frame(): Promise<void> {
  if (!session) return;
  if (!playing) {
    // Paused with part of the grid still from older parameters: one more chunk.
    if (!gridStale) return;
    const probe = await probeChunk(chunkSize());
    if (cursor >= gridN) gridStale = false;
    sendFrame([], probe);
    schedule();
    return;
  }
  gridStale = false;
  lastFrame = performance.now();
  const t0 = performance.now();
  const ok = await steps(state.stepsPerFrame);
  const t1 = performance.now();
  const sample = sampleSize(session);
  // Small networks are measured every frame; large ones every MEASURE_EVERY_MS (each frame still shows its step).
  const due = !ok || sample === undefined || t1 - lastMeasure >= MEASURE_EVERY_MS;
  const metrics = due ? [await session.measureAsync(ok ? sample : undefined)] : [];
  if (due) lastMeasure = performance.now();
  const t2 = performance.now();
  const probe = await probeChunk(ok ? chunkSize() : gridN);
  Object.assign(timings, { steps: t1 - t0, measure: due ? t2 - t1 : timings.measure, probe: performance.now() - t2 });
  sendFrame(metrics, probe);
  schedule();
}

async function reset(s: State, g: number): Promise<void> {
  state = s;
  gen = g;
  playing = false;
  diverged = false;
  session?.dispose(); // device buffers of the previous session (WebGPU reclaims nothing by itself)
  session = new Session(s);
  const domain = domainOf(session.train, session.test);
  grid = gridPoints(domain);
  gridN = grid.length / session.train.inputShape[0];
  cursor = 0;
  post({ type: "data", gen, train: session.train, test: session.test, domain, grid });
  await settle();
}

async function handle(msg: ToWorker): Promise<void> {
  switch (msg.type) {
    case "init":
      state = msg.state;
      ready = loadEngine(msg.engine).then((r) => post({ type: "ready", engine: r.kind, error: r.error }));
      return;
    case "reset":
      await reset(msg.state, msg.gen);
      return;
    case "configure":
      state = msg.state;
      session?.configure(msg.state);
      return;
    case "play":
      if (playing || diverged || !session) return;
      playing = true;
      lockstep = msg.lockstep;
      gridStale = false; // playing frames go on refreshing the grid in chunks
      lastMeasure = 0;
      sendFrame([], null);
      schedule();
      return;
    case "tick":
      tick = msg.id;
      if (playing && lockstep) await frame();
      else sendFrame([], null);
      return;
    case "pause":
      if (!playing) {
        sendFrame([], null); // already stopped (e.g. diverged): still answer, so the page's pause is confirmed
        return;
      }
      playing = false;
      sendFrame([], null); // the page shows "paused" at once; the exact numbers follow
      await settle();
      return;
    case "step": {
      playing = false;
      if (!session || diverged) return;
      const t0 = performance.now();
      await steps(msg.n);
      timings.steps = performance.now() - t0;
      await settle();
      return;
    }
    case "run": {
      playing = false;
      if (!session) return;
      const t0 = performance.now();
      const every = Math.max(1, Math.ceil(msg.n / msg.points));
      const points: Metrics[] = [];
      for (let done = 0; done < msg.n && !diverged;) {
        const k = Math.min(every, msg.n - done);
        await steps(k);
        done += k;
        if (done < msg.n && !diverged) points.push(await session.measureAsync());
      }
      sendFrame(points, null);
      await settle();
      post({ type: "done", gen, id: msg.id, ms: performance.now() - t0 });
      return;
    }
  }
}

let lock: Promise<void> = Promise.resolve();

/**
 * Runs `work` after everything queued before it: commands (in the order they came) and frames form one queue, so a
 * command waits for the frame in progress, even one awaiting a device read, and a frame for the commands before it.
 */
function serial(work: () => Promise<void>): void {
  lock = lock.then(work).catch((e: unknown) => {
    post({ type: "error", message: e instanceof Error ? e.message : String(e) });
  });
}

// Commands wait for the engine: the first message is "init", later ones are handled in order once it is ready.
self.onmessage = (e: MessageEvent<ToWorker>) => {
  const msg = e.data;
  serial(async () => {
    if (msg.type !== "init") await ready;
    handled++;
    await handle(msg);
  });
};
