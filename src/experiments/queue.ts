/**
 * The sweep's job queue on PostgreSQL, through pg-boss 10 (docs/decisions/0009): one job per trial, carrying the
 * trial's plan. pg-boss hands a job to one worker at a time (`SELECT … FOR UPDATE SKIP LOCKED`), keeps it `active`
 * for at most its lease (`expireInSeconds`), after which its maintenance marks it failed and, while retries are left
 * (`retryLimit`), queues it again; a worker that dies therefore loses its trial to another worker after the lease.
 * Enqueueing runs in the store's transaction under an advisory lock, so a trial gets a new job only when it is not
 * done and its previous job (if any) is finished: two `reproduce` commands at once queue each trial once.
 */
import type PgBoss from "pg-boss";
import type { PostgresStore } from "../store/postgres.js";
import { specOf, type TrialPlan } from "./trials.js";

/** The pg-boss queue that carries the trials. */
export const QUEUE_NAME = "gcx-trials";

export interface QueueOptions {
  /** Lease of a job: seconds a worker may hold it before it is given to another (must exceed the longest trial). */
  leaseSeconds?: number;
  /** Retries after a failed or expired attempt, before the trial is recorded as failed. */
  retries?: number;
  /** Seconds before a failed attempt is retried. */
  retryDelaySeconds?: number;
  /** How often pg-boss's maintenance (which expires leases) runs, in seconds. */
  maintenanceSeconds?: number;
  /** Errors pg-boss reports in the background (lost connections while the server restarts, ...). */
  onError?(e: unknown): void;
}

export const DEFAULT_LEASE_SECONDS = 2 * 3600;
export const DEFAULT_RETRIES = 2;

/** A job as a worker gets it: the trial's plan, and whether this is its last attempt. */
export interface TrialJob {
  jobId: string;
  plan: TrialPlan;
  attempt: number;
  lastAttempt: boolean;
}

export class TrialQueue {
  private constructor(
    private readonly boss: PgBoss,
    private readonly store: PostgresStore,
    private readonly opts: QueueOptions,
  ) {}

  /** Connects pg-boss to the store's database (creating its `pgboss` schema and the trial queue when missing). */
  static async open(store: PostgresStore, opts: QueueOptions = {}): Promise<TrialQueue> {
    const { default: PgBoss } = await import("pg-boss"); // loaded on first use, like pg (store/postgres.ts)
    const make = () => {
      const b = new PgBoss({
        connectionString: store.url,
        max: 2,
        schedule: false,
        supervise: true,
        maintenanceIntervalSeconds: opts.maintenanceSeconds ?? 30,
        application_name: "gcx",
      });
      // pg-boss reports background errors (a restarting server) as events; without a listener they would crash us.
      b.on("error", (e) => opts.onError?.(e));
      return b;
    };
    let boss = make();
    // Two processes creating the queue at once deadlock inside pg-boss: one at a time, under the store's lock.
    await store.retrying(() =>
      store.withLock(async () => {
        try {
          await boss.start();
        } catch (e) {
          // A pg-boss whose start failed half-way cannot be started again: the retry gets a fresh one.
          await boss.stop({ graceful: false, wait: false }).catch(() => {});
          boss = make();
          throw e;
        }
        if (!(await boss.getQueue(QUEUE_NAME)))
          await boss.createQueue(QUEUE_NAME, { name: QUEUE_NAME, policy: "standard" });
      }),
    );
    return new TrialQueue(boss, store, opts);
  }

  /**
   * Inserts the plans' trials into the store and queues a job for every one that is not done and has no live job.
   * Returns how many trials were new to the store and how many jobs were queued.
   */
  async enqueue(plans: TrialPlan[]): Promise<{ inserted: number; queued: number }> {
    const planOf = new Map(plans.map((p) => [p.id, p]));
    return this.store.enqueue(plans.map(specOf), async (trials, db) => {
      const out = new Map<string, string>();
      for (const t of trials) {
        if (t.jobId) {
          const job = await this.boss.getJobById(QUEUE_NAME, t.jobId, { db, includeArchive: false });
          if (job && ["created", "retry", "active"].includes(job.state)) continue;
        }
        const id = await this.boss.send(QUEUE_NAME, { plan: planOf.get(t.id) } as object, {
          singletonKey: t.id,
          retryLimit: this.opts.retries ?? DEFAULT_RETRIES,
          retryDelay: this.opts.retryDelaySeconds ?? 10,
          expireInSeconds: this.opts.leaseSeconds ?? DEFAULT_LEASE_SECONDS,
          db,
        });
        if (id) out.set(t.id, id);
      }
      return out;
    });
  }

  /**
   * Takes the next job, or null when none is waiting. pg-boss's fetch reports a lost connection as "no job", so an
   * empty answer is confirmed by a query that does fail (and is retried with backoff) when the server is away.
   */
  async take(): Promise<TrialJob | null> {
    const jobs = await this.store.retrying(() =>
      this.boss.fetch<{ plan: TrialPlan }>(QUEUE_NAME, { batchSize: 1, includeMetadata: true }),
    );
    if (jobs.length === 0) {
      await this.waiting();
      return null;
    }
    const j = jobs[0];
    return { jobId: j.id, plan: j.data.plan, attempt: j.retryCount + 1, lastAttempt: j.retryCount >= j.retryLimit };
  }

  /** Jobs not finished yet: waiting, waiting for a retry, or held by a worker. */
  async waiting(): Promise<number> {
    return this.store.retrying(() => this.boss.getQueueSize(QUEUE_NAME, { before: "completed" }));
  }

  /**
   * Records as failed every trial still `running` whose job pg-boss has failed for good: its worker was lost on the
   * last attempt (the lease expired with no retry left), so nobody will finish it. Only trials whose worker has been
   * silent for `silentSeconds` are looked up. Returns how many it recorded.
   */
  async reapLost(silentSeconds = 30): Promise<number> {
    let n = 0;
    // A live worker beats every few seconds: only trials silent for a while are looked up.
    for (const t of await this.store.silentRunning(silentSeconds)) {
      if (!t.jobId) continue;
      const job = await this.store.retrying(() => this.boss.getJobById(QUEUE_NAME, t.jobId!, { includeArchive: true }));
      if (job?.state !== "failed") continue;
      const output = job.output as { value?: { message?: unknown }; message?: unknown } | null;
      const message = output?.value?.message ?? output?.message ?? "its job failed";
      const why = typeof message === "string" ? message : JSON.stringify(message);
      await this.store.fail(t.id, `lost on its last attempt (${why}); enqueue the sweep again to retry it`);
      n++;
    }
    return n;
  }

  async complete(jobId: string): Promise<void> {
    await this.store.retrying(() => this.boss.complete(QUEUE_NAME, jobId));
  }

  /** Fails the attempt; pg-boss queues the job again while it has retries left. */
  async fail(jobId: string, error: string): Promise<void> {
    await this.store.retrying(() => this.boss.fail(QUEUE_NAME, jobId, { message: error }));
  }

  async close(): Promise<void> {
    await this.boss.stop({ graceful: false, wait: true, timeout: 1000 }).catch(() => {});
  }
}
