/**
 * Checkpoints: each is a complete directory `checkpoints/step-N/` (the model directory format plus optimizer and
 * regularizer state, and the run's fingerprint); `latest.json` names the newest and is replaced atomically only
 * after that directory is complete, so a run killed at any moment, or stopped by a failed write, still has an intact
 * checkpoint to resume from. Reading is strict: every file is checked against what the run expects, and any damage
 * is one line naming the file.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { isHost, type Data, type Storage } from "../engine/storage.js";
import { loadModel, MAX_WEIGHTS_BYTES, saveModel } from "../models/io.js";
import { decodeSafetensors, encodeSafetensors, type StoredTensor } from "../models/safetensors.js";
import type { ModelSpec } from "../models/spec.js";
import { UserError } from "../util/errors.js";
import { onFile, readFileBounded, readJsonFile, writeFileAtomic } from "../util/files.js";
import type { RunFingerprint } from "./fingerprint.js";
import type { StepState } from "./step.js";

export const LATEST = "latest.json";
const STATE_JSON = "state.json";
const STATE_TENSORS = "state.safetensors";

/** Running sums since the last log, so a resumed run logs the same averages. */
export interface RunningSums {
  lossSum: number;
  penaltySum: number;
  count: number;
}

const finite = z.number().finite();
const stepSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

const latestSchema = z.object({ step: stepSchema, dir: z.string() }).strict();

const stateSchema = z
  .object({
    step: stepSchema,
    optScalars: z.record(z.string(), finite),
    regs: z.number().int().min(0).max(1000),
    running: z.object({ lossSum: finite, penaltySum: finite, count: z.number().int().min(0) }).strict(),
    /** Absent in checkpoints written before fingerprints existed. */
    fingerprint: z
      .object({
        config: z.record(z.string(), z.unknown()),
        data: z.string().regex(/^[0-9a-f]{64}$/),
        engine: z
          .object({ backend: z.string().max(64), variant: z.string().max(64) })
          .strict()
          .optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export function checkpointName(step: number): string {
  return `step-${String(step).padStart(8, "0")}`;
}

export function saveCheckpoint(
  runDir: string,
  step: number,
  spec: ModelSpec,
  state: StepState,
  running: RunningSums,
  fingerprint: RunFingerprint,
): void {
  const name = checkpointName(step);
  const root = join(runDir, "checkpoints");
  const dir = join(root, name);
  onFile("write", dir, () => {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
  });
  saveModel(dir, spec, state.params);
  const tensors: Record<string, StoredTensor> = {};
  for (const [k, v] of Object.entries(state.opt.arrays))
    tensors[`opt/${k}`] = { shape: [v.length], data: hostArray(v) };
  state.regs.forEach((r, i) => {
    for (const [k, v] of Object.entries(r)) tensors[`reg/${i}/${k}`] = { shape: [v.length], data: hostArray(v) };
  });
  writeFileAtomic(join(dir, STATE_TENSORS), encodeSafetensors(tensors));
  writeFileAtomic(
    join(dir, STATE_JSON),
    JSON.stringify({ step, optScalars: state.opt.scalars, regs: state.regs.length, running, fingerprint }) + "\n",
  );
  writeFileAtomic(join(runDir, LATEST), JSON.stringify({ step, dir: `checkpoints/${name}` }) + "\n");
  // Older checkpoints (and any partial one left by a failed write) are no longer needed once latest.json points here.
  for (const old of onFile("read", root, () => readdirSync(root))) {
    if (old !== name)
      onFile("remove", join(root, old), () => rmSync(join(root, old), { recursive: true, force: true }));
  }
}

/** State storage that is host memory (a device run reads its state back before saving it: trainer.ts hostState). */
function hostArray(s: Storage): Data {
  if (!isHost(s)) throw new RangeError("saveCheckpoint: the state is on the device; read it back first");
  return s;
}

export interface LoadedCheckpoint {
  step: number;
  state: StepState;
  spec: ModelSpec;
  running: RunningSums;
  fingerprint?: RunFingerprint;
  /** The state tensor file, for messages. */
  file: string;
}

function sameKeys(a: Iterable<string>, b: Iterable<string>): boolean {
  const x = [...a].sort(),
    y = [...b].sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** Reads the checkpoint `latest.json` names, or null when there is none yet; any damage is one line naming the file. */
export function loadCheckpoint(runDir: string): LoadedCheckpoint | null {
  const latest = join(runDir, LATEST);
  if (!existsSync(latest)) return null;
  const l = latestSchema.safeParse(readJsonFile(latest, "checkpoint pointer", 1 << 16));
  if (!l.success)
    throw new UserError(
      `${latest}: not a valid checkpoint pointer (${l.error.issues[0].path.join(".") || "(root)"}: ${l.error.issues[0].message})`,
    );
  const { step, dir } = l.data;
  if (dir !== `checkpoints/${checkpointName(step)}`)
    throw new UserError(`${latest}: names "${dir}", expected checkpoints/${checkpointName(step)}`);
  const full = join(runDir, dir);
  if (!existsSync(full)) throw new UserError(`${latest}: names ${full}, which does not exist`);
  const model = loadModel(full);
  const metaFile = join(full, STATE_JSON);
  const m = stateSchema.safeParse(readJsonFile(metaFile, "checkpoint state", 1 << 24));
  if (!m.success) {
    const i = m.error.issues[0];
    throw new UserError(`${metaFile}: not a valid checkpoint state (${i.path.join(".") || "(root)"}: ${i.message})`);
  }
  const meta = m.data;
  if (meta.step !== step) throw new UserError(`${metaFile}: step ${meta.step} does not match ${latest} (step ${step})`);
  const tensorFile = join(full, STATE_TENSORS);
  const stored = decodeSafetensors(readFileBounded(tensorFile, MAX_WEIGHTS_BYTES, "checkpoint state"), tensorFile);
  const arrays: Record<string, Float32Array | Float64Array> = {};
  const regs: Record<string, Float64Array>[] = Array.from({ length: meta.regs }, () => ({}));
  for (const [k, v] of Object.entries(stored)) {
    if (v.shape.length !== 1) throw new UserError(`${tensorFile}: state tensor "${k}" must be 1-dimensional`);
    const bad = v.data.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) throw new UserError(`${tensorFile}: state tensor "${k}" holds a non-finite value at index ${bad}`);
    const reg = /^reg\/(\d+)\/(.+)$/.exec(k);
    if (k.startsWith("opt/")) arrays[k.slice(4)] = v.data;
    else if (reg && Number(reg[1]) < meta.regs)
      regs[Number(reg[1])][reg[2]] = v.data instanceof Float64Array ? v.data : Float64Array.from(v.data);
    else throw new UserError(`${tensorFile}: unexpected state tensor "${k}"`);
  }
  return {
    step,
    spec: model.spec,
    state: { params: model.params, opt: { arrays, scalars: meta.optScalars }, regs },
    running: meta.running,
    fingerprint: meta.fingerprint as RunFingerprint | undefined,
    file: tensorFile,
  };
}

/**
 * Checks a loaded checkpoint against `expected`, the freshly initialized state of the run resuming it: the
 * checkpoint must hold exactly its optimizer and regularizer arrays, with the same sizes.
 */
export function checkCheckpointState(ck: LoadedCheckpoint, expected: StepState): void {
  const tensorFile = ck.file;
  const { arrays, scalars } = ck.state.opt;
  const regs = ck.state.regs;
  const mismatch = (what: string) =>
    new UserError(
      `${tensorFile}: ${what} does not match this run's optimizer and regularizers (the checkpoint belongs to another configuration)`,
    );
  if (!sameKeys(Object.keys(arrays), Object.keys(expected.opt.arrays))) throw mismatch("the optimizer state");
  for (const [k, v] of Object.entries(expected.opt.arrays))
    if (arrays[k].length !== v.length) throw mismatch(`optimizer array "${k}"`);
  if (!sameKeys(Object.keys(scalars), Object.keys(expected.opt.scalars))) throw mismatch("the optimizer scalars");
  if (regs.length !== expected.regs.length) throw mismatch("the number of regularizer states");
  expected.regs.forEach((r, i) => {
    if (!sameKeys(Object.keys(regs[i]), Object.keys(r))) throw mismatch(`regularizer ${i}'s state`);
    for (const [k, v] of Object.entries(r))
      if (regs[i][k].length !== v.length) throw mismatch(`regularizer ${i}'s "${k}"`);
  });
}

/** Rewrites the fingerprint of the checkpoint `latest.json` names (used when a run is extended on purpose). */
export function updateCheckpointFingerprint(runDir: string, step: number, fingerprint: RunFingerprint): void {
  const file = join(runDir, "checkpoints", checkpointName(step), STATE_JSON);
  const meta = stateSchema.parse(readJsonFile(file, "checkpoint state", 1 << 24));
  writeFileAtomic(file, JSON.stringify({ ...meta, fingerprint }) + "\n");
}
