#!/usr/bin/env node
/**
 * The `gcx` command line. User mistakes and environment problems print one line and exit 2; anything else is a bug
 * (exit 1, stack under --debug). See errorBoundary.ts.
 */
import { Command, CommanderError } from "commander";
import { measureCommand } from "./commands/measure.js";
import { trainCommand } from "./commands/train.js";
import { experimentCommand, reportCommand, reproduceCommand } from "./commands/experiments.js";
import { runsCommand } from "./commands/runs.js";
import { workerCommand } from "./commands/worker.js";
import { storeCommand } from "./commands/store.js";
import { exitWithError } from "./errorBoundary.js";

// --debug may appear anywhere; it only changes how bugs are reported.
const debug = process.argv.includes("--debug") || process.env.GCX_DEBUG === "1";
const argv = process.argv.filter((a, i) => i < 2 || a !== "--debug");

process.on("uncaughtException", (e) => exitWithError(e, debug));
process.on("unhandledRejection", (e) => exitWithError(e, debug));

const program = new Command("gcx")
  .description(
    "Measure, control and explain the geometric complexity of neural networks (Dherin et al., NeurIPS 2022).\n" +
      "Exit codes: 0 success, 2 a user mistake or environment problem (one line on stderr), 1 a bug in gcx\n" +
      "(add --debug anywhere for its stack trace).",
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
