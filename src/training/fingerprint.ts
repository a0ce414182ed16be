/**
 * What a checkpoint records about the run that wrote it, so a resume can refuse to continue a different run: the
 * full config (to name the keys that changed) and a SHA-256 of the data selection (training examples after label
 * corruption, and the evaluation subsets).
 */
import { createHash } from "node:crypto";
import type { Dataset } from "../data/dataset.js";
import type { EvalSets } from "./evaluate.js";
import type { TrainConfig } from "./config.js";
import type { EngineInfo } from "../engine/backend.js";

/** Keys that may change on purpose when resuming (`gcx train --resume DIR --steps N`). */
export const EXTENSIBLE_KEYS = ["steps", "epochs"] as const;

function stable(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x !== null && typeof x === "object" && !Array.isArray(x)
      ? Object.fromEntries(
          Object.keys(x)
            .sort()
            .map((k) => [k, (x as Record<string, unknown>)[k]]),
        )
      : x,
  );
}

/** Keys whose values differ between two configs, as "key (old → new)" strings, in key order. */
export function configChanges(
  before: Record<string, unknown>,
  after: Record<string, unknown>,
  ignore: readonly string[] = [],
): string[] {
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => !ignore.includes(k)).sort();
  const show = (v: unknown) => {
    const s = v === undefined ? "unset" : stable(v);
    return s.length > 40 ? s.slice(0, 37) + "..." : s;
  };
  return keys
    .filter((k) => stable(before[k]) !== stable(after[k]))
    .map((k) => `${k} (${show(before[k])} → ${show(after[k])})`);
}

function hashDataset(h: ReturnType<typeof createHash>, ds: Dataset): void {
  h.update(`${ds.name}|${ds.n}|${ds.inputShape.join("x")}|${ds.numOutputs}|`);
  h.update(new Uint8Array(ds.x.buffer, ds.x.byteOffset, ds.x.byteLength));
  if (ds.labels) h.update(new Uint8Array(ds.labels.buffer, ds.labels.byteOffset, ds.labels.byteLength));
  if (ds.targets) h.update(new Uint8Array(ds.targets.buffer, ds.targets.byteOffset, ds.targets.byteLength));
}

/** SHA-256 (hex) of the training examples and the evaluation subsets. */
export function dataFingerprint(train: Dataset, sets: EvalSets): string {
  const h = createHash("sha256");
  for (const ds of [train, sets.trainEval, sets.testEval, sets.trainGC, sets.testGC]) hashDataset(h, ds);
  return h.digest("hex");
}

export interface RunFingerprint {
  config: TrainConfig;
  data: string;
  /** Backend and kernel variant that computed the run (absent in checkpoints written before they were recorded). */
  engine?: EngineInfo;
}

/** The one-line refusal to continue a run computed on `before` with `now` (null when they match or `before` is unknown). */
export function engineMismatch(runDir: string, before: EngineInfo | undefined, now: EngineInfo): string | null {
  if (!before || (before.backend === now.backend && before.variant === now.variant)) return null;
  return (
    `run ${runDir} was computed on the ${before.backend} backend (${before.variant} kernels) and this process runs ${now.backend} (${now.variant}); ` +
    `a resume must not mix kernels, so resume it with --backend ${before.backend} on a runtime that has ${before.variant}`
  );
}
