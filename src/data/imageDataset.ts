/** Turns a pair of IDX files (28×28 uint8 images, uint8 labels) into a Dataset; shared by MNIST and Fashion-MNIST. */
import { UserError } from "../util/errors.js";
import type { Dataset } from "./dataset.js";
import { parseIdx } from "./idx.js";

/** One IDX file's bytes and the name used in error messages. */
export interface IdxFile {
  /** File name for error messages. */
  name: string;
  bytes: Uint8Array;
}

const SIDE = 28;
const CLASSES = 10;

/**
 * Check the files hold exactly `expectedN` 28×28 images with labels 0..9, then convert the first
 * `limit` examples (all when absent) to pixel/255 floats, so a small limit avoids a large float copy.
 */
export function idxImageDataset(
  name: string,
  images: IdxFile,
  labels: IdxFile,
  expectedN: number,
  limit?: number,
): Dataset {
  const img = parseIdx(images.bytes, images.name);
  const lab = parseIdx(labels.bytes, labels.name);
  if (img.dims.length !== 3 || img.dims[0] !== expectedN || img.dims[1] !== SIDE || img.dims[2] !== SIDE) {
    throw new UserError(
      `${images.name}: expected ${expectedN} images of ${SIDE}x${SIDE}, found dims [${img.dims.join(", ")}]`,
    );
  }
  if (lab.dims.length !== 1 || lab.dims[0] !== expectedN) {
    throw new UserError(`${labels.name}: expected ${expectedN} labels, found dims [${lab.dims.join(", ")}]`);
  }
  const n = limit === undefined ? expectedN : Math.min(limit, expectedN);
  const size = SIDE * SIDE;
  const x = new Float32Array(n * size);
  for (let i = 0; i < x.length; i++) x[i] = img.data[i] / 255;
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = lab.data[i];
    if (v >= CLASSES) throw new UserError(`${labels.name}: label ${v} at index ${i} is not in 0..${CLASSES - 1}`);
    y[i] = v;
  }
  return {
    name,
    task: "classification",
    inputShape: [size],
    imageShape: [SIDE, SIDE, 1],
    numOutputs: CLASSES,
    n,
    x,
    labels: y,
  };
}

/** Expected example counts of the standard 28×28 splits. */
export const SPLIT_SIZES = { train: 60000, test: 10000 } as const;
/** File name prefix of each split in the original distribution. */
export const SPLIT_PREFIX = { train: "train", test: "t10k" } as const;
