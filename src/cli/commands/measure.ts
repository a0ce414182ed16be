/** `gcx measure`: geometric complexity of a model on a data set, exact or estimated. */
import { engineInfo, keepResident } from "../../engine/backend.js";
import { Command, Option } from "commander";
import { addDataOptions, addInitOptions, datasetFrom, initFrom, type DataFlags, type InitFlags } from "../common.js";
import { positiveInt } from "../parse.js";
import { progressBar } from "../progress.js";
import { resolveModel, specForModelArg } from "../../models/resolve.js";
import { BUDGET_HELP, checkMeasureBudget, modelName } from "../../models/budget.js";
import {
  checkFiniteGC,
  exactGC,
  exactGCDeferred,
  estimateGC,
  estimateGCDeferred,
  nonFiniteError,
  type GCResult,
} from "../../measures/gc.js";
import { onDevice, resolve } from "../../measures/readback.js";
import type { NormReport } from "../../measures/norms.js";
import { head } from "../../data/select.js";
import { companionMeasures, companionMeasuresDeferred, type MetricsRecord } from "../../training/evaluate.js";
import { MEASURE_NAMES } from "../../training/config.js";
import type { Dataset } from "../../data/dataset.js";
import type { ResolvedModel } from "../../models/resolve.js";
import type { GCOutput, JacobianMode, ProbeKind } from "../../measures/jacobian.js";

/** The parsed options of `gcx measure` (commander's names). */
export interface MeasureFlags extends DataFlags, InitFlags {
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
    .option(
      "--model <dir|spec>",
      "saved model directory, or spec: mlp:784-256-10[:relu|tanh|sigmoid|gelu|identity], cnn, or JSON",
    );
  addDataOptions(cmd);
  addInitOptions(cmd);
  cmd
    .addOption(
      new Option("--method <method>", "exact, or an unbiased random-probe estimate")
        .choices(["exact", "estimate"])
        .default("exact"),
    )
    .option("--probes <n>", "estimate: probes per example (≥ 2)", positiveInt, 4)
    .addOption(
      new Option("--probe <kind>", "estimate: probe distribution")
        .choices(["gaussian", "rademacher"])
        .default("gaussian"),
    )
    .addOption(
      new Option(
        "--mode <mode>",
        "exact: forward mode (one pass per input), reverse (one per output), or auto (the cheaper)",
      )
        .choices(["auto", "forward", "reverse"])
        .default("auto"),
    )
    .option("--per-class", "also report GC per class")
    .addOption(
      new Option("--output <output>", "differentiate the logits (the paper's GC) or the softmax probabilities")
        .choices(["logits", "softmax"])
        .default("logits"),
    )
    .option("--batch-size <n>", "examples per batch (bounds memory)", positiveInt, 256)
    .option(
      "--all",
      "also report the companion measures: weight norms, T1/T2/T3 bounds, parameter-gradient norms, loss-gradient norm, Hessian trace and top eigenvalue (these on the first 256 examples)",
    )
    .option("--json", "print one JSON object on stdout")
    .option("--no-progress", "hide the progress bar")
    .addHelpText("after", BUDGET_HELP)
    .action(async (flags: MeasureFlags) => {
      process.stdout.write(await runMeasure(flags));
    });
  return cmd;
}

/**
 * The work of `gcx measure`, in-process: returns what the command prints on stdout. On a CPU backend it reads
 * numbers back synchronously, as it always has; on a device backend (`--backend webgpu`) the same measures are
 * computed on the device and read back once, at the end, with `await resolve` (decision 0007).
 */
export async function runMeasure(flags: MeasureFlags): Promise<string> {
  const ds = datasetFrom(flags);
  // Refuse what cannot fit or finish before allocating the model (see models/budget.ts).
  const spec = specForModelArg(flags.model, ds);
  checkMeasureBudget(
    spec,
    modelName(spec),
    {
      n: ds.n,
      batchSize: flags.batchSize,
      gc:
        flags.method === "exact" ? { method: "exact", mode: flags.mode } : { method: "estimate", probes: flags.probes },
      companions: flags.all ? Math.min(256, ds.n) : undefined,
    },
    {
      memoryAdvice:
        flags.method === "estimate"
          ? "use fewer --probes, a smaller model or --batch-size"
          : "use a smaller model or --batch-size",
      timeAdvice:
        flags.method === "estimate"
          ? "use fewer --probes or --limit"
          : "use --method estimate, --limit or a smaller model",
    },
  );
  const device = onDevice();
  const resolved = resolveModel(flags.model, ds, initFrom(flags));
  // A saved model's weights are read into host memory: kept in the backend's memory for the whole measurement
  // (uploaded on a device, resident in wasm memory), so no batch stages them again.
  const held = keepResident(resolved.params);
  try {
    return await measureWith({ ...resolved, params: held.value }, ds, flags, device);
  } finally {
    held.drop();
  }
}

async function measureWith(model: ResolvedModel, ds: Dataset, flags: MeasureFlags, device: boolean): Promise<string> {
  const bar = progressBar("measuring GC", flags.progress && process.stderr.isTTY === true);
  const common = { batchSize: flags.batchSize, output: flags.output, perClass: flags.perClass, onProgress: bar.update };
  const exactOpts = { ...common, mode: flags.mode };
  const estimateOpts = { ...common, probes: flags.probes, probe: flags.probe, seed: flags.seed };
  let result: GCResult;
  try {
    if (!device)
      result =
        flags.method === "exact"
          ? exactGC(model.net, model.params, ds, exactOpts)
          : estimateGC(model.net, model.params, ds, estimateOpts);
    else
      result = await resolve(
        flags.method === "exact"
          ? exactGCDeferred(model.net, model.params, ds, exactOpts)
          : estimateGCDeferred(model.net, model.params, ds, estimateOpts),
      );
  } finally {
    bar.stop();
  }
  checkFiniteGC(result, model.params, ds);
  const norms = flags.all ? await companions(model, ds, flags.seed, device) : undefined;
  if (flags.json) {
    const out = {
      ...result,
      data: ds.name,
      split: flags.split,
      model: model.source,
      engine: engineInfo(),
      ...(norms ? { norms } : {}),
    };
    return JSON.stringify(out, jsonSafe) + "\n";
  }
  return formatMeasure(result, ds.name, flags.split, model.source, norms);
}

/**
 * JSON has no Infinity: bounds that legitimately overflow (∏‖W‖_F² of a large model) are written as the strings
 * "Infinity" / "-Infinity" rather than the null JSON.stringify would print. NaN never gets here (checked before).
 */
function jsonSafe(_key: string, value: unknown): unknown {
  return typeof value === "number" && !Number.isFinite(value) && !Number.isNaN(value) ? String(value) : value;
}

type Companions = NormReport & Record<string, number | number[] | null>;

/**
 * Companion measures of PAPER.md T1-T3; the per-example and Hessian ones on the first 256 examples. null means not
 * defined for this model (CNNs); a NaN is an overflow and an error; an infinite bound is reported as such.
 */
async function companions(model: ResolvedModel, ds: Dataset, seed: number, device: boolean): Promise<Companions> {
  const sub = head(ds, 256);
  const rec: MetricsRecord = device
    ? await resolve(companionMeasuresDeferred(model.net, model.params, sub, MEASURE_NAMES, seed))
    : companionMeasures(model.net, model.params, sub, MEASURE_NAMES, seed);
  for (const [key, v] of Object.entries(rec)) {
    const bad = (Array.isArray(v) ? v : [v]).some((x) => typeof x === "number" && Number.isNaN(x));
    if (bad) throw nonFiniteError(`companion measure ${key}`, NaN, model.params, sub);
  }
  return { ...(rec as Companions), companions_n: sub.n };
}

function formatMeasure(r: GCResult, data: string, split: string, model: string, norms?: Companions): string {
  const fmt = (v: number) =>
    !Number.isFinite(v) ? String(v) : Math.abs(v) >= 1e-3 && Math.abs(v) < 1e6 ? v.toPrecision(6) : v.toExponential(4);
  const how = r.method === "exact" ? `exact, ${r.mode} mode` : `estimate, ${r.probes} ${r.probe} probes`;
  const lines = [
    `model: ${model}`,
    `data:  ${data} (${split}), n = ${r.n}`,
    `GC (${how}, ${r.output}): ${fmt(r.gc)}${r.stderr !== undefined ? ` ± ${fmt(r.stderr)} (standard error)` : ""}`,
    `time:  ${r.seconds.toFixed(2)} s`,
  ];
  if (r.per_class)
    for (const c of r.per_class)
      lines.push(c.n > 0 ? `  class ${c.class}: GC ${fmt(c.gc)} (n = ${c.n})` : `  class ${c.class}: no examples`);
  if (norms) {
    lines.push(`sum ||W||_F^2:                ${fmt(norms.sum_frobenius_sq)}`);
    lines.push(`spectral norms ||W||_op:      ${norms.spectral_norms.map(fmt).join(", ")}`);
    const na = "not applicable (the bounds assume a plain chain of dense layers)";
    lines.push(`T1 bound prod ||W||_F^2:      ${norms.prod_frobenius_sq !== null ? fmt(norms.prod_frobenius_sq) : na}`);
    lines.push(
      `T2 bound min(d,k) prod ||W||_op^2: ${norms.lipschitz_bound !== null ? fmt(norms.lipschitz_bound) : na}`,
    );
    lines.push(`on the first ${norms.companions_n} examples:`);
    if (typeof norms.t3_bound === "number") lines.push(`  T3 first-layer transfer bound: ${fmt(norms.t3_bound)}`);
    if (typeof norms.param_grad_sq === "number")
      lines.push(`  mean ||grad_theta g(x)||_F^2:  ${fmt(norms.param_grad_sq)}`);
    lines.push(`  ||grad_theta L||^2:            ${fmt(norms.loss_grad_sq as number)}`);
    lines.push(
      `  Hessian trace (Hutchinson):    ${fmt(norms.hessian_trace as number)} ± ${fmt(norms.hessian_trace_stderr as number)}`,
    );
    lines.push(`  top Hessian eigenvalue:        ${fmt(norms.hessian_top_eig as number)}`);
  }
  return lines.join("\n") + "\n";
}
