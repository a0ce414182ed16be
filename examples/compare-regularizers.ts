/**
 * Compare two regularizers at the same seed, data and budget: weight decay (L2, theorem T1) against the explicit
 * GC penalty, beside a plain run, and print the final GC of each.
 *
 *   node dist/examples/compare-regularizers.js --steps 800 --l2 0.001 --gc 0.01 --out runs/compare
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parseTrainConfig, train } from "geometric-complexity";

const { values } = parseArgs({
  options: {
    steps: { type: "string", default: "800" },
    l2: { type: "string", default: "0.001" },
    gc: { type: "string", default: "0.01" },
    out: { type: "string" },
  },
});
const steps = Number(values.steps);
const root = values.out ?? mkdtempSync(join(tmpdir(), "gcx-example-"));

const base = {
  data: "moons",
  model: "mlp:2-32-32-2",
  steps,
  lr: 0.1,
  batchSize: 32,
  seed: 0,
  logEvery: steps,
  checkpointEvery: steps,
  measures: [],
};
const variants = {
  none: {},
  l2: { l2: Number(values.l2) },
  gc: { gc: Number(values.gc) },
};
console.log("regularizer  final gc_train  final gc_test  test_acc");
for (const [name, extra] of Object.entries(variants)) {
  // Same seed: same initialization, same batches; only the penalty differs.
  const { final } = train(parseTrainConfig({ ...base, ...extra }), join(root, name));
  const f = (k: string) => (typeof final[k] === "number" ? final[k].toPrecision(5) : "-");
  console.log(`${name}  ${f("gc_train")}  ${f("gc_test")}  ${f("test_acc")}`);
}
console.log(`runs in ${root}`);
