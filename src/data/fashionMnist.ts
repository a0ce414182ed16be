/** Fashion-MNIST from the gzipped IDX files of the Debian package dataset-fashion-mnist. */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { UserError } from "../util/errors.js";
import type { Dataset, Split } from "./dataset.js";
import { idxImageDataset, SPLIT_PREFIX, SPLIT_SIZES, type IdxFile } from "./imageDataset.js";

/** Where Debian's `dataset-fashion-mnist` package installs the gzipped IDX files. */
export const FASHION_MNIST_DEFAULT_DIR = "/usr/share/datasets/fashion-mnist";

/** Where the files are looked for; GCX_FASHION_MNIST_DIR overrides the Debian location. */
export function fashionMnistDir(): string {
  return process.env.GCX_FASHION_MNIST_DIR || FASHION_MNIST_DEFAULT_DIR;
}

function readGzIdx(path: string): IdxFile {
  if (!existsSync(path)) {
    throw new UserError(
      `fashion-mnist is not installed: run "apt-get install -y dataset-fashion-mnist" (missing ${path})`,
    );
  }
  try {
    return { name: path, bytes: gunzipSync(readFileSync(path)) };
  } catch (e) {
    throw new UserError(`cannot read ${path}: ${(e as Error).message}`);
  }
}

/**
 * Fashion-MNIST images (784 pixels scaled to [0, 1]) and labels of one split, optionally the first `limit`.
 * Throws a UserError naming the package to install when the files are missing.
 */
export function loadFashionMnist(split: Split, limit?: number): Dataset {
  const dir = fashionMnistDir();
  const prefix = SPLIT_PREFIX[split];
  const images = readGzIdx(join(dir, `${prefix}-images-idx3-ubyte.gz`));
  const labels = readGzIdx(join(dir, `${prefix}-labels-idx1-ubyte.gz`));
  return idxImageDataset("fashion-mnist", images, labels, SPLIT_SIZES[split], limit);
}
