/**
 * Which examples and which randomness each training step uses. Both derive from (seed, epoch) and (seed, step)
 * alone, so any step can be recreated without replaying the ones before it: that makes resumed runs identical to
 * uninterrupted ones, and lets the browser playground reproduce `gcx train` number for number.
 * No Node built-ins here (the playground bundles this file).
 */
import type { Dataset } from "../data/dataset.js";
import { subset } from "../data/select.js";
import { inputBatch } from "../measures/gc.js";
import type { Batch } from "../regularizers/regularizer.js";
import { Rng } from "../util/rng.js";

const BATCH_KEY = 0xba7c4;
const STEP_KEY = 0x57e9;

/** Whole batches per epoch (a last partial batch is dropped; a batch larger than the data is the whole data). */
export function stepsPerEpoch(n: number, batchSize: number): number {
  return Math.max(1, Math.floor(n / Math.min(batchSize, n)));
}

/** The whole dataset as one batch. */
export function batchOf(ds: Dataset): Batch {
  return { x: inputBatch(ds, 0, ds.n), labels: ds.labels, targets: ds.targets, numOutputs: ds.numOutputs };
}

/** Reused between consecutive calls so an epoch's permutation is drawn once. */
export interface EpochCache {
  epoch: number;
  perm: Int32Array | null;
}

export function newEpochCache(): EpochCache {
  return { epoch: -1, perm: null };
}

/** The batch of `step`: epoch e visits the examples in the order of a permutation derived from (seed, e). */
export function batchForStep(train: Dataset, batchSize: number, seed: number, step: number, cache: EpochCache): Batch {
  const bs = Math.min(batchSize, train.n);
  const spe = stepsPerEpoch(train.n, bs);
  const epoch = Math.floor(step / spe);
  if (cache.epoch !== epoch || !cache.perm) {
    cache.epoch = epoch;
    cache.perm = Rng.derive(seed, BATCH_KEY, epoch).permutation(train.n);
  }
  const at = (step % spe) * bs;
  return batchOf(subset(train, cache.perm.subarray(at, at + bs)));
}

/** The randomness of `step` (noise regularizers, GC-penalty probes). */
export function stepRng(seed: number, step: number): Rng {
  return Rng.derive(seed, STEP_KEY, step);
}
