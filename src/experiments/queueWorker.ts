/**
 * The queue worker (`gcx worker`, and the in-process workers of `reproduce --store postgres://…`): `concurrency`
 * slots, each a worker thread, each taking one trial job at a time from the queue, running it (resuming from its
 * checkpoint in the shared runs directory when an earlier attempt got that far), and recording the result in the
 * store before completing the job. A trial already done (an earlier attempt finished it but died before completing
 * its job) is only completed. A failed attempt goes back to the queue while retries are left, and is recorded as
 * failed on the last. While the database is away every store and queue call waits and retries with backoff (see
 * PostgresStore.retrying), holding a finished trial's result in memory until it can be written.
 */
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { oneLine } from "../store/runStore.js";
import { sleep, workerName, type PostgresStore } from "../store/postgres.js";
import type { TrialOutcome } from "./runTrial.js";
import type { TrialJob, TrialQueue } from "./queue.js";
import type { TrialPlan } from "./trials.js";

export type WorkerEvent =
  | { type: "start"; plan: TrialPlan; attempt: number; resume: boolean }
  | { type: "done"; plan: TrialPlan; seconds: number; queueMs: number }
  | { type: "skip"; plan: TrialPlan }
  | { type: "retry" | "failed"; plan: TrialPlan; attempt: number; error: string };

export interface QueueWorkerOptions {
  concurrency: number;
  /** Where each trial keeps its checkpoints (shared by all machines, or a retried trial starts over). */
  runsDir: string;
  /** Seconds between heartbeats of a running trial. */
  heartbeatSeconds?: number;
  /** Seconds between polls of an empty queue. */
  pollSeconds?: number;
  /** Asked whenever the queue has nothing to give: stop now? (default: never; a worker waits for more work). */
  idle?(): Promise<boolean>;
  /** Also ask `idle` after every job (an in-process worker stops once its own sweep is finished). */
  stopAfterEach?: boolean;
  onEvent?(e: WorkerEvent): void;
}

export interface QueueWorkerResult {
  done: number;
  failed: number;
  /** Total time spent in queue and store calls around the trials (take, start, finish, complete), milliseconds. */
  queueMs: number;
}

/** A running pool of queue-worker slots; `stop()` ends it early (in-flight attempts are failed so they are retried). */
export class QueueWorker {
  private stopping = false;
  private readonly threads: Worker[] = [];
  private readonly inFlight = new Map<string, TrialJob>();
  private readonly name = workerName();
  readonly result: Promise<QueueWorkerResult>;

  constructor(
    private readonly store: PostgresStore,
    private readonly queue: TrialQueue,
    private readonly opts: QueueWorkerOptions,
  ) {
    const totals: QueueWorkerResult = { done: 0, failed: 0, queueMs: 0 };
    const slots = Array.from({ length: Math.max(1, opts.concurrency) }, () => this.slot(totals));
    this.result = Promise.all(slots).then(() => totals);
    // Every slot must end before the pool reports; a failing slot stops the others.
    this.result.catch(() => this.halt());
  }

  /** Stops taking jobs, ends the running trials and hands their jobs back to the queue (as failed attempts). */
  async stop(): Promise<void> {
    this.halt();
    for (const job of this.inFlight.values()) {
      await this.store.requeue(job.plan.id, "worker stopped").catch(() => {});
      await this.queue.fail(job.jobId, "worker stopped").catch(() => {});
    }
    this.inFlight.clear();
  }

  private halt(): void {
    this.stopping = true;
    for (const t of this.threads) void t.terminate();
  }

  private async slot(totals: QueueWorkerResult): Promise<void> {
    const thread = new Worker(new URL("./worker.js", import.meta.url));
    this.threads.push(thread);
    try {
      while (!this.stopping) {
        const t0 = performance.now();
        const job = await this.queue.take();
        if (this.stopping) {
          if (job) await this.queue.fail(job.jobId, "worker stopped");
          break;
        }
        if (!job) {
          if (this.opts.idle && (await this.opts.idle())) break;
          await sleep((this.opts.pollSeconds ?? 1) * 1000);
          continue;
        }
        const { result, queueMs } = await this.work(thread, job, t0);
        if (result === "done") totals.done++;
        else if (result === "failed") totals.failed++;
        totals.queueMs += queueMs;
        if (this.opts.idle && this.opts.stopAfterEach && (await this.opts.idle())) break;
      }
    } finally {
      void thread.terminate();
    }
  }

  /** One job: start, run (with heartbeats), record, complete. */
  private async work(
    thread: Worker,
    job: TrialJob,
    t0: number,
  ): Promise<{ result: "done" | "failed" | "retry" | "skip"; queueMs: number }> {
    const { plan } = job;
    if (!(await this.store.start(plan.id, this.name, job.jobId))) {
      await this.queue.complete(job.jobId);
      this.opts.onEvent?.({ type: "skip", plan });
      return { result: "skip", queueMs: performance.now() - t0 };
    }
    const runDir = join(this.opts.runsDir, plan.id);
    const resume = existsSync(join(runDir, "config.json"));
    this.opts.onEvent?.({ type: "start", plan, attempt: job.attempt, resume });
    this.inFlight.set(plan.id, job);
    let queueMs = performance.now() - t0;
    const beat = setInterval(
      () => void this.store.heartbeat(plan.id, this.name).catch(() => {}),
      (this.opts.heartbeatSeconds ?? 5) * 1000,
    );
    let r: { ok: true; outcome: TrialOutcome } | { ok: false; error: string };
    try {
      r = await runOn(thread, plan, runDir);
      // A checkpoint left unreadable by a worker killed at a bad moment: start that trial over, once.
      if (!r.ok && resume && !this.stopping) {
        rmSync(runDir, { recursive: true, force: true });
        r = await runOn(thread, plan, runDir);
      }
    } finally {
      clearInterval(beat);
    }
    if (this.stopping) return { result: "retry", queueMs };
    const t1 = performance.now();
    let result: "done" | "failed" | "retry";
    if (r.ok) {
      await this.store.finish(plan.id, r.outcome.summary, r.outcome.metrics, r.outcome.seconds);
      await this.queue.complete(job.jobId);
      result = "done";
    } else if (job.lastAttempt) {
      await this.store.fail(plan.id, r.error);
      await this.queue.fail(job.jobId, r.error);
      result = "failed";
    } else {
      await this.store.requeue(plan.id, r.error);
      await this.queue.fail(job.jobId, r.error);
      result = "retry";
    }
    this.inFlight.delete(plan.id);
    queueMs += performance.now() - t1;
    if (r.ok) this.opts.onEvent?.({ type: "done", plan, seconds: r.outcome.seconds, queueMs });
    else
      this.opts.onEvent?.({
        type: result === "failed" ? "failed" : "retry",
        plan,
        attempt: job.attempt,
        error: r.error,
      });
    return { result, queueMs };
  }
}

/** Runs one trial on a worker thread (see worker.ts); a thread that dies counts as a failed attempt. */
function runOn(
  thread: Worker,
  plan: TrialPlan,
  runDir: string,
): Promise<{ ok: true; outcome: TrialOutcome } | { ok: false; error: string }> {
  return new Promise((resolve) => {
    const done = (v: { ok: true; outcome: TrialOutcome } | { ok: false; error: string }) => {
      thread.off("message", onMessage);
      thread.off("error", onError);
      thread.off("exit", onExit);
      resolve(v);
    };
    const onMessage = (m: { id: string; ok: boolean; outcome?: TrialOutcome; error?: string }) =>
      done(
        m.ok && m.outcome
          ? { ok: true, outcome: m.outcome }
          : { ok: false, error: oneLine(m.error ?? "unknown error") },
      );
    const onError = (e: Error) => done({ ok: false, error: oneLine(e.message) });
    const onExit = (code: number) => done({ ok: false, error: `trial thread exited (code ${code})` });
    thread.on("message", onMessage);
    thread.on("error", onError);
    thread.on("exit", onExit);
    thread.postMessage({ plan, runDir });
  });
}
