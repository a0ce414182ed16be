/** Training configuration: one schema for flags, JSON and YAML files; invalid input lists every problem. */
import { z } from "zod";
import { INIT_DISTRIBUTIONS, INIT_SCHEMES } from "../models/init.js";
import { UserError } from "../util/errors.js";
import { oneLine } from "../util/files.js";
import { stepsPerEpoch } from "./schedule.js";

const nonNeg = z.number().finite().min(0);
const posInt = z.number().int().positive();

/** "hessian-trace" logs only Hutchinson's trace estimate (8 probes), without the top eigenvalue's 20 iterations. */
export const MEASURE_NAMES = ["norms", "output-grad", "loss-grad", "hessian", "hessian-trace"] as const;
/** Companion measures logged beside GC: `norms`, `output-grad`, `loss-grad`, `hessian`, `hessian-trace`. */
export type MeasureName = (typeof MEASURE_NAMES)[number];

export const trainConfigSchema = z
  .object({
    /** Model spec string (mlp:784-256-10[:act], cnn), JSON spec object, or a model directory to start from. */
    model: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
    data: z.string().default("mnist"),
    /** Training examples to use (the first N of the train split); all when absent. */
    limit: posInt.optional(),
    size: posInt.optional(),
    noise: nonNeg.optional(),
    classes: z.number().int().min(2).optional(),
    /** Fraction of training labels replaced once by random classes (double-descent style corruption). */
    labelCorruption: z.number().min(0).max(1).default(0),
    init: z.enum(INIT_SCHEMES).default("he"),
    initDist: z.enum(INIT_DISTRIBUTIONS).default("normal"),
    initScale: nonNeg.default(1),
    bias: z.number().finite().default(0),
    optimizer: z.enum(["sgd", "adam"]).default("sgd"),
    lr: z.number().finite().positive().default(0.05),
    momentum: z.number().min(0).max(0.999).default(0),
    batchSize: posInt.default(128),
    steps: posInt.optional(),
    epochs: z.number().positive().optional(),
    seed: z.number().int().min(0).default(0),
    logEvery: posInt.default(100),
    checkpointEvery: posInt.default(500),
    /** Examples of each split used for loss/accuracy at each log. */
    evalSize: posInt.default(1000),
    /** Examples of each split used for GC and the companion measures at each log. */
    gcSize: posInt.default(256),
    measures: z.array(z.enum(MEASURE_NAMES)).default(["norms", "output-grad", "loss-grad"]),
    l2: nonNeg.default(0),
    spectral: nonNeg.default(0),
    flatness: nonNeg.default(0),
    gc: nonNeg.default(0),
    gcProbes: z.number().int().min(0).default(0),
    inputNoise: nonNeg.default(0),
    labelNoise: z.number().min(0).max(1).default(0),
  })
  .strict();

/** A validated training configuration (the camelCase keys of `gcx train`'s config files); build one with {@link parseTrainConfig}. */
export type TrainConfig = z.infer<typeof trainConfigSchema>;

/** Validates a raw config object; throws one UserError whose lines name every problem. */
export function parseTrainConfig(raw: unknown, source = "config"): TrainConfig {
  const r = trainConfigSchema.safeParse(raw);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) =>
    oneLine(`${source}: ${i.path.length ? i.path.map(String).join(".") : "(root)"}: ${i.message}`),
  );
  throw new UserError(lines.join("\n"));
}

/** Total optimizer steps: explicit steps, else epochs × batches per epoch, else 1000. */
export function totalSteps(cfg: TrainConfig, trainSize: number): number {
  if (cfg.steps) return cfg.steps;
  if (cfg.epochs) return Math.max(1, Math.round(cfg.epochs * stepsPerEpoch(trainSize, cfg.batchSize)));
  return 1000;
}

export { stepsPerEpoch };
