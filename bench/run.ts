/**
 * `npm run bench`: our timings and PyTorch's (Debian python3-torch, 2 threads, OpenBLAS) on the same tasks and
 * shapes on this machine, with the ratio ours/PyTorch; printed and written to bench/results.md.
 *
 * Ratios move ±20 % between runs on a shared machine, so the bench runs both sides `--runs` times (default 5), in
 * alternation, and reports per task the median ratio over runs (with the range) and the medians of the timings.
 * The last line is machine-readable: `worst ratio: N.NN (task)`. With `all`, it then times the whole
 * `gcx reproduce --quick` once (no PyTorch counterpart, so a line of its own, not a ratio row; `--no-reproduce`
 * skips it). Our side runs the kernels the CLI runs (relaxed-SIMD FMA where the runtime has it).
 * Usage: node dist/bench/run.js [all|mlp|cnn|resnet|mlp2d|mnist] [--runs N] [--no-reproduce]
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { useCliKernels } from "./cliKernels.js";
import { runOurs } from "./ours.js";
import { engineInfo } from "../src/engine/backend.js";

useCliKernels(); // as the CLI does, before any kernel runs

const args = process.argv.slice(2);
const runsAt = args.indexOf("--runs");
// The group is the one argument that is neither an option nor the value of --runs.
const which = args.find((a, i) => !a.startsWith("--") && i !== runsAt + 1) ?? "all";
const GROUPS = ["all", "mlp", "cnn", "resnet", "mlp2d", "mnist"];
if (!GROUPS.includes(which)) {
  process.stderr.write(`bench: error: unknown group "${which}" (choose ${GROUPS.join(", ")})\n`);
  process.exit(2);
}
const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 5;
if (!Number.isInteger(runs) || runs < 1) {
  process.stderr.write(`bench: error: --runs needs a positive integer, got ${args[runsAt + 1]}\n`);
  process.exit(2);
}
const script = fileURLToPath(new URL("../../bench/torch_bench.py", import.meta.url));
const cli = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));

// Debian's python3-torch installs for the system interpreter, which may not be the python3 first on PATH.
const python = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

function torchTimings(): { res: Record<string, number> | null; why: string } {
  const probe = spawnSync(python, ["-c", "import torch; print(torch.__version__)"], { encoding: "utf8" });
  if (probe.status !== 0)
    return { res: null, why: "PyTorch is not installed (apt-get install -y python3-torch libopenblas0-pthread)" };
  const r = spawnSync(python, [script, which], {
    encoding: "utf8",
    env: { ...process.env, OMP_WAIT_POLICY: "PASSIVE" },
    maxBuffer: 1 << 20,
  });
  if (r.status !== 0) return { res: null, why: `PyTorch benchmark failed: ${r.stderr.trim().split("\n").pop() ?? ""}` };
  return {
    res: JSON.parse(r.stdout.trim().split("\n").pop()!) as Record<string, number>,
    why: `torch ${probe.stdout.trim()}`,
  };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const ourRuns: Record<string, number>[] = [];
const torchRuns: Record<string, number>[] = [];
let why = "";
for (let r = 0; r < runs; r++) {
  ourRuns.push(runOurs(which));
  const t = torchTimings();
  why = t.why;
  if (t.res) torchRuns.push(t.res);
  process.stderr.write(`bench: run ${r + 1}/${runs} done\n`);
}

const tasks = Object.keys(ourRuns[0]);
let worst: [number, string] = [-Infinity, ""];
const rows = tasks.map((task) => {
  const ours = median(ourRuns.map((o) => o[task]));
  const f = (v: number) => v.toFixed(2);
  if (torchRuns.length < runs || torchRuns.some((t) => t[task] === undefined))
    return `| ${task} | ${f(ours)} | — | — | — |`;
  const ratios = ourRuns.map((o, i) => o[task] / torchRuns[i][task]);
  const ratio = median(ratios);
  if (ratio > worst[0]) worst = [ratio, task];
  return `| ${task} | ${f(ours)} | ${f(median(torchRuns.map((t) => t[task])))} | ${ratio.toFixed(2)} | ${f(Math.min(...ratios))}–${f(Math.max(...ratios))} |`;
});

let reproduceLine = "";
if (which === "all" && !args.includes("--no-reproduce")) {
  const dir = mkdtempSync(join(tmpdir(), "gcx-bench-"));
  const t0 = performance.now();
  const r = spawnSync(
    process.execPath,
    [cli, "reproduce", "--quick", "--out", join(dir, "report"), "--db", join(dir, "runs.sqlite")],
    { encoding: "utf8", maxBuffer: 1 << 26 },
  );
  const s = (performance.now() - t0) / 1000;
  reproduceLine =
    r.status === 0
      ? `\`gcx reproduce --quick\` (whole command, no PyTorch counterpart): ${(s / 60).toFixed(1)} min wall.`
      : `\`gcx reproduce --quick\` failed: ${r.stderr.trim().split("\n").pop() ?? ""}`;
  rmSync(dir, { recursive: true, force: true });
}

const engine = engineInfo();
const md = [
  "# Benchmark: geometric-complexity vs PyTorch",
  "",
  `Machine: ${cpus().length} × ${cpus()[0]?.model ?? "CPU"}, Node ${process.version}, backend ${engine.backend} (${engine.variant}). Reference: ${why}` +
    (torchRuns.length
      ? `, torch.set_num_threads(2), OMP_WAIT_POLICY=PASSIVE, BLAS ${spawnSync("sh", ["-c", "readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3"], { encoding: "utf8" }).stdout.trim() || "unknown"}.`
      : "."),
  `Medians over ${runs} alternating runs of both sides (each run itself a median after warm-up); milliseconds per call unless the task`,
  "says seconds; the ratio is the median of the per-run ratios, with their range. Batch 128 for MLP 784-256-256-10, the CNN",
  "(conv3x3-32, relu, maxpool, conv3x3-64, relu, maxpool, dense 10) and ResNet-8 (resnet:8:w16: widths 16-32-64, BatchNorm) on 28x28x1;",
  "batch 256 for MLP2D 2-64-64-2. Forward and exact GC in inference mode, steps in training mode (BatchNorm on batch statistics).",
  "Penalties: α·GC with α = 0.01 (exact, double backprop), λ‖∇θL‖² with λ = 0.01. PyTorch's exact GC uses batched VJPs (is_grads_batched).",
  "",
  "| task | ours | PyTorch | ours / PyTorch | range over runs |",
  "|---|---|---|---|---|",
  ...rows,
  "",
  ...(reproduceLine ? [reproduceLine, ""] : []),
  worst[1] ? `worst ratio: ${worst[0].toFixed(2)} (${worst[1]})` : "worst ratio: — (no PyTorch timings)",
  "",
].join("\n");
process.stdout.write(md);
// The hand-written analysis of misses and next levers follows the measured table in results.md.
const levers = fileURLToPath(new URL("../../bench/levers.md", import.meta.url));
if (which === "all")
  writeFileSync(
    fileURLToPath(new URL("../../bench/results.md", import.meta.url)),
    md + "\n" + (existsSync(levers) ? readFileSync(levers, "utf8") : ""),
  );
