/** Public API of the data module. */
export type { Dataset, LoadOptions, Split, Task } from "./dataset.js";
export { inputSize } from "./dataset.js";
export { DATASET_NAMES, loadDataset, type DatasetName } from "./registry.js";
export { subset, head, batches } from "./select.js";
export { parseIdx, type IdxArray } from "./idx.js";
export { idxImageDataset } from "./imageDataset.js";
export { loadMnist, mnistDataDir } from "./mnist.js";
export { loadFashionMnist, fashionMnistDir, FASHION_MNIST_DEFAULT_DIR } from "./fashionMnist.js";
export {
  makeSynthetic,
  SYNTHETIC_NAMES,
  DEFAULT_NOISE,
  DEFAULT_SIZE,
  DEFAULT_SPIRAL_CLASSES,
  type SyntheticName,
} from "./synthetic.js";
