/** Expands a family into concrete, seeded trials: one training config per (variant, knob value, seed). */
import { trialId, type TrialSpec } from "../store/runStore.js";
import type { TrainConfig } from "../training/config.js";
import type { FamilyDef } from "./families.js";
import { engineInfo, type EngineInfo } from "../engine/backend.js";

/** A trial as the store keeps it (TrialSpec), with its typed training config and the variant it belongs to. */
export interface TrialPlan extends Omit<TrialSpec, "config"> {
  variant: string;
  /** Backend and kernel variant of the process that planned it: part of the trial's key, checked by whoever runs it. */
  engine: EngineInfo;
  kind: FamilyDef["kind"];
  config: Partial<TrainConfig>;
}

/** The config of one grid point; pseudo-knobs (depth, width) and the learning-rate time matching are resolved here. */
function configFor(fam: FamilyDef, value: number, variant: Partial<TrainConfig>, seed: number): Partial<TrainConfig> {
  const cfg: Partial<TrainConfig> & Record<string, unknown> = { ...fam.base, ...variant, seed };
  const model = typeof cfg.model === "string" ? cfg.model : "";
  if (fam.knob.key === "depth") {
    const width = Number(model.split(":")[1]);
    cfg.model = `mlp:${[784, ...Array<number>(value).fill(width), 10].join("-")}`;
  } else if (fam.knob.key === "width") {
    cfg.model = `mlp:784-${value}-10`;
  } else {
    cfg[fam.knob.key] = value;
  }
  if (fam.knob.key === "lr" && cfg.steps && fam.base.lr) {
    // Equal gradient-flow time h·steps for every learning rate (see E5's description).
    const steps = Math.max(20, Math.round((cfg.steps * fam.base.lr) / value));
    cfg.steps = steps;
    cfg.logEvery = Math.max(1, Math.round(steps / 4));
    cfg.checkpointEvery = cfg.logEvery;
  }
  return cfg;
}

export function expandTrials(fam: FamilyDef): TrialPlan[] {
  const variants = fam.variants ?? [{ name: "", config: {} }];
  const out: TrialPlan[] = [];
  const engine = engineInfo();
  for (const v of variants)
    for (const value of fam.knob.values)
      for (const seed of fam.seeds) {
        const config = configFor(fam, value, v.config, seed);
        out.push({
          // Results differ between kernel variants in the last bits, so the engine is part of the key: a store never
          // mixes trials computed by different kernels into one table.
          id: trialId(fam.id, fam.version, { ...config, engine }, seed),
          family: fam.id,
          version: fam.version,
          knob: fam.knob.key,
          knobValue: value,
          seed,
          variant: v.name,
          kind: fam.kind,
          engine,
          config,
        });
      }
  return out;
}

/** The store's record of a plan: its config carries the variant and kind that the report and the runner need. */
export function specOf(p: TrialPlan): TrialSpec {
  return { id: p.id, family: p.family, version: p.version, knob: p.knob, knobValue: p.knobValue, seed: p.seed, config: { ...p.config, variant: p.variant, kind: p.kind, engine: p.engine } };
}
