/**
 * The sweep runner: claims pending trials in the run store and runs them on a pool of worker threads, one trial
 * per worker at a time. A finished trial is written to the store in one transaction, so killing the process loses
 * at most the trials in flight, and those resume from their own checkpoints on the next run.
 */
import { Worker } from "node:worker_threads";
import { join } from "node:path";
import type { RunStore } from "../store/runStore.js";
import type { TrialOutcome } from "./runTrial.js";
import type { TrialPlan } from "./trials.js";

export interface SweepOptions {
  jobs: number;
  /** Directory for each trial's run directory (checkpoints, metrics). */
  runsDir: string;
  onTrialDone?(plan: TrialPlan, ok: boolean, done: number, total: number, error?: string): void;
}

export async function runSweep(store: RunStore, plans: TrialPlan[], opts: SweepOptions): Promise<{ ran: number; failed: number }> {
  store.ensureTrials(plans.map((p) => ({ id: p.id, family: p.family, version: p.version, knob: p.knob, knobValue: p.knobValue, seed: p.seed, config: { ...p.config, variant: p.variant, kind: p.kind } })));
  const todo = plans.filter((p) => store.get(p.id)?.status !== "done");
  const total = todo.length;
  let done = 0, failed = 0, next = 0;
  if (total === 0) return { ran: 0, failed: 0 };
  const workerUrl = new URL("./worker.js", import.meta.url);
  const jobs = Math.max(1, Math.min(opts.jobs, total));
  await new Promise<void>((resolve, reject) => {
    let live = jobs;
    const workers: Worker[] = [];
    const feed = (w: Worker) => {
      while (next < todo.length) {
        const plan = todo[next++];
        if (!store.claim(plan.id)) continue; // another process has it, or finished it meanwhile
        w.postMessage({ plan, runDir: join(opts.runsDir, plan.id) });
        return;
      }
      live--;
      void w.terminate();
      if (live === 0) resolve();
    };
    for (let i = 0; i < jobs; i++) {
      const w = new Worker(workerUrl);
      workers.push(w);
      w.on("message", (m: { id: string; ok: boolean; outcome?: TrialOutcome; error?: string }) => {
        const plan = todo.find((p) => p.id === m.id)!;
        done++;
        if (m.ok && m.outcome) {
          store.finish(m.id, m.outcome.summary, m.outcome.metrics, m.outcome.seconds);
        } else {
          failed++;
          store.fail(m.id, m.error ?? "unknown error");
        }
        opts.onTrialDone?.(plan, m.ok, done, total, m.error);
        feed(w);
      });
      w.on("error", (e) => {
        workers.forEach((x) => void x.terminate());
        reject(e);
      });
      feed(w);
    }
  });
  return { ran: done, failed };
}
