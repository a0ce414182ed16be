/** Data sets by name: validates the load options and dispatches to the loader. */
import { UserError } from "../util/errors.js";
import type { Dataset, LoadOptions } from "./dataset.js";
import { loadFashionMnist } from "./fashionMnist.js";
import { loadMnist } from "./mnist.js";
import { head } from "./select.js";
import { checkAllocation } from "../models/budget.js";
import { DEFAULT_SIZE, makeSynthetic, MULTICLASS_NAMES, SYNTHETIC_NAMES, type SyntheticName } from "./synthetic.js";

export { subset, batches, head } from "./select.js";

/** Every name {@link loadDataset} accepts. */
export const DATASET_NAMES = ["mnist", "fashion-mnist", "sine", "moons", "circles", "spirals", "xor", "blobs"] as const;
/** One of {@link DATASET_NAMES}. */
export type DatasetName = (typeof DATASET_NAMES)[number];

function isSynthetic(name: string): name is SyntheticName {
  return (SYNTHETIC_NAMES as readonly string[]).includes(name);
}

function checkPositiveInt(what: string, v: number | undefined): void {
  if (v !== undefined && !(Number.isInteger(v) && v > 0))
    throw new UserError(`${what} must be a positive integer, got ${v}`);
}

function validate(name: DatasetName, opts: LoadOptions): void {
  checkPositiveInt("limit", opts.limit);
  checkPositiveInt("size", opts.size);
  if (!Number.isFinite(opts.seed)) throw new UserError(`seed must be a finite number, got ${opts.seed}`);
  if (opts.noise !== undefined && !(Number.isFinite(opts.noise) && opts.noise >= 0)) {
    throw new UserError(`noise must be a finite number >= 0, got ${opts.noise}`);
  }
  if (opts.classes !== undefined && !(Number.isInteger(opts.classes) && opts.classes >= 2)) {
    throw new UserError(`classes must be an integer >= 2, got ${opts.classes}`);
  }
  // Options a data set cannot honour are reported rather than silently ignored.
  if (!isSynthetic(name)) {
    const given = (["size", "noise", "classes"] as const).filter((k) => opts[k] !== undefined);
    if (given.length > 0) throw new UserError(`${given.join(", ")} only apply to synthetic data sets, not to ${name}`);
  } else if (name === "sine" && opts.classes !== undefined) {
    throw new UserError(`classes does not apply to sine (a regression data set)`);
  } else if (!MULTICLASS_NAMES.includes(name) && opts.classes !== undefined && opts.classes !== 2) {
    throw new UserError(`${name} always has 2 classes (classes applies to ${MULTICLASS_NAMES.join(" and ")})`);
  } else if (
    MULTICLASS_NAMES.includes(name) &&
    opts.classes !== undefined &&
    opts.classes > (opts.size ?? DEFAULT_SIZE)
  ) {
    // Each class needs an example; more classes than examples is a degenerate data set (and a model with as many outputs).
    throw new UserError(
      `${name}: classes (${opts.classes}) cannot exceed the examples per split (size ${opts.size ?? DEFAULT_SIZE}); lower --classes or raise --size`,
    );
  }
}

/** Load data set `name`; `opts.limit` keeps only the first examples. Throws UserError for bad names or options. */
export function loadDataset(name: string, opts: LoadOptions): Dataset {
  if (!(DATASET_NAMES as readonly string[]).includes(name)) {
    throw new UserError(`unknown data set "${name}"; choose one of: ${DATASET_NAMES.join(", ")}`);
  }
  const known = name as DatasetName;
  validate(known, opts);
  if (isSynthetic(known)) {
    // Inputs (1 or 2 numbers an example), labels or targets, and the shuffling permutation: 4 bytes each.
    const n = opts.size ?? DEFAULT_SIZE,
      d = known === "sine" ? 1 : 2;
    checkAllocation(`${known} with ${n} examples`, n * (d + 2) * 4, n * d, "use a smaller --size");
  }
  let ds: Dataset;
  if (known === "mnist") ds = loadMnist(opts.split, opts.limit);
  else if (known === "fashion-mnist") ds = loadFashionMnist(opts.split, opts.limit);
  else ds = makeSynthetic(known, opts);
  return opts.limit === undefined ? ds : head(ds, opts.limit);
}
