#!/usr/bin/env node
/** The `gcx` command line. User mistakes print one line and exit 2; anything else is a bug and shows its stack. */
import { Command, CommanderError } from "commander";
import { isUserError } from "../util/errors.js";
import { measureCommand } from "./commands/measure.js";
import { trainCommand } from "./commands/train.js";

const program = new Command("gcx")
  .description("Measure, control and explain the geometric complexity of neural networks (Dherin et al., NeurIPS 2022).")
  .version("0.1.0")
  .showHelpAfterError("(run with --help for usage)")
  .exitOverride()
  .addCommand(measureCommand())
  .addCommand(trainCommand());

for (const cmd of program.commands) cmd.exitOverride();

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
