/** `gcx train`: train a model with any combination of the paper's regularizers, logging GC and its bounds. */
import { Command, Option } from "commander";
import { join } from "node:path";
import YAML from "yaml";
import { DATASET_NAMES } from "../../data/registry.js";
import { INIT_DISTRIBUTIONS, INIT_SCHEMES } from "../../models/init.js";
import { MEASURE_NAMES, parseTrainConfig, type TrainConfig } from "../../training/config.js";
import { train, trainAsync, type ResumeOptions, type TrainHooks, type TrainResult } from "../../training/trainer.js";
import { onDevice } from "../../measures/readback.js";
import type { MetricsRecord } from "../../training/evaluate.js";
import { UserError } from "../../util/errors.js";
import { pathKind, readTextBounded } from "../../util/files.js";
import { finiteNumber, nonNegativeInt, nonNegativeNumber, positiveInt } from "../parse.js";
import { progressBar } from "../progress.js";
import { BUDGET_HELP } from "../../models/budget.js";

/** Flag name → config key; the config's own defaults apply to flags not given. */
const FLAG_KEYS: [string, string, string, ((v: string) => unknown)?][] = [
  [
    "--model <dir|spec>",
    "model",
    "start from a model directory or a spec (mlp:784-256-10[:act], cnn); default He MLP hidden 256-256",
  ],
  ["--data <name>", "data", `data set: ${DATASET_NAMES.join(", ")} (mnist)`],
  ["--limit <n>", "limit", "use only the first n training examples", positiveInt],
  ["--size <n>", "size", "synthetic data: examples per split (1000)", positiveInt],
  ["--noise <x>", "noise", "synthetic data: noise level", nonNegativeNumber],
  ["--classes <n>", "classes", "spirals, blobs: number of classes (3)", positiveInt],
  [
    "--label-corruption <p>",
    "labelCorruption",
    "fraction of training labels replaced once by random classes (0)",
    nonNegativeNumber,
  ],
  ["--init-scale <x>", "initScale", "multiplier on the initial weight std (1)", nonNegativeNumber],
  ["--bias <x>", "bias", "initial bias value (0)", finiteNumber],
  ["--lr <x>", "lr", "learning rate (0.05)", nonNegativeNumber],
  ["--momentum <x>", "momentum", "SGD momentum (0)", nonNegativeNumber],
  ["--batch-size <n>", "batchSize", "batch size (128)", positiveInt],
  ["--steps <n>", "steps", "optimizer steps (default: from --epochs, else 1000)", positiveInt],
  ["--epochs <x>", "epochs", "epochs, when --steps is not given", nonNegativeNumber],
  ["--seed <n>", "seed", "seed for data, init, batches and noise (0)", nonNegativeInt],
  ["--log-every <n>", "logEvery", "steps between metric logs (100)", positiveInt],
  ["--checkpoint-every <n>", "checkpointEvery", "steps between checkpoints (500)", positiveInt],
  ["--eval-size <n>", "evalSize", "examples per split for loss/accuracy logs (1000)", positiveInt],
  ["--gc-size <n>", "gcSize", "examples per split for GC and companion measures (256)", positiveInt],
  ["--l2 <lambda>", "l2", "penalty λ·Σ‖W‖_F² (weight decay) (0)", nonNegativeNumber],
  [
    "--spectral <lambda>",
    "spectral",
    "penalty λ·Σ‖W‖_op², power iteration persisting across steps (0)",
    nonNegativeNumber,
  ],
  [
    "--flatness <lambda>",
    "flatness",
    "penalty λ·‖∇_θ L‖² (explicit implicit-gradient regularization) (0)",
    nonNegativeNumber,
  ],
  ["--gc <alpha>", "gc", "penalty α·GC of the batch (double backprop) (0)", nonNegativeNumber],
  [
    "--gc-probes <n>",
    "gcProbes",
    "estimate the gc penalty with n random probes instead of exactly (0 = exact)",
    nonNegativeInt,
  ],
  ["--input-noise <sigma>", "inputNoise", "Gaussian noise of std σ added to inputs each step (0)", nonNegativeNumber],
  [
    "--label-noise <p>",
    "labelNoise",
    "each step, labels replaced by random classes with probability p (0)",
    nonNegativeNumber,
  ],
];

export function trainCommand(): Command {
  const cmd = new Command("train")
    .description(
      "Train a model with any combination of regularizers; logs loss, accuracy, GC and its bounds to RUN_DIR/metrics.jsonl,\n" +
        "checkpoints to RUN_DIR/checkpoints (resumable), and the final model to RUN_DIR/model.\n" +
        "Safety: --out must be a new or empty directory; a run directory is locked while a gcx process trains in it;\n" +
        "--resume checks the config and data against the checkpoint's fingerprint and refuses a changed run; a failed\n" +
        "write (full disk, file-size limit, permissions) stops with one line naming the file and leaves the run resumable.",
    )
    .option(
      "--config <file>",
      "JSON or YAML file with config keys (camelCase flag names, e.g. batchSize, l2); flags override it",
    )
    .option("--out <dir>", "run directory; must not exist or be empty (default runs/<data>-<time>)")
    .option(
      "--resume <dir>",
      "continue the run in this directory from its last checkpoint; only --steps/--epochs may be added, to extend it",
    );
  for (const [flag, , help, parse] of FLAG_KEYS) {
    if (parse) cmd.option(flag, help, parse);
    else cmd.option(flag, help);
  }
  cmd
    .addOption(new Option("--init <scheme>", "initialization scheme (he)").choices(INIT_SCHEMES))
    .addOption(new Option("--init-dist <dist>", "initialization distribution (normal)").choices(INIT_DISTRIBUTIONS))
    .addOption(new Option("--optimizer <name>", "optimizer (sgd)").choices(["sgd", "adam"]))
    .option(
      "--measures <list>",
      `comma-separated measures logged besides loss and GC: ${MEASURE_NAMES.join(", ")} (norms,output-grad,loss-grad)`,
    )
    .option("--no-progress", "hide the progress bar")
    .addHelpText("after", BUDGET_HELP)
    .action((flags: Record<string, unknown>) => runTrain(flags));
  return cmd;
}

/** A config file is a small JSON or YAML mapping; 1 MiB is far beyond any real one (and stops /dev/zero). */
const MAX_CONFIG_BYTES = 1 << 20;

function readConfigFile(file: string): Record<string, unknown> {
  if (pathKind(file) === "missing") throw new UserError(`--config ${file}: no such file`);
  const text = readTextBounded(file, MAX_CONFIG_BYTES, "config file");
  let v: unknown;
  try {
    v = /\.ya?ml$/i.test(file) ? YAML.parse(text) : JSON.parse(text);
  } catch (e) {
    throw new UserError(`--config ${file}: cannot parse (${(e as Error).message.split("\n")[0]})`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new UserError(`--config ${file}: not a mapping of config keys`);
  return v as Record<string, unknown>;
}

/** Flags that may accompany --resume: the run's config is fixed, except that it may be extended on purpose. */
const RESUME_FLAGS = new Set(["resume", "steps", "epochs", "progress"]);

function flagName(key: string): string {
  return "--" + key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}

/** Where `gcx train` writes: stdout for its result, stderr for log lines (tests pass their own). */
export interface TrainIO {
  out(text: string): void;
  err(text: string): void;
}

const STDIO: TrainIO = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
};

/**
 * Trains (or resumes) as the run directory and config say: synchronously on a CPU backend, as it always has, and with
 * {@link trainAsync} (every read point awaited) on a device backend (`--backend webgpu`).
 */
function trainOn(
  cfg: TrainConfig | null,
  runDir: string,
  hooks: TrainHooks,
  ext: ResumeOptions = {},
): TrainResult | Promise<TrainResult> {
  return onDevice() ? trainAsync(cfg, runDir, hooks, ext) : train(cfg, runDir, hooks, ext);
}

/** The work of `gcx train`, in-process: flags as commander parses them (camelCase keys). */
export async function runTrain(flags: Record<string, unknown>, io: TrainIO = STDIO): Promise<void> {
  const bar = progressBar("training", flags.progress !== false && process.stderr.isTTY === true);
  const onLog = (r: MetricsRecord) => {
    if (process.stderr.isTTY && flags.progress !== false) return; // the bar shows progress; keep the terminal tidy
    const f = (k: string) => (typeof r[k] === "number" ? r[k].toPrecision(4) : "-");
    io.err(
      `step ${r.step}: train_loss ${f("train_loss")} test_acc ${f("test_acc")} gc_train ${f("gc_train")} gc_test ${f("gc_test")}\n`,
    );
  };
  let result: TrainResult;
  try {
    if (flags.resume !== undefined) {
      const extra = Object.keys(flags).filter((k) => flags[k] !== undefined && !RESUME_FLAGS.has(k));
      if (extra.length > 0) {
        throw new UserError(
          `--resume continues a run with its own config (${join(flags.resume as string, "config.json")}); ${extra.map(flagName).join(", ")} cannot be combined with it (only --steps or --epochs, to extend the run)`,
        );
      }
      const ext = { steps: flags.steps as number | undefined, epochs: flags.epochs as number | undefined };
      if (ext.steps !== undefined && ext.epochs !== undefined)
        throw new UserError("give --steps or --epochs, not both");
      result = await trainOn(null, flags.resume as string, { onStep: bar.update, onLog }, ext);
    } else {
      const raw: Record<string, unknown> = flags.config ? readConfigFile(flags.config as string) : {};
      for (const [, key] of FLAG_KEYS) if (flags[key] !== undefined) raw[key] = flags[key];
      for (const key of ["init", "initDist", "optimizer"]) if (flags[key] !== undefined) raw[key] = flags[key];
      if (typeof flags.measures === "string")
        raw.measures = flags.measures
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean);
      const cfg = parseTrainConfig(raw, flags.config ? (flags.config as string) : "flags");
      const out =
        (flags.out as string | undefined) ??
        join("runs", `${cfg.data}-${new Date().toISOString().replace(/[:.]/g, "-")}`);
      result = await trainOn(cfg, out, { onStep: bar.update, onLog });
    }
  } finally {
    bar.stop();
  }
  const f = result.final;
  if (result.alreadyComplete) {
    io.out(
      `run ${result.runDir} is already complete (${result.steps} steps); nothing to do (extend it with --resume ${result.runDir} --steps N)\n` +
        `model: ${join(result.runDir, "model")}  metrics: ${join(result.runDir, "metrics.jsonl")}\n`,
    );
    return;
  }
  io.out(
    `run: ${result.runDir} (${result.steps} steps, ${(result.secondsPerStep * 1000).toFixed(1)} ms/step)\n` +
      `final: train_loss ${f.train_loss} test_loss ${f.test_loss} test_acc ${f.test_acc} gc_train ${f.gc_train} gc_test ${f.gc_test}\n` +
      `model: ${join(result.runDir, "model")}  metrics: ${join(result.runDir, "metrics.jsonl")}\n`,
  );
}
