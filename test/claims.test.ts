import { test } from "node:test";
import assert from "node:assert/strict";
import { flatVerdict, monotoneVerdict, peakVerdict, spearman, type Point } from "../src/experiments/claims.js";
import { expandTrials, setupsOf } from "../src/experiments/trials.js";
import { families } from "../src/experiments/families.js";
import { Rng } from "../src/util/rng.js";

test("spearman: ±1 for monotone data, average ranks for ties, 0 for constant", () => {
  assert.equal(spearman([1, 2, 3, 4], [10, 20, 25, 100]), 1);
  assert.equal(spearman([1, 2, 3, 4], [5, 4, 3, 1]), -1);
  assert.equal(spearman([1, 2, 3], [7, 7, 7]), 0);
  // Hand-computed: x ranks 1,2,3,4; y = [1, 3, 2, 4] → ρ = 1 − 6·Σd²/(n(n²−1)) = 1 − 6·2/60 = 0.8
  assert.ok(Math.abs(spearman([1, 2, 3, 4], [1, 3, 2, 4]) - 0.8) < 1e-12);
});

function synthetic(slope: number, noise: number): Point[] {
  const rng = new Rng(3);
  const pts: Point[] = [];
  for (const knob of [0, 1, 2, 3]) for (const seed of [0, 1, 2]) pts.push({ knob, seed, value: 10 + slope * knob + noise * rng.normal() });
  return pts;
}

test("verdicts follow the data: clear decrease agrees with 'decreasing', disagrees with 'increasing', noise is inconclusive", () => {
  assert.equal(monotoneVerdict(synthetic(-2, 0.3), "decreasing").verdict, "agrees");
  assert.equal(monotoneVerdict(synthetic(-2, 0.3), "increasing").verdict, "disagrees");
  assert.equal(monotoneVerdict(synthetic(2, 0.3), "increasing").verdict, "agrees");
  assert.equal(monotoneVerdict(synthetic(0, 5), "decreasing").verdict, "inconclusive");
  const r = monotoneVerdict(synthetic(-2, 0.3), "decreasing");
  assert.ok(r.ciLow <= r.ciHigh && r.rho < -0.8);
});

test("flat and peak verdicts", () => {
  const flat: Point[] = [], halving: Point[] = [];
  const rng = new Rng(1);
  for (const knob of [1, 2, 3, 4]) for (const seed of [0, 1, 2]) {
    flat.push({ knob, seed, value: 5 * (1 + 0.05 * rng.normal()) });
    halving.push({ knob, seed, value: 5 * 0.5 ** knob * (1 + 0.05 * rng.normal()) });
  }
  assert.equal(flatVerdict(flat).verdict, "agrees");
  assert.equal(flatVerdict(halving).verdict, "disagrees");
  const curve = (peakAt: number): Point[] => [1, 2, 3, 4, 5, 6].flatMap((knob) => [0, 1].map((seed) => ({ knob, seed, value: -((knob - peakAt) ** 2) + seed * 0.01 })));
  assert.equal(peakVerdict(curve(3), curve(3)).verdict, "agrees");
  assert.equal(peakVerdict(curve(2), curve(5)).verdict, "disagrees");
  assert.equal(peakVerdict(curve(3), curve(6)).verdict, "inconclusive");
});

test("trial expansion: one trial per (setup, variant, value, seed), stable ids, equal h·steps in E5, equal epochs in E6, ≥ 20 logged points", () => {
  for (const profile of ["quick", "conv", "full"] as const)
    for (const fam of families(profile)) {
      const plans = expandTrials(fam);
      assert.equal(plans.length, setupsOf(fam).length * (fam.variants?.length ?? 1) * fam.knob.values.length * fam.seeds.length);
      assert.equal(new Set(plans.map((p) => p.id)).size, plans.length, `${profile} ${fam.id} ids unique`);
    }
  for (const fam of families("quick")) {
    const plans = expandTrials(fam);
    if (fam.kind !== "init") {
      assert.deepEqual([...new Set(plans.map((p) => p.setup))].sort(), ["fashion-mnist/mlp", "mnist/mlp"].filter((s) => fam.id !== "B" || s === "mnist/mlp"), `${fam.id} setups`);
      for (const p of plans) {
        const total = p.config.steps ?? Math.round(p.config.epochs! * Math.ceil((p.config.limit ?? 60000) / p.config.batchSize!));
        assert.ok(total / p.config.logEvery! >= 19.5, `${fam.id}: ${total} steps, logEvery ${p.config.logEvery}`);
      }
    }
    assert.equal(new Set(plans.map((p) => p.id)).size, plans.length, `${fam.id} ids unique`);
    assert.deepEqual(expandTrials(fam).map((p) => p.id), plans.map((p) => p.id));
  }
  const e5 = expandTrials(families("quick").find((f) => f.id === "E5")!);
  const times = e5.map((p) => p.config.lr! * p.config.steps!);
  assert.ok(Math.max(...times) / Math.min(...times) < 1.1, `h·steps ${times}`);
  const e6 = expandTrials(families("quick").find((f) => f.id === "E6")!);
  assert.ok(e6.every((p) => p.config.steps === undefined && p.config.epochs === e6[0].config.epochs), "E6 compares batch sizes at equal epochs");
  const conv = families("conv");
  assert.deepEqual(conv.map((f) => f.id), ["E2", "E5", "E7", "E9"]);
  assert.ok(conv.every((f) => expandTrials(f).every((p) => p.setup === "fashion-mnist/cnn")));
});
