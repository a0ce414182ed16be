/** `gcx store migrate --from A --to B`: copies the finished trials (rows and metric records) between run stores. */
import { Command } from "commander";
import { openStore } from "../../store/open.js";
import { UserError } from "../../util/errors.js";
import { sanitizeLine } from "../errorBoundary.js";

export function storeCommand(): Command {
  const cmd = new Command("store").description("Manage run stores (a SQLite file or a postgres:// URL)");
  cmd
    .command("migrate")
    .description(
      "copy every finished trial, with its metric records, from one store to another (trials already done there are kept)",
    )
    .requiredOption("--from <url|file>", "the store to read (opened read-only)")
    .requiredOption("--to <url|file>", "the store to write (created if missing)")
    .option("--family <name>", "only this family")
    .action(async (flags: { from: string; to: string; family?: string }) => {
      if (flags.from === flags.to) throw new UserError("--from and --to name the same store");
      const from = await openStore(flags.from, { readOnly: true });
      try {
        const to = await openStore(flags.to);
        try {
          let copied = 0,
            kept = 0;
          for (const row of await from.list({ family: flags.family, status: "done" })) {
            if (await to.importDone(row, await from.metrics(row.id))) copied++;
            else kept++;
          }
          process.stdout.write(
            sanitizeLine(
              `copied ${copied} finished trial${copied === 1 ? "" : "s"} from ${from.shown} to ${to.shown}${kept ? ` (${kept} already done there, kept)` : ""}`,
            ) + "\n",
          );
        } finally {
          await to.close();
        }
      } finally {
        await from.close();
      }
    });
  return cmd;
}
