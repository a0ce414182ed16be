/**
 * `npm run bench`: our timings and PyTorch's (Debian python3-torch, 2 threads, OpenBLAS) on the same tasks and
 * shapes on this machine, with the ratio ours/PyTorch; printed and written to bench/results.md.
 * Usage: node dist/bench/run.js [all|mlp|cnn|mlp2d|mnist]
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { runOurs } from "./ours.js";

const which = process.argv[2] ?? "all";
const script = fileURLToPath(new URL("../../bench/torch_bench.py", import.meta.url));

// Debian's python3-torch installs for the system interpreter, which may not be the python3 first on PATH.
const python = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

function torchTimings(): { res: Record<string, number> | null; why: string } {
  const probe = spawnSync(python, ["-c", "import torch; print(torch.__version__)"], { encoding: "utf8" });
  if (probe.status !== 0) return { res: null, why: "PyTorch is not installed (apt-get install -y python3-torch libopenblas0-pthread)" };
  const r = spawnSync(python, [script, which], { encoding: "utf8", env: { ...process.env, OMP_WAIT_POLICY: "PASSIVE" }, maxBuffer: 1 << 20 });
  if (r.status !== 0) return { res: null, why: `PyTorch benchmark failed: ${r.stderr.trim().split("\n").pop()}` };
  return { res: JSON.parse(r.stdout.trim().split("\n").pop()!) as Record<string, number>, why: `torch ${probe.stdout.trim()}` };
}

const ours = runOurs(which);
const torch = torchTimings();
const blas = spawnSync("sh", ["-c", "readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3"], { encoding: "utf8" }).stdout.trim();
const rows = Object.keys(ours).map((task) => {
  const t = torch.res?.[task];
  const isSeconds = task.endsWith(", s");
  const f = (v: number) => (isSeconds ? v.toFixed(2) : v.toFixed(2));
  return `| ${task} | ${f(ours[task])} | ${t === undefined ? "—" : f(t)} | ${t === undefined ? "—" : (ours[task] / t).toFixed(2)} |`;
});
const md = [
  "# Benchmark: geometric-complexity vs PyTorch",
  "",
  `Machine: ${cpus().length} × ${cpus()[0]?.model ?? "CPU"}, Node ${process.version}. Reference: ${torch.why}` +
    (torch.res ? `, torch.set_num_threads(2), OMP_WAIT_POLICY=PASSIVE, BLAS ${blas || "unknown"}.` : "."),
  "Medians after warm-up, milliseconds per call unless the task says seconds. Batch 128 for MLP 784-256-256-10 and the CNN",
  "(conv3x3-32, relu, maxpool, conv3x3-64, relu, maxpool, dense 10 on 28x28x1); batch 256 for MLP2D 2-64-64-2.",
  "Penalties: α·GC with α = 0.01 (exact, double backprop), λ‖∇θL‖² with λ = 0.01. PyTorch's exact GC uses batched VJPs (is_grads_batched).",
  "",
  "| task | ours | PyTorch | ours / PyTorch |",
  "|---|---|---|---|",
  ...rows,
  "",
].join("\n");
process.stdout.write(md);
// The hand-written analysis of misses and next levers follows the measured table in results.md.
const levers = fileURLToPath(new URL("../../bench/levers.md", import.meta.url));
if (which === "all") writeFileSync(fileURLToPath(new URL("../../bench/results.md", import.meta.url)), md + "\n" + (existsSync(levers) ? readFileSync(levers, "utf8") : ""));
