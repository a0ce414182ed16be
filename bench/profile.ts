/**
 * `npm run bench:profile -- TASK [--steps N]`: where the time of one benchmark step goes, measured.
 *
 * TASK is one of mlp-forward, mlp-step, mlp-gc, mlp-gcpen, mlp-flat, cnn-forward, cnn-step, cnn-gc, cnn-flat,
 * resnet-forward, resnet-step, resnet-gc (the shapes of `npm run bench`, bench/ours.ts). Three views, all from
 * this process, no change to the engine:
 * 1. the step's median wall time, plain and with the kernel timers installed (their overhead);
 * 2. kernel table: every function of the active backend's `kernels` object wrapped with a timer — calls, total ms
 *    per step, % of the step, and achieved GFLOP/s for gemm / linear / conv (2·M·K·N flops);
 * 3. op table from V8's sampling CPU profiler (node:inspector): each sample is charged to the innermost engine op
 *    on its stack (a function of dist/src/engine/{ops,spatial,conv,elementwise,updates}.js), so an op's time
 *    includes its kernels and JS loops but not the ops it calls; samples outside any op go to their file (model
 *    code, autograd bookkeeping, the garbage collector). A leaf table shows the hottest functions by self time
 *    (JS loops and wasm functions).
 * Kernels run as the CLI runs them (relaxed-SIMD FMA where the runtime has it; GCX_KERNELS=plain for SIMD128,
 * GCX_THREADS=1 for one thread). PyTorch's own profile of the same step: bench/torch_profile.py.
 */
import { existsSync, readFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { loadavg } from "node:os";
import { useCliKernels } from "./cliKernels.js";
import { Tensor } from "../src/engine/tensor.js";
import { engineInfo, getBackend, keepResident, scope, type KernelTable } from "../src/engine/backend.js";
import { compileNetwork, forward, type Network, type Params } from "../src/models/network.js";
import { initParams } from "../src/models/init.js";
import { defaultCnnSpec, type ModelSpec } from "../src/models/spec.js";
import { resnetSpec } from "../src/models/zoo.js";
import { batchJacobianSqNorms } from "../src/measures/gc.js";
import { gcPenalty, flatness, type Regularizer } from "../src/regularizers/index.js";
import { trainerStep } from "./ours.js";
import { sgd } from "../src/training/optimizers.js";
import { Rng } from "../src/util/rng.js";

useCliKernels();

const MODELS: Record<string, () => { spec: ModelSpec; batch: number; classes: number }> = {
  mlp: () => ({ spec: { kind: "mlp", sizes: [784, 256, 256, 10], activation: "relu" }, batch: 128, classes: 10 }),
  cnn: () => ({ spec: defaultCnnSpec(), batch: 128, classes: 10 }),
  resnet: () => ({ spec: resnetSpec(8, [1, 28, 28], 10, 16), batch: 128, classes: 10 }),
  mlp2d: () => ({ spec: { kind: "mlp", sizes: [2, 64, 64, 2], activation: "relu" }, batch: 256, classes: 2 }),
};
const KINDS = ["forward", "step", "gc", "gcpen", "flat"];

function usage(msg: string): never {
  process.stderr.write(
    `bench:profile: error: ${msg}\nusage: node dist/bench/profile.js <${Object.keys(MODELS).join("|")}>-<${KINDS.join("|")}> [--steps N]\n`,
  );
  process.exit(2);
}

const args = process.argv.slice(2);
const task = args.find((a) => !a.startsWith("--")) ?? usage("name a task");
const stepsAt = args.indexOf("--steps");
const [model, kind] = task.split("-");
if (!MODELS[model] || !KINDS.includes(kind)) usage(`unknown task "${task}"`);
const heavy = model === "cnn" || model === "resnet";
const steps = stepsAt >= 0 ? Number(args[stepsAt + 1]) : heavy ? (kind === "gcpen" ? 2 : 6) : 40;
if (!Number.isInteger(steps) || steps < 1) usage("--steps needs a positive integer");

/** The benchmark's network, data and the step under study (as bench/ours.ts builds them). */
function makeStep(): () => void {
  const { spec, batch, classes } = MODELS[model]();
  const net: Network = compileNetwork(spec);
  const params: Params = initParams(net, { scheme: "he", distribution: "normal", scale: 1, bias: 0, seed: 0 });
  const rng = new Rng(1);
  const x = new Tensor(
    Float32Array.from({ length: batch * net.inputSize }, () => rng.uniform()),
    [batch, net.inputSize],
  );
  const labels = Int32Array.from({ length: batch }, () => rng.int(classes));
  const b = { x, labels, numOutputs: net.outputSize };
  const step = (regs: Regularizer[]) => trainerStep(net, params, b, regs, sgd(0.01));
  const held = keepResident(params).value; // as gcx measure keeps them
  switch (kind) {
    case "forward":
      return () => void scope(() => forward(net, held, x));
    case "gc":
      return () => void scope(() => batchJacobianSqNorms(net, held, x));
    case "gcpen":
      return step([gcPenalty(0.01)]);
    case "flat":
      return step([flatness(0.01)]);
    default:
      return step([]);
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/** Median and mean wall ms per step, and mean CPU ms per step (this process, all threads). */
function timeSteps(fn: () => void, n: number): { median: number; mean: number; cpu: number } {
  const ts: number[] = [];
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    fn();
    ts.push(performance.now() - t);
  }
  const c = process.cpuUsage(c0);
  return { median: median(ts), mean: ts.reduce((a, b) => a + b, 0) / n, cpu: (c.user + c.system) / 1000 / n };
}

// ---------------------------------------------------------------------------------------------------------------
// Kernel timers

interface KStat {
  calls: number;
  ms: number;
  flops: number;
}
const kstats = new Map<string, KStat>();

/** Flops of a kernel call whose rate is worth printing (GEMM-like), else 0. */
function flopsOf(name: string, a: unknown[]): number {
  if (name === "gemm") return 2 * (a[3] as number) * (a[4] as number) * (a[5] as number);
  if (name === "linear") return 2 * (a[4] as number) * (a[5] as number) * (a[6] as number);
  if (name === "conv") {
    const g = a[4] as { n: number; outH: number; outW: number; kh: number; kw: number; c: number };
    return 2 * g.n * g.outH * g.outW * g.kh * g.kw * g.c * (a[5] as number);
  }
  return 0;
}

/** A label that splits a kernel by what it was asked to do (gemm by shape and transposes, conv by pass). */
function labelOf(name: string, a: unknown[]): string {
  const at = (i: number): string => String(a[i]);
  if (name === "gemm") return `gemm ${at(3)}x${at(4)}x${at(5)}${a[6] ? " Aᵀ" : ""}${a[7] ? " Bᵀ" : ""}`;
  if (name === "linear") return `linear ${at(4)}x${at(5)}x${at(6)}${a[7] ? " relu" : ""}`;
  if (name === "conv") {
    const g = a[4] as { n: number; h: number; w: number; c: number; kh: number; kw: number; sh?: number };
    return `conv ${at(0)} ${g.h}x${g.w}x${g.c}→${at(5)} k${g.kh}${g.sh && g.sh > 1 ? ` s${g.sh}` : ""}`;
  }
  if (name === "binary" || name === "unary") return `${name} ${at(0)}`;
  return name;
}

/** Wraps every kernel of the active backend with a timer; returns a function that removes the wrappers. */
function installKernelTimers(table: KernelTable): () => void {
  const t = table as Record<string, ((...a: unknown[]) => unknown) | undefined>;
  const saved = { ...t };
  for (const [name, f] of Object.entries(saved)) {
    if (typeof f !== "function") continue;
    t[name] = (...a: unknown[]) => {
      const t0 = performance.now();
      const r = f(...a);
      const dt = performance.now() - t0;
      const handled = r !== false && r !== null;
      const key = labelOf(name, a) + (handled ? "" : " (declined → JS)");
      const s = kstats.get(key) ?? { calls: 0, ms: 0, flops: 0 };
      s.calls++;
      s.ms += dt;
      if (handled) s.flops += flopsOf(name, a);
      kstats.set(key, s);
      return r;
    };
  }
  return () => Object.assign(t, saved);
}

// ---------------------------------------------------------------------------------------------------------------
// Sampling profile

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/** Names of the exported functions of the kernels build this process runs, by function index (V8 shows an
 * optimized build's functions as wasm-function[i]; internal ones stay unnamed). */
function wasmNames(): Map<number, string> {
  const relaxed = engineInfo().variant === "wasm-relaxed-fma";
  const base = process.env.GCX_THREADS === "1" ? "kernels" : "kernels-shared";
  const file = new URL(`../wasm/${base}${relaxed ? "-relaxed" : ""}.wasm`, import.meta.url);
  const names = new Map<number, string>();
  if (!existsSync(file)) return names;
  const b = readFileSync(file);
  let p = 8;
  const leb = (): number => {
    let r = 0,
      shift = 0,
      byte: number;
    do {
      byte = b[p++];
      r += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80);
    return r;
  };
  while (p < b.length) {
    const id = b[p++],
      size = leb(),
      end = p + size;
    if (id === 7) {
      for (let n = leb(); n > 0; n--) {
        const len = leb();
        const name = b.toString("utf8", p, p + len);
        p += len;
        const kind = b[p++],
          index = leb();
        if (kind === 0) names.set(index, name);
      }
    }
    p = end;
  }
  return names;
}
const WASM_NAMES = wasmNames();

const OP_FILES = /\/dist\/src\/engine\/(ops|spatial|conv|elementwise|updates)\.js$/;
const fileOf = (url: string): string => {
  if (!url) return "";
  if (url.startsWith("wasm://")) return "wasm";
  const m = /\/dist\/(.*)$/.exec(url);
  return m ? m[1] : (url.split("/").pop() ?? url);
};
const nameOf = (cf: CallFrame): string => {
  const wf = /^wasm-function\[(\d+)\]$/.exec(cf.functionName);
  const fn = wf ? (WASM_NAMES.get(Number(wf[1])) ?? `${cf.functionName} (internal)`) : cf.functionName || "(anonymous)";
  const file = fileOf(cf.url);
  return file ? `${fn} ${file === "wasm" ? "[wasm]" : `${file.replace(/^src\//, "")}:${cf.lineNumber + 1}`}` : fn;
};

/** Self time (ms) per sample node, from the sample stream (each sample owns the delta until the next one). */
function selfTimes(p: CpuProfile): Map<number, number> {
  const out = new Map<number, number>();
  const s = p.samples ?? [],
    d = p.timeDeltas ?? [];
  for (let i = 0; i < s.length; i++) {
    const dt = (i + 1 < d.length ? d[i + 1] : 0) / 1000;
    out.set(s[i], (out.get(s[i]) ?? 0) + dt);
  }
  return out;
}

function analyse(p: CpuProfile): { ops: Map<string, number>; leaves: Map<string, number>; total: number } {
  const parent = new Map<number, ProfileNode>();
  const byId = new Map<number, ProfileNode>();
  for (const n of p.nodes) byId.set(n.id, n);
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n);
  const ops = new Map<string, number>(),
    leaves = new Map<string, number>();
  let total = 0;
  for (const [id, ms] of selfTimes(p)) {
    const leaf = byId.get(id)!;
    if (leaf.callFrame.functionName === "(idle)") continue;
    total += ms;
    let lk = nameOf(leaf.callFrame);
    if (lk.includes("(internal)")) {
      // Name an internal wasm function by the exported kernel that called it.
      for (let n = parent.get(leaf.id); n; n = parent.get(n.id)) {
        const name = nameOf(n.callFrame);
        if (name.endsWith("[wasm]") && !name.includes("(internal)")) {
          lk = `${leaf.callFrame.functionName} in ${name}`;
          break;
        }
      }
    }
    leaves.set(lk, (leaves.get(lk) ?? 0) + ms);
    // Innermost engine op on the stack, else the innermost project frame's file, else the leaf's name.
    let key: string | null = null,
      fallback: string | null = null;
    for (let n: ProfileNode | undefined = leaf; n && !key; n = parent.get(n.id)) {
      const cf = n.callFrame;
      if (OP_FILES.test(cf.url)) key = `${cf.functionName || "(anonymous)"} (${fileOf(cf.url).replace(/^src\//, "")})`;
      else if (!fallback && cf.url.includes("/dist/"))
        fallback = `[outside ops] ${fileOf(cf.url).replace(/^src\//, "")}`;
    }
    key ??= fallback ?? `[outside ops] ${leaf.callFrame.functionName || "(anonymous)"}`;
    ops.set(key, (ops.get(key) ?? 0) + ms);
  }
  return { ops, leaves, total };
}

function table(title: string, head: string[], rows: string[][]): void {
  console.log(`\n### ${title}\n`);
  console.log(`| ${head.join(" | ")} |`);
  console.log(`|${head.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`);
  for (const r of rows) console.log(`| ${r.join(" | ")} |`);
}

// ---------------------------------------------------------------------------------------------------------------

const step = makeStep();
const warm = heavy ? 2 : 10;
for (let i = 0; i < warm; i++) step();
const plainMs = timeSteps(step, steps);
const uninstall = installKernelTimers(getBackend().kernels);
for (let i = 0; i < warm; i++) step();
kstats.clear();
const timedMs = timeSteps(step, steps);
const kernelRows = [...kstats].map(([k, s]) => [k, s.calls / steps, s.ms / steps, s.flops] as const);
uninstall();
const plainMs2 = timeSteps(step, steps);

const session = new Session();
session.connect();
await session.post("Profiler.enable");
await session.post("Profiler.setSamplingInterval", { interval: 100 });
await session.post("Profiler.start");
const t0 = performance.now();
for (let i = 0; i < steps; i++) step();
const profWall = (performance.now() - t0) / steps;
const { profile } = (await session.post("Profiler.stop")) as { profile: CpuProfile };
session.disconnect();

const engine = engineInfo();
console.log(
  `## Profile of ${task} (${engine.backend}, ${engine.variant}, threads: ${process.env.GCX_THREADS ?? "auto"})`,
);
console.log(
  `\nload average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(
      " ",
    )} (2 cores shared). Step: median ${plainMs.median.toFixed(2)} ms wall, ${plainMs.cpu.toFixed(2)} ms CPU ` +
    `over ${steps} steps (after the timers: median ${plainMs2.median.toFixed(2)} ms); with kernel timers median ` +
    `${timedMs.median.toFixed(2)}, mean ${timedMs.mean.toFixed(2)} ms; under the sampling profiler ${profWall.toFixed(2)} ms/step (mean)`,
);

const kTotal = kernelRows.reduce((s, r) => s + r[2], 0);
table(
  `Kernel table (per step; % of the mean step with timers, ${timedMs.mean.toFixed(2)} ms)`,
  ["kernel call", "calls", "ms", "% step", "GFLOP/s"],
  [...kernelRows]
    .sort((a, b) => b[2] - a[2])
    .map(([k, calls, ms, flops]) => [
      k,
      calls.toFixed(calls % 1 ? 1 : 0),
      ms.toFixed(3),
      ((100 * ms) / timedMs.mean).toFixed(1),
      flops ? (flops / steps / ms / 1e6).toFixed(1) : "",
    ])
    .concat([["**all kernels**", "", kTotal.toFixed(2), ((100 * kTotal) / timedMs.mean).toFixed(1), ""]]),
);

const { ops, leaves, total } = analyse(profile);
const per = (ms: number) => ms / steps;
table(
  `Op table (sampling profiler, innermost engine op; ${per(total).toFixed(2)} ms/step sampled)`,
  ["op (or code outside ops)", "ms/step", "% sampled"],
  [...ops]
    .sort((a, b) => b[1] - a[1])
    .filter(([, ms]) => ms / total >= 0.003)
    .map(([k, ms]) => [k, per(ms).toFixed(2), ((100 * ms) / total).toFixed(1)]),
);
table(
  "Hottest functions by self time (JS loops, wasm functions, GC)",
  ["function", "ms/step", "% sampled"],
  [...leaves]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 18)
    .map(([k, ms]) => [k, per(ms).toFixed(2), ((100 * ms) / total).toFixed(1)]),
);
process.exit(0);
