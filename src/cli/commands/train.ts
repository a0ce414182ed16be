/** `gcx train`: train a model with any combination of the paper's regularizers, logging GC and its bounds. */
import { Command, Option } from "commander";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import YAML from "yaml";
import { DATASET_NAMES } from "../../data/registry.js";
import { INIT_DISTRIBUTIONS, INIT_SCHEMES } from "../../models/init.js";
import { MEASURE_NAMES, parseTrainConfig } from "../../training/config.js";
import { train } from "../../training/trainer.js";
import type { MetricsRecord } from "../../training/evaluate.js";
import { UserError } from "../../util/errors.js";
import { finiteNumber, nonNegativeInt, nonNegativeNumber, positiveInt } from "../parse.js";
import { progressBar } from "../progress.js";
import { BUDGET_HELP } from "../../models/budget.js";

/** Flag name → config key; the config's own defaults apply to flags not given. */
const FLAG_KEYS: [string, string, string, ((v: string) => unknown)?][] = [
  ["--model <dir|spec>", "model", "start from a model directory or a spec (mlp:784-256-10[:act], cnn); default He MLP hidden 256-256"],
  ["--data <name>", "data", `data set: ${DATASET_NAMES.join(", ")} (mnist)`],
  ["--limit <n>", "limit", "use only the first n training examples", positiveInt],
  ["--size <n>", "size", "synthetic data: examples per split (1000)", positiveInt],
  ["--noise <x>", "noise", "synthetic data: noise level", nonNegativeNumber],
  ["--classes <n>", "classes", "spirals: number of classes (3)", positiveInt],
  ["--label-corruption <p>", "labelCorruption", "fraction of training labels replaced once by random classes (0)", nonNegativeNumber],
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
  ["--spectral <lambda>", "spectral", "penalty λ·Σ‖W‖_op², power iteration persisting across steps (0)", nonNegativeNumber],
  ["--flatness <lambda>", "flatness", "penalty λ·‖∇_θ L‖² (explicit implicit-gradient regularization) (0)", nonNegativeNumber],
  ["--gc <alpha>", "gc", "penalty α·GC of the batch (double backprop) (0)", nonNegativeNumber],
  ["--gc-probes <n>", "gcProbes", "estimate the gc penalty with n random probes instead of exactly (0 = exact)", nonNegativeInt],
  ["--input-noise <sigma>", "inputNoise", "Gaussian noise of std σ added to inputs each step (0)", nonNegativeNumber],
  ["--label-noise <p>", "labelNoise", "each step, labels replaced by random classes with probability p (0)", nonNegativeNumber],
];

export function trainCommand(): Command {
  const cmd = new Command("train")
    .description(
      "Train a model with any combination of regularizers; logs loss, accuracy, GC and its bounds to RUN_DIR/metrics.jsonl,\n" +
        "checkpoints to RUN_DIR/checkpoints (resumable), and the final model to RUN_DIR/model.",
    )
    .option("--config <file>", "JSON or YAML file with config keys (camelCase flag names, e.g. batchSize, l2); flags override it")
    .option("--out <dir>", "run directory (default runs/<data>-<time>)")
    .option("--resume <dir>", "continue the run in this directory from its last checkpoint (other flags are ignored)");
  for (const [flag, , help, parse] of FLAG_KEYS) {
    if (parse) cmd.option(flag, help, parse);
    else cmd.option(flag, help);
  }
  cmd
    .addOption(new Option("--init <scheme>", "initialization scheme (he)").choices(INIT_SCHEMES))
    .addOption(new Option("--init-dist <dist>", "initialization distribution (normal)").choices(INIT_DISTRIBUTIONS))
    .addOption(new Option("--optimizer <name>", "optimizer (sgd)").choices(["sgd", "adam"]))
    .option("--measures <list>", `comma-separated measures logged besides loss and GC: ${MEASURE_NAMES.join(", ")} (norms,output-grad,loss-grad)`)
    .option("--no-progress", "hide the progress bar")
    .addHelpText("after", BUDGET_HELP)
    .action((flags: Record<string, unknown>) => runTrain(flags));
  return cmd;
}

function readConfigFile(file: string): Record<string, unknown> {
  if (!existsSync(file)) throw new UserError(`--config ${file}: no such file`);
  const text = readFileSync(file, "utf8");
  try {
    const v = /\.ya?ml$/i.test(file) ? YAML.parse(text) : JSON.parse(text);
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not a key-value mapping");
    return v as Record<string, unknown>;
  } catch (e) {
    throw new UserError(`--config ${file}: cannot parse (${(e as Error).message})`);
  }
}

function runTrain(flags: Record<string, unknown>): void {
  const bar = progressBar("training", flags.progress !== false && process.stderr.isTTY === true);
  const onLog = (r: MetricsRecord) => {
    if (process.stderr.isTTY && flags.progress !== false) return; // the bar shows progress; keep the terminal tidy
    const f = (k: string) => (typeof r[k] === "number" ? (r[k] as number).toPrecision(4) : "-");
    process.stderr.write(`step ${r.step}: train_loss ${f("train_loss")} test_acc ${f("test_acc")} gc_train ${f("gc_train")} gc_test ${f("gc_test")}\n`);
  };
  let result;
  try {
    if (flags.resume) {
      result = train(null, flags.resume as string, { onStep: bar.update, onLog });
    } else {
      const raw: Record<string, unknown> = flags.config ? readConfigFile(flags.config as string) : {};
      for (const [, key] of FLAG_KEYS) if (flags[key] !== undefined) raw[key] = flags[key];
      for (const key of ["init", "initDist", "optimizer"]) if (flags[key] !== undefined) raw[key] = flags[key];
      if (typeof flags.measures === "string") raw.measures = flags.measures.split(",").map((s) => s.trim()).filter(Boolean);
      const cfg = parseTrainConfig(raw, flags.config ? (flags.config as string) : "flags");
      const out = (flags.out as string | undefined) ?? join("runs", `${cfg.data}-${new Date().toISOString().replace(/[:.]/g, "-")}`);
      result = train(cfg, out, { onStep: bar.update, onLog });
    }
  } finally {
    bar.stop();
  }
  const f = result.final;
  process.stdout.write(
    `run: ${result.runDir} (${result.steps} steps, ${(result.secondsPerStep * 1000).toFixed(1)} ms/step)\n` +
      `final: train_loss ${f.train_loss} test_loss ${f.test_loss} test_acc ${f.test_acc} gc_train ${f.gc_train} gc_test ${f.gc_test}\n` +
      `model: ${join(result.runDir, "model")}  metrics: ${join(result.runDir, "metrics.jsonl")}\n`,
  );
}
