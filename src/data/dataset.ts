/** An in-memory dataset of examples with float inputs and integer labels (classification) or float targets. */
export type Task = "classification" | "regression";

export interface Dataset {
  /** Data set name as given on the command line, e.g. "mnist". */
  readonly name: string;
  readonly task: Task;
  /** Shape of one input example, e.g. [784] for flattened MNIST, [2] for moons. */
  readonly inputShape: readonly number[];
  /** Image layout [height, width, channels] when the inputs are images (for CNNs); absent otherwise. */
  readonly imageShape?: readonly [number, number, number];
  /** Number of classes (classification) or of target values per example (regression). */
  readonly numOutputs: number;
  /** Number of examples. */
  readonly n: number;
  /** Inputs, row-major, n × prod(inputShape) values. */
  readonly x: Float32Array;
  /** Class index per example (classification), length n; for regression, n × numOutputs targets in `targets`. */
  readonly labels?: Int32Array;
  readonly targets?: Float32Array;
}

export type Split = "train" | "test";

export interface LoadOptions {
  split: Split;
  /** Keep only the first `limit` examples (after any shuffling the loader does). */
  limit?: number;
  /** Seed for synthetic data generation. */
  seed: number;
  /** Synthetic data: number of examples to generate (before `limit`). */
  size?: number;
  /** Synthetic data: noise level. */
  noise?: number;
  /** Synthetic classification data: number of classes, where the data set allows it (spirals). */
  classes?: number;
}

/** Number of values in one input example. */
export function inputSize(ds: Dataset): number {
  return ds.inputShape.reduce((a, b) => a * b, 1);
}
