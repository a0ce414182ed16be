/**
 * Estimated cost of a reproduction profile in trial-hours (one trial on one core): for every group of trials that
 * cost the same per step (family, model, batch size), time `--steps` training steps and the step-0 evaluation of
 * one of them, then cost = Σ trials × (total steps × seconds per step + evaluations × seconds per evaluation).
 * Init-only families are timed whole. Usage: node dist/bench/profileCost.js [--profile full] [--steps 20]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { families, type Profile } from "../src/experiments/families.js";
import { runTrial } from "../src/experiments/runTrial.js";
import { expandTrials, type TrialPlan } from "../src/experiments/trials.js";
import { parseTrainConfig, totalSteps } from "../src/training/config.js";
import { setupRun, train } from "../src/training/trainer.js";

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const profile = arg("profile", "full") as Profile;
const probe = Number(arg("steps", "20"));

process.stdout.write(
  `profile ${profile}; ${probe} probe steps per group; load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(" ")}\n`,
);
process.stdout.write("family  trials  steps/trial(mean)  s/step  s/eval  trial-hours\n");
let totalHours = 0,
  totalTrials = 0;
for (const fam of families(profile)) {
  const plans = expandTrials(fam);
  let seconds = 0,
    stepsSum = 0;
  const groups = new Map<string, TrialPlan[]>();
  for (const p of plans) {
    const key =
      fam.kind === "init"
        ? "init"
        : `${JSON.stringify(p.config.model)}|${p.config.batchSize}|${p.knob === "gc" || p.knob === "flatness" ? p.knobValue > 0 : ""}`;
    groups.set(key, [...(groups.get(key) ?? []), p]);
  }
  let sps = 0,
    spe = 0;
  for (const [key, members] of groups) {
    const p = members[members.length - 1];
    const dir = mkdtempSync(join(tmpdir(), "gcx-cost-"));
    try {
      if (key === "init") {
        const t0 = performance.now();
        runTrial(p, join(dir, "run"));
        seconds += members.length * ((performance.now() - t0) / 1000);
        continue;
      }
      const cfg = parseTrainConfig(p.config);
      const t0 = performance.now();
      const r = train({ ...cfg, logEvery: 1_000_000, checkpointEvery: 1_000_000 }, join(dir, "run"), {
        stopAfter: probe,
      });
      const wall = (performance.now() - t0) / 1000;
      sps = r.secondsPerStep;
      spe = Math.max(0, wall - probe * sps); // set-up plus the step-0 evaluation
      for (const m of members) {
        const mc = parseTrainConfig(m.config);
        const steps = totalSteps(mc, setupRun({ ...mc, steps: 1 }).train.n);
        stepsSum += steps;
        seconds += steps * sps + (Math.floor(steps / mc.logEvery) + 1) * spe;
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const hours = seconds / 3600;
  totalHours += hours;
  totalTrials += plans.length;
  process.stdout.write(
    `${fam.id.padEnd(6)}  ${String(plans.length).padStart(6)}  ${(stepsSum / plans.length || 0).toFixed(0).padStart(17)}  ${sps.toFixed(4).padStart(6)}  ${spe.toFixed(2).padStart(6)}  ${hours.toFixed(2).padStart(11)}\n`,
  );
}
process.stdout.write(`total   ${String(totalTrials).padStart(6)}  trial-hours ${totalHours.toFixed(1)}\n`);
