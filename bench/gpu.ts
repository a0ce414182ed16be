/**
 * `npm run bench:gpu`: the WebGPU backend's timings (Node, the `webgpu` package) for the MLP 784-256-256-10 and the
 * bench CNN at batch 128 — forward, SGD step, exact GC of the batch, SGD step + α·GC — as medians in ms, next to
 * PyTorch CUDA's for the same tasks and shapes (bench/torch_gpu.py) when `python3` has torch with CUDA on this
 * machine, with the ratio ours/PyTorch. Each task ends by reading one scalar back, so the time includes the GPU's work.
 * `--smoke`: tiny shapes, correctness only (every task's outputs on webgpu vs js within rel 1e-4; exit 1 if not).
 * `--allow-software` accepts a software adapter (SwiftShader, lavapipe): for trying the script, not for timings.
 * `--reps N` (default 20). Exits 2 with one line when there is no usable adapter.
 * Usage: node dist/bench/gpu.js [--smoke] [--allow-software] [--reps N] [--json]
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { requestWebGPU } from "../src/engine/backends/webgpu/index.js";
import { setBackend } from "../src/engine/backend.js";
import { prepare, problems, smokeCompare, timeTask } from "./gpuTasks.js";

const args = process.argv.slice(2);
const smoke = args.includes("--smoke");
const repsAt = args.indexOf("--reps");
const reps = repsAt >= 0 ? Number(args[repsAt + 1]) : 20;
if (!Number.isInteger(reps) || reps < 1) {
  process.stderr.write(`bench:gpu: error: --reps needs a positive integer, got ${args[repsAt + 1]}\n`);
  process.exit(2);
}

const r = await requestWebGPU({ allowSoftware: args.includes("--allow-software") });
if (!r.backend) {
  process.stderr.write(`bench:gpu: error: ${r.reason}\n`);
  process.exit(2);
}
const be = r.backend;
process.stdout.write(`adapter: ${JSON.stringify(be.adapter)}\n`);

if (smoke) {
  const res = await smokeCompare();
  for (const x of res) process.stdout.write(`${x.ok ? "ok  " : "FAIL"} ${x.task}: rel ${x.rel.toExponential(2)}\n`);
  process.exit(res.every((x) => x.ok) ? 0 : 1);
}

const ours: Record<string, number> = {};
setBackend("webgpu");
for (const p of problems(false)) {
  const tasks = prepare(p);
  for (const [name, task] of Object.entries(tasks)) {
    const n = name.includes("penalty") ? Math.max(5, reps >> 1) : reps;
    ours[`${p.name} ${name}`] = await timeTask(task, n);
    process.stdout.write(`${p.name} ${name}: ${ours[`${p.name} ${name}`].toFixed(3)} ms\n`);
  }
}
process.stdout.write(`context: ${JSON.stringify(be.ctx.stats)}\n`);

// PyTorch CUDA on the same machine, when present.
const script = fileURLToPath(new URL("../../bench/torch_gpu.py", import.meta.url));
const py = spawnSync("python3", [script, "--reps", String(reps)], { encoding: "utf8" });
let torch: Record<string, number> | null = null;
if (py.status === 0) torch = JSON.parse(py.stdout.trim().split("\n").pop() ?? "{}") as Record<string, number>;
else
  process.stdout.write(`PyTorch CUDA: not run (${(py.stderr || py.error?.message || "").trim().split("\n").pop()})\n`);

process.stdout.write("\n| task | webgpu ms | torch CUDA ms | ratio |\n|---|---|---|---|\n");
for (const [k, v] of Object.entries(ours)) {
  const t = torch?.[k];
  process.stdout.write(`| ${k} | ${v.toFixed(3)} | ${t?.toFixed(3) ?? "–"} | ${t ? (v / t).toFixed(2) : "–"} |\n`);
}
if (args.includes("--json")) process.stdout.write(`${JSON.stringify({ adapter: be.adapter, ours, torch })}\n`);
