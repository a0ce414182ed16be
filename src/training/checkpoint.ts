/**
 * Checkpoints: each is a complete directory `checkpoints/step-N/` (the model directory format plus optimizer and
 * regularizer state); `latest.json` names the newest and is replaced atomically only after that directory is
 * complete, so a run killed at any moment still has an intact checkpoint to resume from.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { loadModel, saveModel, writeFileAtomic } from "../models/io.js";
import { decodeSafetensors, encodeSafetensors, type StoredTensor } from "../models/safetensors.js";
import type { ModelSpec } from "../models/spec.js";
import { UserError } from "../util/errors.js";
import type { StepState } from "./step.js";

const LATEST = "latest.json";

/** Running sums since the last log, so a resumed run logs the same averages. */
export interface RunningSums {
  lossSum: number;
  penaltySum: number;
  count: number;
}

export function saveCheckpoint(runDir: string, step: number, spec: ModelSpec, state: StepState, running: RunningSums): void {
  const name = `step-${String(step).padStart(8, "0")}`;
  const dir = join(runDir, "checkpoints", name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  saveModel(dir, spec, state.params);
  const tensors: Record<string, StoredTensor> = {};
  for (const [k, v] of Object.entries(state.opt.arrays)) tensors[`opt/${k}`] = { shape: [v.length], data: v };
  state.regs.forEach((r, i) => {
    for (const [k, v] of Object.entries(r)) tensors[`reg/${i}/${k}`] = { shape: [v.length], data: v };
  });
  writeFileAtomic(join(dir, "state.safetensors"), encodeSafetensors(tensors));
  writeFileAtomic(join(dir, "state.json"), JSON.stringify({ step, optScalars: state.opt.scalars, regs: state.regs.length, running }) + "\n");
  writeFileAtomic(join(runDir, LATEST), JSON.stringify({ step, dir: join("checkpoints", name) }) + "\n");
  // Older checkpoints are no longer needed once latest.json points past them.
  for (const old of readdirSync(join(runDir, "checkpoints"))) if (old !== name) rmSync(join(runDir, "checkpoints", old), { recursive: true, force: true });
}

export function loadCheckpoint(runDir: string): { step: number; state: StepState; spec: ModelSpec; running: RunningSums } | null {
  const latest = join(runDir, LATEST);
  if (!existsSync(latest)) return null;
  const { step, dir } = JSON.parse(readFileSync(latest, "utf8")) as { step: number; dir: string };
  const full = join(runDir, dir);
  const model = loadModel(full);
  const meta = JSON.parse(readFileSync(join(full, "state.json"), "utf8")) as { optScalars: Record<string, number>; regs: number; running: RunningSums };
  const stored = decodeSafetensors(readFileSync(join(full, "state.safetensors")), join(full, "state.safetensors"));
  const arrays: Record<string, Float32Array | Float64Array> = {};
  const regs: Record<string, Float64Array>[] = Array.from({ length: meta.regs }, () => ({}));
  for (const [k, v] of Object.entries(stored)) {
    if (k.startsWith("opt/")) arrays[k.slice(4)] = v.data;
    else if (k.startsWith("reg/")) {
      const [, i, ...rest] = k.split("/");
      regs[Number(i)][rest.join("/")] = v.data instanceof Float64Array ? v.data : Float64Array.from(v.data);
    } else throw new UserError(`${full}: unexpected state tensor "${k}"`);
  }
  return { step, spec: model.spec, state: { params: model.params, opt: { arrays, scalars: meta.optScalars }, regs }, running: meta.running };
}
