#!/usr/bin/env node
/** The `gcx` command line. User mistakes print one line and exit 2; anything else is a bug and shows its stack. */
import { Command, CommanderError } from "commander";
import { isUserError } from "../util/errors.js";
import { measureCommand } from "./commands/measure.js";
import { trainCommand } from "./commands/train.js";
import { experimentCommand, reportCommand, reproduceCommand } from "./commands/experiments.js";
import { runsCommand } from "./commands/runs.js";

const program = new Command("gcx")
  .description("Measure, control and explain the geometric complexity of neural networks (Dherin et al., NeurIPS 2022).")
  .version("0.1.0")
  .showHelpAfterError("(run with --help for usage)")
  .exitOverride()
  .addCommand(measureCommand())
  .addCommand(trainCommand())
  .addCommand(reproduceCommand())
  .addCommand(experimentCommand())
  .addCommand(reportCommand())
  .addCommand(runsCommand());

// Every (sub)command reports argument errors through the handler below.
const overrideAll = (c: Command): void => {
  c.exitOverride();
  c.commands.forEach(overrideAll);
};
overrideAll(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    // Help and version exit 0; argument errors were already printed by commander.
    process.exit(e.exitCode === 0 ? 0 : 2);
  }
  if (isUserError(e)) {
    // One line per problem (a config can have several).
    for (const line of e.message.split("\n")) process.stderr.write(`gcx: error: ${line}\n`);
    process.exit(2);
  }
  throw e;
}
