#!/usr/bin/env node
/**
 * The `gcx` command line. User mistakes and environment problems print one line and exit 2; anything else is a bug
 * (exit 1, stack under --debug). See errorBoundary.ts.
 */
import { Command, CommanderError } from "commander";
import { setFlagsFromString } from "node:v8";
import { measureCommand } from "./commands/measure.js";
import { trainCommand } from "./commands/train.js";
import { experimentCommand, reportCommand, reproduceCommand } from "./commands/experiments.js";
import { runsCommand } from "./commands/runs.js";
import { workerCommand } from "./commands/worker.js";
import { storeCommand } from "./commands/store.js";
import { exitWithError } from "./errorBoundary.js";
import { setBackend } from "../engine/backend.js";
import { requestWebGPU } from "../engine/backends/webgpu/index.js";
import { relaxedSimdSupported } from "../engine/wasmKernels.js";
import { UserError } from "../util/errors.js";

// Relaxed SIMD (fused multiply-add kernels) is standard from V8 11.4; Node 20 has it behind a flag. Only the CLI turns
// it on, here, before any WebAssembly compiles (the library never changes a host's flags); GCX_KERNELS=plain keeps
// the plain SIMD kernels. Runs record which variant computed them.
// Newer Node validates relaxed SIMD without it, and is then left alone.
if (process.env.GCX_KERNELS !== "plain" && !relaxedSimdSupported())
  setFlagsFromString("--experimental-wasm-relaxed-simd");

// --debug may appear anywhere; it only changes how bugs are reported.
const debug = process.argv.includes("--debug") || process.env.GCX_DEBUG === "1";
let argv = process.argv.filter((a, i) => i < 2 || a !== "--debug");

// --backend NAME may appear anywhere too: it selects the engine for the whole process (and its worker threads,
// through GCX_BACKEND, which also works on its own).
const backendAt = argv.findIndex((a, i) => i >= 2 && (a === "--backend" || a.startsWith("--backend=")));
if (backendAt >= 0) {
  const a = argv[backendAt];
  const name = a.includes("=") ? a.slice(a.indexOf("=") + 1) : argv[backendAt + 1];
  argv = argv.filter((_, i) => i !== backendAt && (a.includes("=") || i !== backendAt + 1));
  if (!name || name.startsWith("-"))
    exitWithError(new UserError("--backend needs a name: auto, wasm, js or webgpu"), debug);
  process.env.GCX_BACKEND = name;
}
// WebGPU needs an adapter, found asynchronously; without one (or with only a software one) say why in one line.
if (process.env.GCX_BACKEND === "webgpu") {
  const r = await requestWebGPU();
  if (r.reason !== undefined) exitWithError(new UserError(`--backend webgpu: ${r.reason}`), debug);
}
try {
  setBackend(process.env.GCX_BACKEND ?? "auto");
} catch (e) {
  exitWithError(new UserError(`--backend: ${(e as Error).message}`), debug);
}

process.on("uncaughtException", (e) => exitWithError(e, debug));
process.on("unhandledRejection", (e) => exitWithError(e, debug));

const program = new Command("gcx")
  .description(
    "Measure, control and explain the geometric complexity of neural networks (Dherin et al., NeurIPS 2022).\n" +
      "Exit codes: 0 success, 2 a user mistake or environment problem (one line on stderr), 1 a bug in gcx\n" +
      "(add --debug anywhere for its stack trace).\n" +
      "Engine: --backend auto|wasm|js|webgpu anywhere on the line (default auto: the WebAssembly kernels when built,\n" +
      "else plain JavaScript; auto never picks webgpu, which needs a hardware GPU adapter); runs and checkpoints record\n" +
      "it, and a resume refuses to switch.",
  )
  .version("0.1.0")
  .showHelpAfterError("(run with --help for usage)")
  .exitOverride()
  .addCommand(measureCommand())
  .addCommand(trainCommand())
  .addCommand(reproduceCommand())
  .addCommand(experimentCommand())
  .addCommand(reportCommand())
  .addCommand(runsCommand())
  .addCommand(workerCommand())
  .addCommand(storeCommand());

// Every (sub)command reports argument errors through the handler below.
const overrideAll = (c: Command): void => {
  c.exitOverride();
  c.commands.forEach(overrideAll);
};
overrideAll(program);

try {
  await program.parseAsync(argv);
} catch (e) {
  if (e instanceof CommanderError) {
    // Help and version exit 0; argument errors were already printed by commander.
    process.exit(e.exitCode === 0 ? 0 : 2);
  }
  exitWithError(e, debug);
}
