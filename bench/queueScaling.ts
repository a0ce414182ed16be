/**
 * Wall time of a sweep on the Postgres queue with 1, 2, 4… worker processes (`gcx worker --until-done`, one slot
 * each), and the queue's overhead per trial (take + start + finish + complete, as the workers log it). Starts a
 * throw-away cluster like the tests do. Usage:
 *   node dist/bench/queueScaling.js [--family E2] [--trials 8] [--workers 1,2,4]
 */
import { spawn } from "node:child_process";
import { useCliKernels } from "./cliKernels.js";
import { mkdtempSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { families } from "../src/experiments/families.js";
import { expandTrials } from "../src/experiments/trials.js";
import { TrialQueue } from "../src/experiments/queue.js";
import { PostgresStore } from "../src/store/postgres.js";
import { PgCluster, pgUnavailable } from "../test/pgCluster.js";

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const family = arg("family", "E2");
const count = Number(arg("trials", "8"));
const counts = arg("workers", "1,2,4").split(",").map(Number);
const main = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "cli", "main.js");

useCliKernels(); // the workers are gcx processes: plan the trials for their kernels
const why = pgUnavailable();
if (why) throw new Error(why);
const plans = expandTrials(families("quick").find((f) => f.id === family)!).slice(0, count);
const cluster = await PgCluster.start();
try {
  process.stdout.write(
    `family ${family} (quick profile), first ${plans.length} trials; load average at start ${loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")}\n`,
  );
  process.stdout.write("workers  wall_s  trial_s_sum  trial_s_mean  queue_ms_per_trial  load1_end\n");
  for (const n of counts) {
    const url = await cluster.createDb(`bench_${n}`);
    const store = await PostgresStore.open(url);
    const q = await TrialQueue.open(store, { leaseSeconds: 3600 });
    await q.enqueue(plans);
    await q.close();
    const runsDir = mkdtempSync(join(tmpdir(), "gcx-bench-"));
    const t0 = performance.now();
    const logs = await Promise.all(
      Array.from({ length: n }, () => {
        const child = spawn(
          process.execPath,
          [main, "worker", "--store", url, "--until-done", "--concurrency", "1", "--poll", "1", "--runs-dir", runsDir],
          { stdio: ["ignore", "ignore", "pipe"] },
        );
        let out = "";
        child.stderr.setEncoding("utf8").on("data", (d: string) => (out += d));
        return new Promise<string>((res, rej) =>
          child.on("close", (code) => (code === 0 ? res(out) : rej(new Error(out)))),
        );
      }),
    );
    const wall = (performance.now() - t0) / 1000;
    const queueMs = [...logs.join("\n").matchAll(/\(queue (\d+) ms\)/g)].map((m) => Number(m[1]));
    const rows = await store.list({ status: "done" });
    const secs = rows.map((r) => r.seconds ?? 0);
    const sum = secs.reduce((a, b) => a + b, 0);
    await store.close();
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    process.stdout.write(
      `${String(n).padEnd(8)} ${wall.toFixed(1).padStart(6)}  ${sum.toFixed(1).padStart(11)}  ${(sum / Math.max(1, rows.length)).toFixed(2).padStart(12)}  ${mean(queueMs).toFixed(1).padStart(18)}  ${loadavg()[0].toFixed(2)}\n`,
    );
  }
} finally {
  cluster.destroy();
}
