import { test } from "node:test";
import assert from "node:assert/strict";
import { flatVerdict, monotoneVerdict, peakVerdict, spearman, type Point } from "../src/experiments/claims.js";
import { expandTrials } from "../src/experiments/trials.js";
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

test("trial expansion: one trial per (variant, value, seed), stable ids, equal h·steps in E5", () => {
  for (const fam of families("quick")) {
    const plans = expandTrials(fam);
    assert.equal(plans.length, (fam.variants?.length ?? 1) * fam.knob.values.length * fam.seeds.length);
    assert.equal(new Set(plans.map((p) => p.id)).size, plans.length, `${fam.id} ids unique`);
    assert.deepEqual(expandTrials(fam).map((p) => p.id), plans.map((p) => p.id));
  }
  const e5 = expandTrials(families("quick").find((f) => f.id === "E5")!);
  const times = e5.map((p) => p.config.lr! * p.config.steps!);
  assert.ok(Math.max(...times) / Math.min(...times) < 1.1, `h·steps ${times}`);
});
