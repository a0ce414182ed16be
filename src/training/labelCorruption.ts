/** Fixed label corruption: a fraction of training labels replaced once by random classes (seeded). */
import type { Dataset } from "../data/dataset.js";
import { Rng } from "../util/rng.js";

export function corruptLabels(ds: Dataset, fraction: number, seed: number): Dataset {
  if (fraction <= 0 || !ds.labels) return ds;
  const rng = Rng.derive(seed, 0xc0ffee);
  const perm = rng.permutation(ds.n);
  const count = Math.round(fraction * ds.n);
  const labels = Int32Array.from(ds.labels);
  // Each chosen label becomes a uniformly random class (it may stay correct by chance, as in Zhang et al. 2017).
  for (let i = 0; i < count; i++) labels[perm[i]] = rng.int(ds.numOutputs);
  return { ...ds, labels };
}
