/** Training losses as differentiable scalars (means over the batch), and accuracy. */
import { Tensor, tensor } from "../engine/tensor.js";
import * as op from "../engine/ops.js";

/** Mean softmax cross-entropy of logits [b, k] against integer labels: mean(logsumexp(z) − z_y). */
export function softmaxCrossEntropy(logits: Tensor, labels: Int32Array): Tensor {
  const [b, k] = logits.shape;
  // The one-hot matrix is built on the host and uploaded (host data in; nothing is read back).
  const onehot = logits.dtype === "float64" ? new Float64Array(b * k) : new Float32Array(b * k);
  for (let i = 0; i < b; i++) onehot[i * k + labels[i]] = 1;
  const picked = op.sumRows(op.mul(logits, tensor(onehot, logits.shape, logits.dtype)));
  return op.scale(op.sum(op.sub(op.logSumExpRows(logits), picked)), 1 / b);
}

/** Mean over the batch of the squared error summed over outputs: (1/b) Σ ‖ŷ − y‖². */
export function meanSquaredError(pred: Tensor, targets: Float32Array | Float64Array): Tensor {
  const diff = op.sub(pred, tensor(targets, pred.shape, pred.dtype)); // an upload of host targets
  return op.scale(op.sumSquares(diff), 1 / pred.shape[0]);
}

/** Fraction of rows whose largest logit is at the label (reads the logits: call it at a log point only). */
export function accuracy(logits: Tensor, labels: Int32Array): number {
  return accuracyOf(logits.data, logits.shape, labels);
}

/** {@link accuracy} from read-back logit values of shape [b, k]. */
export function accuracyOf(values: ArrayLike<number>, shape: readonly number[], labels: Int32Array): number {
  const [b, k] = shape;
  let correct = 0;
  for (let i = 0; i < b; i++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (values[i * k + j] > values[i * k + best]) best = j;
    if (best === labels[i]) correct++;
  }
  return correct / b;
}
