/** `gcx measure`: geometric complexity of a model on a data set, exact or estimated. */
import { Command, Option } from "commander";
import { addDataOptions, addInitOptions, datasetFrom, initFrom, type DataFlags, type InitFlags } from "../common.js";
import { positiveInt } from "../parse.js";
import { progressBar } from "../progress.js";
import { resolveModel } from "../../models/resolve.js";
import { exactGC, estimateGC, type GCResult } from "../../measures/gc.js";
import { weightNorms, type NormReport } from "../../measures/norms.js";
import type { GCOutput, JacobianMode, ProbeKind } from "../../measures/jacobian.js";

interface MeasureFlags extends DataFlags, InitFlags {
  model?: string;
  method: "exact" | "estimate";
  probes: number;
  probe: ProbeKind;
  mode: JacobianMode | "auto";
  perClass?: boolean;
  output: GCOutput;
  batchSize: number;
  json?: boolean;
  all?: boolean;
  progress: boolean;
}

export function measureCommand(): Command {
  const cmd = new Command("measure")
    .description(
      "Measure the geometric complexity GC = mean over examples of ||dg(x)/dx||_F^2 of a model's logits.\n" +
        "With no --model: a He-initialized MLP 784-256-256-10 (seed 0) on the MNIST test set.",
    )
    .option("--model <dir|spec>", "saved model directory, or spec: mlp:784-256-10[:relu|tanh|identity], cnn, or JSON");
  addDataOptions(cmd);
  addInitOptions(cmd);
  cmd
    .addOption(new Option("--method <method>", "exact, or an unbiased random-probe estimate").choices(["exact", "estimate"]).default("exact"))
    .option("--probes <n>", "estimate: probes per example (≥ 2)", positiveInt, 4)
    .addOption(new Option("--probe <kind>", "estimate: probe distribution").choices(["gaussian", "rademacher"]).default("gaussian"))
    .addOption(new Option("--mode <mode>", "exact: forward mode (one pass per input), reverse (one per output), or auto (the cheaper)").choices(["auto", "forward", "reverse"]).default("auto"))
    .option("--per-class", "also report GC per class")
    .addOption(new Option("--output <output>", "differentiate the logits (the paper's GC) or the softmax probabilities").choices(["logits", "softmax"]).default("logits"))
    .option("--batch-size <n>", "examples per batch (bounds memory)", positiveInt, 256)
    .option("--all", "also report weight norms and the T1/T2 bounds")
    .option("--json", "print one JSON object on stdout")
    .option("--no-progress", "hide the progress bar")
    .action((flags: MeasureFlags) => runMeasure(flags));
  return cmd;
}

function runMeasure(flags: MeasureFlags): void {
  const ds = datasetFrom(flags);
  const model = resolveModel(flags.model, ds, initFrom(flags));
  const bar = progressBar("measuring GC", flags.progress && process.stderr.isTTY === true);
  const common = { batchSize: flags.batchSize, output: flags.output, perClass: flags.perClass, onProgress: bar.update };
  let result: GCResult;
  try {
    result =
      flags.method === "exact"
        ? exactGC(model.net, model.params, ds, { ...common, mode: flags.mode })
        : estimateGC(model.net, model.params, ds, { ...common, probes: flags.probes, probe: flags.probe, seed: flags.seed });
  } finally {
    bar.stop();
  }
  const norms = flags.all ? weightNorms(model.net, model.params) : undefined;
  if (flags.json) {
    const out = { ...result, data: ds.name, split: flags.split, model: model.source, ...(norms ? { norms } : {}) };
    process.stdout.write(JSON.stringify(out) + "\n");
  } else {
    process.stdout.write(formatMeasure(result, ds.name, flags.split, model.source, norms));
  }
}

function formatMeasure(r: GCResult, data: string, split: string, model: string, norms?: NormReport): string {
  const fmt = (v: number) => (Math.abs(v) >= 1e-3 && Math.abs(v) < 1e6 ? v.toPrecision(6) : v.toExponential(4));
  const how = r.method === "exact" ? `exact, ${r.mode} mode` : `estimate, ${r.probes} ${r.probe} probes`;
  const lines = [
    `model: ${model}`,
    `data:  ${data} (${split}), n = ${r.n}`,
    `GC (${how}, ${r.output}): ${fmt(r.gc)}${r.stderr !== undefined ? ` ± ${fmt(r.stderr)} (standard error)` : ""}`,
    `time:  ${r.seconds.toFixed(2)} s`,
  ];
  if (r.per_class) for (const c of r.per_class) lines.push(`  class ${c.class}: GC ${fmt(c.gc)} (n = ${c.n})`);
  if (norms) {
    lines.push(`sum ||W||_F^2:                ${fmt(norms.sum_frobenius_sq)}`);
    lines.push(`spectral norms ||W||_op:      ${norms.spectral_norms.map(fmt).join(", ")}`);
    if (norms.prod_frobenius_sq !== null) lines.push(`T1 bound prod ||W||_F^2:      ${fmt(norms.prod_frobenius_sq)}`);
    if (norms.lipschitz_bound !== null) lines.push(`T2 bound min(d,k) prod ||W||_op^2: ${fmt(norms.lipschitz_bound)}`);
  }
  return lines.join("\n") + "\n";
}
