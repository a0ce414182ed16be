import { test } from "node:test";
import assert from "node:assert/strict";
import {
  bandVerdict,
  commonLossLevel,
  effectRatio,
  monotoneVerdict,
  peakVerdict,
  perLayerFactor,
  spearman,
  summaryVerdict,
  valueAtLoss,
  type Point,
} from "../src/experiments/claims.js";
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
  for (const knob of [0, 1, 2, 3])
    for (const seed of [0, 1, 2]) pts.push({ knob, seed, value: 10 + slope * knob + noise * rng.normal() });
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
  const flat: Point[] = [],
    halving: Point[] = [];
  const rng = new Rng(1);
  for (const knob of [1, 2, 3, 4])
    for (const seed of [0, 1, 2]) {
      flat.push({ knob, seed, value: 5 * (1 + 0.05 * rng.normal()) });
      halving.push({ knob, seed, value: 5 * 0.5 ** knob * (1 + 0.05 * rng.normal()) });
    }
  assert.equal(bandVerdict(perLayerFactor(flat), [0.9, 1.1]), "agrees");
  assert.equal(bandVerdict(perLayerFactor(halving), [0.9, 1.1]), "disagrees");
  const curve = (peakAt: number): Point[] =>
    [1, 2, 3, 4, 5, 6].flatMap((knob) =>
      [0, 1].map((seed) => ({ knob, seed, value: -((knob - peakAt) ** 2) + seed * 0.01 })),
    );
  assert.equal(peakVerdict(curve(3), curve(3)).verdict, "agrees");
  assert.equal(peakVerdict(curve(2), curve(5)).verdict, "disagrees");
  assert.equal(peakVerdict(curve(3), curve(6)).verdict, "inconclusive");
});

test("trial expansion: one trial per (setup, variant, value, seed), stable ids, equal h·steps in E5, equal epochs in E6, ≥ 20 logged points", () => {
  for (const profile of ["quick", "conv", "full"] as const)
    for (const fam of families(profile)) {
      const plans = expandTrials(fam);
      assert.equal(
        plans.length,
        setupsOf(fam).length * (fam.variants?.length ?? 1) * fam.knob.values.length * fam.seeds.length,
      );
      assert.equal(new Set(plans.map((p) => p.id)).size, plans.length, `${profile} ${fam.id} ids unique`);
    }
  for (const fam of families("quick")) {
    const plans = expandTrials(fam);
    if (fam.kind !== "init") {
      assert.deepEqual(
        [...new Set(plans.map((p) => p.setup))].sort(),
        ["fashion-mnist/mlp", "mnist/mlp"].filter((s) => fam.id !== "B" || s === "mnist/mlp"),
        `${fam.id} setups`,
      );
      for (const p of plans) {
        const total =
          p.config.steps ?? Math.round(p.config.epochs! * Math.ceil((p.config.limit ?? 60000) / p.config.batchSize!));
        assert.ok(total / p.config.logEvery! >= 19.5, `${fam.id}: ${total} steps, logEvery ${p.config.logEvery}`);
      }
    }
    assert.equal(new Set(plans.map((p) => p.id)).size, plans.length, `${fam.id} ids unique`);
    assert.deepEqual(
      expandTrials(fam).map((p) => p.id),
      plans.map((p) => p.id),
    );
  }
  const e5 = expandTrials(families("quick").find((f) => f.id === "E5")!);
  const times = e5.map((p) => p.config.lr! * p.config.steps!);
  assert.ok(Math.max(...times) / Math.min(...times) < 1.1, `h·steps ${times}`);
  const e6 = expandTrials(families("quick").find((f) => f.id === "E6")!);
  assert.ok(
    e6.every((p) => p.config.steps === undefined && p.config.epochs === e6[0].config.epochs),
    "E6 compares batch sizes at equal epochs",
  );
  const conv = families("conv");
  assert.deepEqual(
    conv.map((f) => f.id),
    ["E2", "E5", "E7", "E9"],
  );
  assert.ok(conv.every((f) => expandTrials(f).every((p) => p.setup === "fashion-mnist/cnn")));
});

test("per-layer factor: exp of the log-GC slope; halving gives 0.5 with a CI around it, and the He band can fail", () => {
  const halving: Point[] = [],
    flat: Point[] = [],
    drifting: Point[] = [];
  const rng = new Rng(5);
  for (const knob of [1, 2, 3, 4, 5, 6])
    for (const seed of [0, 1, 2, 3, 4, 5]) {
      halving.push({ knob, seed, value: 8 * 0.5 ** knob * Math.exp(0.05 * rng.normal()) });
      flat.push({ knob, seed, value: 3 * Math.exp(0.05 * rng.normal()) });
      drifting.push({ knob, seed, value: 3 * 0.8 ** knob * Math.exp(0.05 * rng.normal()) });
    }
  const h = perLayerFactor(halving);
  assert.ok(
    Math.abs(h.value - 0.5) < 0.02 && h.ciLow <= 0.5 && 0.5 <= h.ciHigh,
    `factor ${h.value} [${h.ciLow}, ${h.ciHigh}]`,
  );
  assert.equal(bandVerdict(h, [0.4, 0.6]), "agrees");
  assert.equal(bandVerdict(h, [0.9, 1.1]), "disagrees");
  assert.equal(bandVerdict(perLayerFactor(flat), [0.9, 1.1]), "agrees");
  assert.equal(bandVerdict(perLayerFactor(drifting), [0.9, 1.1]), "disagrees", "a factor of 0.8 per layer is not flat");
  // The median of a skewed sample differs from its mean: exp(N(0, σ²)) has mean e^{σ²/2} and median 1.
  const skew: Point[] = [];
  for (const knob of [1, 2, 3])
    for (let seed = 0; seed < 400; seed++) skew.push({ knob, seed, value: Math.exp(Math.sqrt(knob) * rng.normal()) });
  const mean = perLayerFactor(skew, "mean", 200),
    median = perLayerFactor(skew, "median", 200);
  assert.ok(mean.value > 1.2 && Math.abs(median.value - 1) < 0.15, `mean ${mean.value}, median ${median.value}`);
});

test("effect ratio: mean(strongest)/mean(baseline) with a bootstrap interval", () => {
  const pts: Point[] = [0, 1, 2].flatMap((seed) => [
    { knob: 0, seed, value: 10 + seed },
    { knob: 1, seed, value: 7 },
    { knob: 2, seed, value: 2 + seed },
  ]);
  const e = effectRatio(pts, 0, 2);
  assert.ok(Math.abs(e.value - 3 / 11) < 1e-12);
  assert.ok(e.ciLow <= e.value && e.value <= e.ciHigh && e.ciLow >= 2 / 12 - 1e-12 && e.ciHigh <= 4 / 10 + 1e-12);
  assert.ok(Number.isNaN(effectRatio(pts, 0, 5).value), "a knob without points has no ratio");
});

test("matched progress: the loosest loss every run reaches, GC interpolated where each run first reaches it", () => {
  const fast = [
    { step: 0, loss: 2, value: 1 },
    { step: 10, loss: 0.5, value: 5 },
    { step: 20, loss: 0.1, value: 9 },
  ];
  const slow = [
    { step: 0, loss: 2, value: 1 },
    { step: 10, loss: 1, value: 2 },
    { step: 20, loss: 0.4, value: 3 },
  ];
  const level = commonLossLevel([fast, slow]);
  assert.equal(level, 0.4);
  // fast crosses 0.4 between loss 0.5 (GC 5) and 0.1 (GC 9): a quarter of the way → GC 6.
  assert.ok(Math.abs(valueAtLoss(fast, level)! - 6) < 1e-12);
  assert.equal(valueAtLoss(slow, level), 3);
  assert.equal(valueAtLoss(slow, 0.2), null, "a run that never reaches the level");
  // First crossing, even when the loss rises again later.
  assert.equal(
    valueAtLoss(
      [
        { step: 0, loss: 1, value: 0 },
        { step: 1, loss: 0.3, value: 4 },
        { step: 2, loss: 0.9, value: 8 },
      ],
      0.5,
    ),
    4 * (0.5 / 0.7),
  );
});

test("summary verdict: agrees only if all agree, disagrees only if all disagree, else mixed", () => {
  assert.equal(summaryVerdict(["agrees", "agrees"]), "agrees");
  assert.equal(summaryVerdict(["disagrees", "disagrees"]), "disagrees");
  assert.equal(summaryVerdict(["agrees", "inconclusive"]), "mixed");
  assert.equal(summaryVerdict(["agrees", "disagrees"]), "mixed");
  assert.equal(summaryVerdict([]), "inconclusive");
});
