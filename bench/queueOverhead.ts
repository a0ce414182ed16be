/**
 * The queue's own cost per trial, without training: enqueue N trials, then in one process take each job, mark it
 * started, finish it with 5 metric records and complete the job, as a worker does. Prints milliseconds per trial
 * for the enqueue and for take+start+finish+complete. Usage: node dist/bench/queueOverhead.js [--trials 200]
 */
import { loadavg } from "node:os";
import { families } from "../src/experiments/families.js";
import { expandTrials } from "../src/experiments/trials.js";
import { TrialQueue } from "../src/experiments/queue.js";
import { PostgresStore, workerName } from "../src/store/postgres.js";
import { PgCluster, pgUnavailable } from "../test/pgCluster.js";

const i = process.argv.indexOf("--trials");
const n = i > 0 ? Number(process.argv[i + 1]) : 200;
const why = pgUnavailable();
if (why) throw new Error(why);
const plans = families("full").flatMap(expandTrials).slice(0, n);
const cluster = await PgCluster.start();
try {
  const url = await cluster.createDb("overhead");
  const store = await PostgresStore.open(url);
  const q = await TrialQueue.open(store);
  let t0 = performance.now();
  await q.enqueue(plans);
  const enqueueMs = (performance.now() - t0) / plans.length;
  const metrics = [0, 1, 2, 3, 4].map((k) => ({
    step: k * 1000,
    gc_train: Math.random(),
    gc_test: Math.random(),
    train_acc: 0.9,
    test_acc: 0.9,
    loss: 0.1,
  }));
  t0 = performance.now();
  let count = 0;
  for (let job = await q.take(); job; job = await q.take()) {
    await store.start(job.plan.id, workerName(), job.jobId);
    await store.finish(job.plan.id, metrics[4], metrics, 1);
    await q.complete(job.jobId);
    count++;
  }
  const perTrial = (performance.now() - t0) / count;
  process.stdout.write(
    `${count} trials; enqueue ${enqueueMs.toFixed(2)} ms/trial; take+start+finish+complete ${perTrial.toFixed(2)} ms/trial; load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")}\n`,
  );
  await q.close();
  await store.close();
} finally {
  cluster.destroy();
}
