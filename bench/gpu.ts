/**
 * `npm run bench:gpu`: the WebGPU backend's timings (Node, the `webgpu` package) for the MLP 784-256-256-10, the
 * bench CNN and ResNet-18 (CIFAR variant, 32×32×3) at batch 128 — forward, SGD step, exact GC of the batch, SGD
 * step + α·GC, SGD step + α·‖∇_θL‖² (flatness) and exact GC over 10k synthetic inputs (bench/gpuTasks.ts) — as
 * medians in ms, next to PyTorch CUDA's for the same tasks and shapes (bench/torch_gpu.py) when `python3` has torch
 * with CUDA on this machine, with the ratio ours/PyTorch; writes them to bench/results-gpu.md with the device and
 * the date. Each task ends by reading one scalar back, so the time includes the GPU's work.
 * `--smoke`: tiny shapes, correctness only (every task's outputs on webgpu vs js within rel 1e-4; per task ok/FAIL,
 * exit 1 on any failure). It runs in Node when Node has a WebGPU adapter (software ones accepted), otherwise — or
 * always with `--browser` — in headless Chromium (bench/gpuBrowser.ts; SwiftShader there).
 * `--allow-software` accepts a software adapter for the timings (SwiftShader, lavapipe): for trying the script, not
 * for numbers. `--reps N` (default 20). Exits 2 with one line when there is no usable adapter.
 * Usage: node dist/bench/gpu.js [--smoke [--browser]] [--allow-software] [--reps N] [--json]
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { requestWebGPU } from "../src/engine/backends/webgpu/index.js";
import { setBackend } from "../src/engine/backend.js";
import { MANY_TASK, prepare, problems, smokeCompare, timeTask, type SmokeResult } from "./gpuTasks.js";
import { smokeInChromium } from "./gpuBrowser.js";
import { resultsMarkdown } from "./gpuResults.js";

const args = process.argv.slice(2);
const smoke = args.includes("--smoke");
const browser = args.includes("--browser");
const repsAt = args.indexOf("--reps");
const reps = repsAt >= 0 ? Number(args[repsAt + 1]) : 20;
const fail = (msg: string): never => {
  process.stderr.write(`bench:gpu: error: ${msg}\n`);
  process.exit(2);
};
if (!Number.isInteger(reps) || reps < 1) fail(`--reps needs a positive integer, got ${args[repsAt + 1]}`);
if (browser && !smoke) fail("--browser runs the smoke only (add --smoke); timings need Node's adapter");

if (smoke) {
  const t0 = performance.now();
  let results: SmokeResult[], errors: string[];
  const node = browser ? null : await requestWebGPU({ allowSoftware: true });
  if (node?.backend) {
    process.stdout.write(`smoke in Node; adapter: ${JSON.stringify(node.backend.adapter)}\n`);
    results = await smokeCompare();
    errors = [...node.backend.ctx.errors];
  } else {
    process.stdout.write(`smoke in headless Chromium${node ? ` (Node: ${node.reason})` : ""}\n`);
    const r = await smokeInChromium().catch((e: Error) =>
      fail(`the browser smoke did not run: ${e.message.split("\n")[0]}`),
    );
    if (typeof r.adapter === "string") fail(`no WebGPU adapter in Chromium: ${r.adapter}`);
    process.stdout.write(`adapter: ${JSON.stringify(r.adapter)}\n`);
    ({ results, errors } = r);
  }
  for (const x of results) process.stdout.write(`${x.ok ? "ok  " : "FAIL"} ${x.task}: rel ${x.rel.toExponential(2)}\n`);
  for (const e of errors) process.stdout.write(`FAIL device/page error: ${e}\n`);
  const ok = results.length > 0 && results.every((x) => x.ok) && errors.length === 0;
  const nOk = results.filter((x) => x.ok).length;
  process.stdout.write(
    `${ok ? "ok" : "FAIL"}: ${nOk}/${results.length} checks in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
  );
  process.exit(ok ? 0 : 1);
}

const r = await requestWebGPU({ allowSoftware: args.includes("--allow-software") });
if (!r.backend) fail(r.reason ?? "no WebGPU adapter");
const be = r.backend!;
process.stdout.write(`adapter: ${JSON.stringify(be.adapter)}\n`);

const ours: Record<string, number> = {};
setBackend("webgpu");
for (const p of problems(false)) {
  const tasks = prepare(p);
  for (const [name, task] of Object.entries(tasks)) {
    const heavy = name === MANY_TASK;
    const n = heavy ? Math.min(reps, 3) : name.includes("penalty") ? Math.max(5, reps >> 1) : reps;
    ours[`${p.name} ${name}`] = await timeTask(task, n, heavy ? 1 : 3);
    process.stdout.write(`${p.name} ${name}: ${ours[`${p.name} ${name}`].toFixed(3)} ms\n`);
  }
}
process.stdout.write(`context: ${JSON.stringify(be.ctx.stats)}\n`);

// PyTorch CUDA on the same machine, when present.
const script = fileURLToPath(new URL("../../bench/torch_gpu.py", import.meta.url));
const py = spawnSync("python3", [script, "--reps", String(reps)], { encoding: "utf8", maxBuffer: 1 << 26 });
let torch: Record<string, number | string> | null = null;
if (py.status === 0) torch = JSON.parse(py.stdout.trim().split("\n").pop() ?? "{}") as Record<string, number | string>;
else
  process.stdout.write(`PyTorch CUDA: not run (${(py.stderr || py.error?.message || "").trim().split("\n").pop()})\n`);

const text = resultsMarkdown(be.adapter, ours, torch, reps, new Date());
process.stdout.write(`\n${text}`);
writeFileSync(fileURLToPath(new URL("../../bench/results-gpu.md", import.meta.url)), text);
if (args.includes("--json")) process.stdout.write(`${JSON.stringify({ adapter: be.adapter, ours, torch })}\n`);
