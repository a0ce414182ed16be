/**
 * A sweep on the shared (Postgres) store: queue the plans' missing trials, then, unless `workers` is 0, work on the
 * queue in this process until every one of them is done or failed (other machines' `gcx worker`s may take some).
 */
import { oneLine } from "../store/runStore.js";
import type { PostgresStore } from "../store/postgres.js";
import { TrialQueue, type QueueOptions } from "./queue.js";
import { QueueWorker, type WorkerEvent } from "./queueWorker.js";
import type { TrialPlan } from "./trials.js";

export interface QueueSweepOptions extends Omit<QueueOptions, "onError"> {
  /** Worker threads in this process (0: only enqueue). */
  workers: number;
  runsDir: string;
  /** A trial of this sweep finished here (ok) or failed for good; like runSweep's. */
  onTrialDone?(plan: TrialPlan, ok: boolean, done: number, total: number, error?: string): void;
  /** One line about the queue (how many were queued, a lost connection, a retried attempt). */
  log?(line: string): void;
}

export interface QueueSweepResult {
  queued: number;
  /** Trials of this sweep not done yet (with workers 0: all those queued or running elsewhere). */
  remaining: number;
  failures: { id: string; error: string }[];
}

export async function runQueueSweep(
  store: PostgresStore,
  plans: TrialPlan[],
  opts: QueueSweepOptions,
): Promise<QueueSweepResult> {
  const queue = await TrialQueue.open(store, { ...opts, onError: () => {} });
  try {
    const { queued } = await queue.enqueue(plans);
    const ids = new Set(plans.map((p) => p.id));
    const mine = async () => (await store.list()).filter((r) => ids.has(r.id));
    const open = async () => (await mine()).filter((r) => r.status !== "done" && r.status !== "failed").length;
    let remaining = await open();
    opts.log?.(
      `queued ${queued} trial${queued === 1 ? "" : "s"} on ${store.shown}; ${remaining} of ${plans.length} not finished yet`,
    );
    if (opts.workers > 0 && remaining > 0) {
      const total = remaining;
      let done = 0;
      const onEvent = (e: WorkerEvent) => {
        if (!ids.has(e.plan.id)) return;
        if (e.type === "done" || e.type === "failed")
          opts.onTrialDone?.(e.plan, e.type === "done", ++done, total, e.type === "failed" ? e.error : undefined);
        if (e.type === "retry")
          opts.log?.(`trial ${e.plan.id} attempt ${e.attempt} failed, queued again: ${oneLine(e.error, 200)}`);
      };
      const worker = new QueueWorker(store, queue, {
        concurrency: opts.workers,
        runsDir: opts.runsDir,
        idle: async () => (await queue.reapLost(), await open()) === 0,
        stopAfterEach: true,
        onEvent,
      });
      await worker.result;
      remaining = await open();
    }
    const failures = (await mine())
      .filter((r) => r.status === "failed")
      .map((r) => ({ id: r.id, error: r.error ?? "unknown error" }));
    return { queued, remaining, failures };
  } finally {
    await queue.close();
  }
}
