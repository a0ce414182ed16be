/**
 * `gcx worker --store postgres://… [--concurrency N]`: takes trials from the shared queue, runs them and records
 * their results, on any machine that reaches the database (see docs/scaling.md).
 */
import { Command } from "commander";
import { join } from "node:path";
import { PostgresStore } from "../../store/postgres.js";
import { parseStoreSpec, redactStore } from "../../store/store.js";
import { TrialQueue } from "../../experiments/queue.js";
import { QueueWorker, type WorkerEvent } from "../../experiments/queueWorker.js";
import { UserError } from "../../util/errors.js";
import { positiveInt } from "../parse.js";
import { sanitizeLine } from "../errorBoundary.js";
import { oneLine } from "../../store/runStore.js";

interface WorkerFlags {
  store?: string;
  concurrency: number;
  runsDir: string;
  untilDone?: boolean;
  poll: number;
  heartbeat: number;
  maintenance: number;
  reconnect: number;
}

export function workerCommand(): Command {
  return new Command("worker")
    .description(
      "Work on the shared sweep queue: take trials, run them, record results (runs until stopped, or --until-done)",
    )
    .option("--store <url>", "the shared run store: postgres://user:password@host:port/database")
    .option("--concurrency <n>", "trials run at once in this process (worker threads)", positiveInt, 1)
    .option(
      "--runs-dir <dir>",
      "checkpoint directory shared by all workers (a retried trial resumes from it)",
      join("runs", "trials"),
    )
    .option("--until-done", "exit once the queue holds no waiting or running trial")
    .option("--poll <seconds>", "seconds between looks at an empty queue", positiveInt, 2)
    .option("--heartbeat <seconds>", "seconds between heartbeats of a running trial", positiveInt, 5)
    .option(
      "--maintenance <seconds>",
      "how often this worker expires the leases of lost workers (pg-boss maintenance)",
      positiveInt,
      30,
    )
    .option("--reconnect <seconds>", "how long to keep retrying while the database is unreachable", positiveInt, 3600)
    .action(async (flags: WorkerFlags) => {
      if (flags.store === undefined)
        throw new UserError("gcx worker needs --store postgres://user:password@host:port/database");
      const spec = parseStoreSpec(flags.store);
      if (spec.kind !== "postgres")
        throw new UserError(
          `gcx worker needs a postgres:// store, not ${redactStore(flags.store)} (a SQLite store is swept by gcx reproduce/experiment run on one machine)`,
        );
      const say = (line: string) => process.stderr.write(sanitizeLine(line) + "\n");
      const store = await PostgresStore.open(spec.url, {
        reconnectSeconds: flags.reconnect,
        onReconnect: (_e, line) => say(line),
      });
      let lostAt = 0;
      const queue = await TrialQueue.open(store, {
        maintenanceSeconds: flags.maintenance,
        // pg-boss's background maintenance fails while the server is away; say so once a minute at most.
        onError: (e) => {
          if (Date.now() - lostAt > 60_000) {
            lostAt = Date.now();
            say(`queue maintenance: ${store.message(e)}`);
          }
        },
      });
      const label = (p: WorkerEvent["plan"]) =>
        `${p.id} (${p.family} ${p.variant ? p.variant + " " : ""}${p.knob}=${p.knobValue} seed ${p.seed})`;
      const worker = new QueueWorker(store, queue, {
        concurrency: flags.concurrency,
        runsDir: flags.runsDir,
        pollSeconds: flags.poll,
        heartbeatSeconds: flags.heartbeat,
        idle: async () => {
          // With no job left, a trial still running has lost its worker for good: record it now, not in 30 s.
          const over = flags.untilDone === true && (await queue.waiting()) === 0;
          const lost = await queue.reapLost(over ? 0 : 30);
          if (lost) say(`recorded ${lost} trial${lost === 1 ? "" : "s"} lost on the last attempt as failed`);
          return over;
        },
        onEvent(e) {
          if (e.type === "start")
            say(`start ${label(e.plan)} attempt ${e.attempt}${e.resume ? ", resuming from its checkpoint" : ""}`);
          else if (e.type === "done")
            say(`done ${label(e.plan)} in ${e.seconds.toFixed(1)} s (queue ${e.queueMs.toFixed(0)} ms)`);
          else if (e.type === "skip") say(`skip ${label(e.plan)}: already done`);
          else
            say(
              `${e.type === "failed" ? "FAILED" : "retry"} ${label(e.plan)} attempt ${e.attempt}: ${oneLine(e.error, 300)}`,
            );
        },
      });
      say(
        `worker on ${store.shown}: ${flags.concurrency} slot${flags.concurrency === 1 ? "" : "s"}, checkpoints in ${flags.runsDir}`,
      );
      let signalled = false;
      const onSignal = () => {
        if (signalled) return;
        signalled = true;
        say("stopping: handing running trials back to the queue");
        void worker.stop();
      };
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      try {
        const r = await worker.result;
        say(`worker finished: ${r.done} done, ${r.failed} failed`);
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
        await queue.close();
        await store.close();
      }
    });
}
