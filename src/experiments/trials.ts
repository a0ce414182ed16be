/** Expands a family into concrete, seeded trials: one training config per (setup, variant, knob value, seed). */
import { trialId, type TrialSpec } from "../store/runStore.js";
import { stepsPerEpoch, type TrainConfig } from "../training/config.js";
import type { FamilyDef, Setup } from "./families.js";
import { engineInfo, type EngineInfo } from "../engine/backend.js";

/** A trial as the store keeps it (TrialSpec), with its typed training config, its setup and its variant. */
export interface TrialPlan extends Omit<TrialSpec, "config"> {
  variant: string;
  /** Backend and kernel variant of the process that planned it: part of the trial's key, checked by whoever runs it. */
  engine: EngineInfo;
  kind: FamilyDef["kind"];
  /** "dataset/model", e.g. "fashion-mnist/mlp". */
  setup: string;
  config: Partial<TrainConfig>;
}

/** The family's (dataset, model) pairs: its own list, or one pair read from its base config. */
export function setupsOf(fam: FamilyDef): Setup[] {
  if (fam.setups?.length) return fam.setups;
  const data = typeof fam.base.data === "string" ? fam.base.data : "mnist";
  const model = typeof fam.base.model === "string" && fam.base.model.startsWith("cnn") ? "cnn" : "mlp";
  return [{ dataset: data, model, config: {}, accFloor: 0 }];
}

export const setupName = (s: Setup): string => `${s.dataset}/${s.model}`;

/** Training-set size a config trains on (its limit, else the full MNIST-style split). */
const trainSize = (cfg: Partial<TrainConfig>) => cfg.limit ?? 60000;

/** The config of one grid point; pseudo-knobs (depth, width), time matching and the logging cadence are resolved here. */
function configFor(
  fam: FamilyDef,
  setup: Setup,
  value: number,
  variant: Partial<TrainConfig>,
  seed: number,
): Partial<TrainConfig> {
  const cfg: Partial<TrainConfig> & Record<string, unknown> = { ...fam.base, ...setup.config, ...variant, seed };
  for (const k of Object.keys(cfg)) if (cfg[k] === undefined) delete cfg[k];
  const model = typeof cfg.model === "string" ? cfg.model : "";
  if (fam.knob.key === "depth") {
    const width = Number(model.split(":")[1]);
    cfg.model = `mlp:${[784, ...Array<number>(value).fill(width), 10].join("-")}`;
  } else if (fam.knob.key === "width") {
    cfg.model = `mlp:784-${value}-10`;
  } else {
    cfg[fam.knob.key] = value;
  }
  if (fam.knob.key === "lr" && fam.base.lr) {
    // Equal gradient-flow time h·steps for every learning rate (see E5's description).
    if (cfg.steps) cfg.steps = Math.max(20, Math.round((cfg.steps * fam.base.lr) / value));
    else if (cfg.epochs) cfg.epochs = (cfg.epochs * fam.base.lr) / value;
  }
  if (fam.kind !== "init" && fam.logPoints) {
    const batch = cfg.batchSize ?? 128;
    const total = cfg.steps ?? Math.max(1, Math.round((cfg.epochs ?? 1) * stepsPerEpoch(trainSize(cfg), batch)));
    cfg.logEvery = Math.max(1, Math.floor(total / fam.logPoints));
    cfg.checkpointEvery = Math.max(cfg.logEvery, Math.round(total / 2));
  }
  return cfg;
}

/** Every trial of a family (its `logPoints` sets each trained run's logEvery). */
export function expandTrials(fam: FamilyDef): TrialPlan[] {
  const variants = fam.variants ?? [{ name: "", config: {} }];
  const out: TrialPlan[] = [];
  const engine = engineInfo();
  for (const setup of setupsOf(fam))
    for (const v of variants)
      for (const value of fam.knob.values)
        for (const seed of fam.seeds) {
          const config = configFor(fam, setup, value, v.config, seed);
          out.push({
            // Results differ between kernel variants in the last bits, so the engine is part of the key: a store
            // never mixes trials computed by different kernels into one table.
            id: trialId(fam.id, fam.version, { ...config, engine }, seed),
            family: fam.id,
            version: fam.version,
            knob: fam.knob.key,
            knobValue: value,
            seed,
            variant: v.name,
            kind: fam.kind,
            setup: setupName(setup),
            engine,
            config,
          });
        }
  return out;
}

/** The store's record of a plan: its config carries the variant and kind that the report and the runner need. */
export function specOf(p: TrialPlan): TrialSpec {
  return {
    id: p.id,
    family: p.family,
    version: p.version,
    knob: p.knob,
    knobValue: p.knobValue,
    seed: p.seed,
    config: { ...p.config, variant: p.variant, kind: p.kind, engine: p.engine },
  };
}
