/**
 * The sweep runner: claims pending trials in the run store and runs them on a pool of worker threads, one trial
 * per worker at a time. A finished trial is written to the store in one transaction, so killing the process loses
 * at most the trials in flight, and those resume from their own checkpoints on the next run.
 */
import { Worker } from "node:worker_threads";
import { join } from "node:path";
import { oneLine } from "../store/runStore.js";
import type { Store } from "../store/store.js";
import type { TrialOutcome } from "./runTrial.js";
import { specOf, type TrialPlan } from "./trials.js";

export interface SweepOptions {
  jobs: number;
  /** Directory for each trial's run directory (checkpoints, metrics). */
  runsDir: string;
  /** Called after each trial; `error` (a failed trial's message, as stored: one line) is undefined when it succeeded. */
  onTrialDone?(plan: TrialPlan, ok: boolean, done: number, total: number, error?: string): void;
}

export async function runSweep(
  store: Store,
  plans: TrialPlan[],
  opts: SweepOptions,
): Promise<{ ran: number; failed: number }> {
  await store.ensureTrials(plans.map(specOf));
  const status = new Map((await store.list()).map((r) => [r.id, r.status]));
  const todo = plans.filter((p) => status.get(p.id) !== "done");
  const total = todo.length;
  let done = 0,
    failed = 0,
    next = 0;
  if (total === 0) return { ran: 0, failed: 0 };
  const workerUrl = new URL("./worker.js", import.meta.url);
  const jobs = Math.max(1, Math.min(opts.jobs, total));
  await new Promise<void>((resolve, reject) => {
    let live = jobs;
    const workers: Worker[] = [];
    const feed = async (w: Worker) => {
      while (next < todo.length) {
        const plan = todo[next++];
        if (!(await store.claim(plan.id))) continue; // another process has it, or finished it meanwhile
        w.postMessage({ plan, runDir: join(opts.runsDir, plan.id) });
        return;
      }
      live--;
      void w.terminate();
      if (live === 0) resolve();
    };
    const stop = (e: unknown) => {
      next = todo.length;
      workers.forEach((x) => void x.terminate());
      reject(e instanceof Error ? e : new Error(String(e)));
    };
    for (let i = 0; i < jobs; i++) {
      const w = new Worker(workerUrl);
      workers.push(w);
      const onMessage = async (m: {
        id: string;
        ok: boolean;
        outcome?: TrialOutcome;
        error?: string;
      }): Promise<void> => {
        // A store error (disk full, corrupt store) ends the sweep through its promise, not as an uncaught exception.
        try {
          const plan = todo.find((p) => p.id === m.id)!;
          done++;
          let error: string | undefined;
          if (m.ok && m.outcome) {
            await store.finish(m.id, m.outcome.summary, m.outcome.metrics, m.outcome.seconds);
          } else {
            failed++;
            error = oneLine(m.error ?? "unknown error");
            await store.fail(m.id, error);
          }
          opts.onTrialDone?.(plan, m.ok, done, total, error);
          await feed(w);
        } catch (e) {
          stop(e);
        }
      };
      w.on("message", (m: Parameters<typeof onMessage>[0]) => void onMessage(m));
      w.on("error", stop);
      feed(w).catch(stop);
    }
  });
  return { ran: done, failed };
}
