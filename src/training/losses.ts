/** Training losses as differentiable scalars (means over the batch), and accuracy. */
import { Tensor, alloc } from "../engine/tensor.js";
import * as op from "../engine/ops.js";

/** Mean softmax cross-entropy of logits [b, k] against integer labels: mean(logsumexp(z) − z_y). */
export function softmaxCrossEntropy(logits: Tensor, labels: Int32Array): Tensor {
  const [b, k] = logits.shape;
  const onehot = alloc(logits.dtype, b * k);
  for (let i = 0; i < b; i++) onehot[i * k + labels[i]] = 1;
  const picked = op.sumRows(op.mul(logits, new Tensor(onehot, logits.shape)));
  return op.scale(op.sum(op.sub(op.logSumExpRows(logits), picked)), 1 / b);
}

/** Mean over the batch of the squared error summed over outputs: (1/b) Σ ‖ŷ − y‖². */
export function meanSquaredError(pred: Tensor, targets: Float32Array | Float64Array): Tensor {
  const t = alloc(pred.dtype, targets.length);
  t.set(targets);
  const diff = op.sub(pred, new Tensor(t, pred.shape));
  return op.scale(op.sumSquares(diff), 1 / pred.shape[0]);
}

/** Fraction of rows whose largest logit is at the label. */
export function accuracy(logits: Tensor, labels: Int32Array): number {
  const [b, k] = logits.shape;
  let correct = 0;
  for (let i = 0; i < b; i++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (logits.data[i * k + j] > logits.data[i * k + best]) best = j;
    if (best === labels[i]) correct++;
  }
  return correct / b;
}
