/**
 * The playground's training session (web/src/session.ts) on a device backend, in Node: on the test double `strict`
 * (opaque storage, asynchronous counted reads, released storage unusable) the async methods the trainer worker calls
 * on WebGPU — runStepsAsync, measureAsync, probeAsync — read nothing synchronously, survive the session's releases of
 * replaced device state, and give the js backend's numbers (GC in forward mode: ops on the device, a host loop on
 * js; equal to float32 rounding).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { setBackend } from "../src/engine/backend.js";
import { installStrictBackend, resetStrictStats, strictStats } from "../src/engine/backends/strict.js";
import { Session, type Metrics, type Probe } from "../web/src/session.js";
import { DEFAULT_STATE, type State } from "../web/src/state.js";

installStrictBackend();

const relDiff = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

/** A 5×5 grid of 2-D points (1-D: 25 points) around the data. */
function grid(d: number): Float32Array {
  const n = d === 1 ? 25 : 5;
  const out: number[] = [];
  for (let i = 0; i < n; i++)
    if (d === 1) out.push(-3 + (6 * i) / (n - 1));
    else for (let j = 0; j < n; j++) out.push(-1.5 + (3.5 * i) / (n - 1), -1.2 + (2.5 * j) / (n - 1));
  return Float32Array.from(out);
}

interface Trace {
  first: Metrics;
  second: Metrics;
  probe: Probe;
  steps: number;
}

/** Steps, a measurement, a change of settings (new regularizer set and learning rate), more steps, a probe. */
async function trace(state: State, device: boolean): Promise<Trace> {
  setBackend(device ? "strict" : "js");
  try {
    const s = new Session(state);
    assert.equal(s.device, device);
    const xs = grid(s.train.inputShape[0]);
    const ok1 = device ? await s.runStepsAsync(7) : s.runSteps(7);
    const first = device ? await s.measureAsync() : s.measure();
    s.configure({ ...state, lr: state.lr / 2, l2: 0.001 });
    const ok2 = device ? await s.runStepsAsync(4) : s.runSteps(4);
    assert.ok(ok1 && ok2, "no divergence");
    const second = device ? await s.measureAsync(30) : s.measure(30);
    const probe = device ? await s.probeAsync(xs) : s.probe(xs);
    s.dispose();
    // On the device, dispose returned the parameters' storage: using them now fails (on js it frees nothing).
    if (device) await assert.rejects(async () => s.measureAsync(), /strict/);
    else assert.ok(Number.isFinite(s.measure().gcTrain));
    return { first, second, probe, steps: s.step };
  } finally {
    setBackend("auto");
  }
}

const FIELDS = ["batchLoss", "trainLoss", "testLoss", "trainAcc", "testAcc", "gcTrain", "gcTest", "t1", "t2"] as const;

const CASES: [string, Partial<State>][] = [
  ["moons, ReLU, SGD", {}],
  [
    "spirals, tanh, Adam, spectral + GC penalties",
    { data: "spirals", activation: "tanh", optimizer: "adam", lr: 0.01, spectral: 0.01, gc: 0.05 },
  ],
  [
    "moons, GELU, flatness penalty, input and label noise",
    { activation: "gelu", flatness: 0.5, inputNoise: 0.05, labelNoise: 0.1 },
  ],
  ["sine regression, sigmoid", { data: "sine", size: 40, activation: "sigmoid", lr: 0.1 }],
];

for (const [name, over] of CASES) {
  test(`playground session on a device backend: ${name}`, async () => {
    const state: State = { ...DEFAULT_STATE, size: 60, depth: 2, width: 8, ...over };
    const host = await trace(state, false);
    resetStrictStats();
    const dev = await trace(state, true);
    const reads = strictStats().reads;
    assert.ok(reads > 0, "values leave the device by asynchronous reads");
    assert.equal(dev.steps, host.steps);
    for (const [which, a, b] of [
      ["first", dev.first, host.first],
      ["second", dev.second, host.second],
    ] as const) {
      assert.equal(a.step, b.step);
      assert.equal(a.gcSample, b.gcSample, `${which}: sample`);
      for (const f of FIELDS) {
        const x = a[f],
          y = b[f];
        if (y === null || x === null) {
          assert.equal(x, y, `${which} ${f}`);
          continue;
        }
        assert.ok(relDiff(x, y) < 1e-4, `${which} ${f}: device ${x} vs js ${y}`);
      }
      assert.ok(
        a.penalty === null || b.penalty === null ? a.penalty === b.penalty : relDiff(a.penalty, b.penalty) < 1e-4,
      );
    }
    assert.equal(dev.first.gcSample, null);
    assert.equal(dev.second.gcSample, 30, "a sampled measurement says so");
    assert.equal(dev.probe.k, host.probe.k);
    assert.equal(dev.probe.outputs.length, host.probe.outputs.length);
    const outScale = Math.max(...host.probe.outputs.map(Math.abs), 1e-6);
    dev.probe.outputs.forEach((v, i) =>
      assert.ok(
        Math.abs(v - host.probe.outputs[i]) <= 1e-5 * outScale,
        `output ${i}: ${v} vs ${host.probe.outputs[i]}`,
      ),
    );
    const sqScale = Math.max(...host.probe.gradSq, 1e-6);
    dev.probe.gradSq.forEach((v, i) =>
      assert.ok(Math.abs(v - host.probe.gradSq[i]) <= 1e-4 * sqScale, `‖∂g/∂x‖² ${i}: ${v} vs ${host.probe.gradSq[i]}`),
    );
  });
}
