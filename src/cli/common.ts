/** Options shared by commands that load data and build models (measure now, train later). */
import { Command, Option } from "commander";
import { loadDataset, DATASET_NAMES } from "../data/registry.js";
import type { Dataset, Split } from "../data/dataset.js";
import { INIT_DISTRIBUTIONS, INIT_SCHEMES, type InitOptions } from "../models/init.js";
import { finiteNumber, nonNegativeNumber, positiveInt, nonNegativeInt } from "./parse.js";

export interface DataFlags {
  data: string;
  split: Split;
  limit?: number;
  seed: number;
  size?: number;
  noise?: number;
  classes?: number;
}

export interface InitFlags {
  init: InitOptions["scheme"];
  initDist: InitOptions["distribution"];
  initScale: number;
  bias: number;
  seed: number;
}

export function addDataOptions(cmd: Command, defaultData = "mnist", defaultSplit: Split = "test"): Command {
  return cmd
    .addOption(new Option("--data <name>", `data set: ${DATASET_NAMES.join(", ")}`).default(defaultData))
    .addOption(new Option("--split <split>", "which split").choices(["train", "test"]).default(defaultSplit))
    .option("--limit <n>", "use only the first n examples", positiveInt)
    .option("--seed <n>", "seed for synthetic data, initialization and probes", nonNegativeInt, 0)
    .option("--size <n>", "synthetic data: number of examples", positiveInt)
    .option("--noise <x>", "synthetic data: noise level", nonNegativeNumber)
    .option("--classes <n>", "spirals, blobs: number of classes", positiveInt);
}

export function addInitOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option("--init <scheme>", "initialization of a fresh model").choices(INIT_SCHEMES).default("he"))
    .addOption(
      new Option("--init-dist <dist>", "initialization distribution").choices(INIT_DISTRIBUTIONS).default("normal"),
    )
    .option("--init-scale <x>", "multiplier on the initial weight standard deviation", nonNegativeNumber, 1)
    .option("--bias <x>", "initial value of every bias", finiteNumber, 0);
}

export function datasetFrom(flags: DataFlags): Dataset {
  return loadDataset(flags.data, {
    split: flags.split,
    limit: flags.limit,
    seed: flags.seed,
    size: flags.size,
    noise: flags.noise,
    classes: flags.classes,
  });
}

export function initFrom(flags: InitFlags): InitOptions {
  return {
    scheme: flags.init,
    distribution: flags.initDist,
    scale: flags.initScale,
    bias: flags.bias,
    seed: flags.seed,
  };
}
