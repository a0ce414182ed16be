/**
 * Train with the explicit GC penalty (α·GC of each batch) and read the run's metrics.jsonl.
 *
 *   node dist/examples/train-with-gc-penalty.js --steps 600 --gc 0.01 --out runs/moons-gc
 *
 * The run directory is the one `gcx train` writes (config.json, metrics.jsonl, checkpoints/, model/), so
 * `gcx measure --model runs/moons-gc/model` and `gcx train --resume runs/moons-gc` work on it too.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parseTrainConfig, readMetrics, train } from "geometric-complexity";

const { values } = parseArgs({
  options: {
    steps: { type: "string", default: "600" },
    gc: { type: "string", default: "0.01" },
    out: { type: "string" },
  },
});
const steps = Number(values.steps);
const out = values.out ?? join(mkdtempSync(join(tmpdir(), "gcx-example-")), "run");

// The keys are those of `gcx train --config`; parseTrainConfig fills in the defaults and rejects unknown keys.
const config = parseTrainConfig({
  data: "moons",
  model: "mlp:2-32-32-2",
  steps,
  lr: 0.1,
  batchSize: 32,
  gc: Number(values.gc),
  logEvery: Math.max(1, Math.floor(steps / 5)),
  checkpointEvery: steps,
  evalSize: 500,
  gcSize: 200,
  measures: ["norms"],
});
const result = train(config, out);
console.log(`trained ${result.steps} steps into ${result.runDir}`);

// One JSON object per logged step; readMetrics drops a torn last line and names any other damage.
const { records } = readMetrics(join(out, "metrics.jsonl"));
console.log("step  train_loss  test_acc  gc_train  gc_test  T1 bound");
for (const r of records) {
  const f = (k: string) => (typeof r[k] === "number" ? r[k].toPrecision(4) : "-");
  console.log(
    `${r.step}  ${f("train_loss")}  ${f("test_acc")}  ${f("gc_train")}  ${f("gc_test")}  ${f("prod_frobenius_sq")}`,
  );
}
