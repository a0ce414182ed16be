/** Picking examples out of a Dataset: subsets, prefixes and batch ranges. */
import { UserError } from "../util/errors.js";
import { inputSize, type Dataset } from "./dataset.js";

/** A new Dataset holding copies of the examples at `indices`, in that order. */
export function subset(ds: Dataset, indices: ArrayLike<number>): Dataset {
  const d = inputSize(ds);
  const m = indices.length;
  const x = new Float32Array(m * d);
  const labels = ds.labels ? new Int32Array(m) : undefined;
  const t = ds.targets ? ds.numOutputs : 0;
  const targets = ds.targets ? new Float32Array(m * t) : undefined;
  for (let j = 0; j < m; j++) {
    const i = indices[j];
    if (!Number.isInteger(i) || i < 0 || i >= ds.n)
      throw new RangeError(`subset index ${i} out of range 0..${ds.n - 1}`);
    x.set(ds.x.subarray(i * d, (i + 1) * d), j * d);
    if (labels) labels[j] = ds.labels![i];
    if (targets) targets.set(ds.targets!.subarray(i * t, (i + 1) * t), j * t);
  }
  return { ...ds, n: m, x, labels, targets };
}

/** The first `limit` examples (all of them when limit ≥ n); returns `ds` itself when nothing is cut. */
export function head(ds: Dataset, limit: number): Dataset {
  if (limit >= ds.n) return ds;
  const d = inputSize(ds);
  return {
    ...ds,
    n: limit,
    x: ds.x.slice(0, limit * d),
    labels: ds.labels?.slice(0, limit),
    targets: ds.targets?.slice(0, limit * ds.numOutputs),
  };
}

/** Consecutive [start, end) example ranges of at most `batchSize` examples covering the data set. */
export function* batches(ds: Dataset, batchSize: number): Iterable<{ start: number; end: number }> {
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new UserError(`batch size must be a positive integer, got ${batchSize}`);
  for (let start = 0; start < ds.n; start += batchSize) yield { start, end: Math.min(ds.n, start + batchSize) };
}
