/**
 * Closed-form Jacobian propagation for MLPs (dense layers and elementwise activations), used by exact GC.
 * The k output rows of every example's Jacobian are pushed back together as one [batch·k, width] matrix:
 * Δ ← (Δ·W_l) ⊙ σ'(z_{l-1}), one large matmul per layer instead of k small backward passes. At the first layer,
 * when it is wider in than out, ‖Δ W₁‖² is read as the quadratic form Δ (W₁W₁ᵀ) Δᵀ, whose Gram matrix is computed
 * once per weight tensor. Measurement only (nothing is recorded for differentiation).
 */
import { Tensor, allocLike, tensor, type Data } from "../engine/tensor.js";
import { broadcastTo } from "../engine/elementwise.js";
import * as K from "../engine/kernels.js";
import * as op from "../engine/ops.js";
import { noGrad } from "../engine/graph.js";
import { unscoped } from "../engine/backend.js";
import { activationDerivative, type Network, type Params } from "../models/network.js";
import type { GCOutput } from "./jacobian.js";

const gramCache = new WeakMap<Tensor, Data>();

/** W Wᵀ for W [out, in] (cached: tensors are immutable). */
function gram(w: Tensor): Data {
  return (
    gramCache.get(w) ??
    unscoped(() => {
      const [out, inp] = w.shape;
      const wt = allocLike(w.data, out * inp);
      K.transpose(w.data, wt, out, inp);
      const gg = allocLike(w.data, out * out);
      K.matmul(w.data, wt, gg, out, inp, out);
      gramCache.set(w, gg);
      return gg;
    })
  );
}

export function supportsDenseJacobian(net: Network): boolean {
  return net.spec.kind === "mlp";
}

/**
 * ‖∂g(x_b)/∂x_b‖_F² per row of x for an MLP: host loops on the tensors' values (a host method, for CPU backends;
 * exact GC on a device backend runs the reverse-mode ops instead, see gc.ts).
 */
export function denseJacobianSqNorms(
  net: Network,
  params: Params,
  x: Tensor,
  output: GCOutput = "logits",
): Float64Array {
  if (net.spec.kind !== "mlp") throw new Error("denseJacobianSqNorms needs an MLP");
  const act = net.spec.activation;
  const [batch] = x.shape;
  const dense = net.layers.filter((l) => l.type === "dense") as { index: number; inSize: number; outSize: number }[];
  const weights = dense.map((l) => params[`layers.${l.index}.weight`]);
  const biases = dense.map((l) => params[`layers.${l.index}.bias`]);
  // Forward pass, keeping each hidden layer's activation derivative σ'(z).
  const derivs: Data[] = [];
  let h: Data = x.data;
  for (let l = 0; l < dense.length; l++) {
    const { inSize, outSize } = dense[l];
    const wt = allocLike(h, inSize * outSize);
    K.transpose(weights[l].data, wt, outSize, inSize);
    const z = allocLike(h, batch * outSize);
    K.matmul(h, wt, z, batch, inSize, outSize);
    const b = biases[l].data;
    for (let i = 0; i < z.length; i += outSize) for (let j = 0; j < outSize; j++) z[i + j] += b[j];
    if (l < dense.length - 1 && act !== "identity") {
      let d: Data;
      if (act === "relu" || act === "tanh") {
        d = allocLike(z, z.length);
        for (let i = 0; i < z.length; i++) {
          if (act === "relu") {
            d[i] = z[i] > 0 ? 1 : 0;
            z[i] = z[i] > 0 ? z[i] : 0;
          } else {
            const t = Math.tanh(z[i]);
            z[i] = t;
            d[i] = 1 - t * t;
          }
        }
      } else {
        // sigmoid, gelu: σ'(z) in closed form, then σ(z) with the engine's kernel (the same values as the forward pass).
        d = activationDerivative(act, z);
        const a = allocLike(z, z.length);
        if (act === "sigmoid") K.sigmoid(z, a);
        else K.gelu(z, a, "none");
        z.set(a);
      }
      derivs.push(d);
    } else if (l < dense.length - 1) {
      derivs.push(new Float32Array(0)); // identity: derivative 1, marked by an empty array
    }
    h = z;
  }
  const k = net.outputSize;
  // Δ starts as the Jacobian of the output map at the logits: identity, or softmax's diag(p) − ppᵀ.
  let delta = allocLike(h, batch * k * k);
  for (let b = 0; b < batch; b++) {
    if (output === "softmax") {
      const logits = h.subarray(b * k, (b + 1) * k);
      let mx = -Infinity;
      for (const v of logits) mx = Math.max(mx, v);
      const p = Array.from(logits, (v) => Math.exp(v - mx));
      const s = p.reduce((a, v) => a + v, 0);
      for (let c = 0; c < k; c++)
        for (let j = 0; j < k; j++) delta[(b * k + c) * k + j] = (c === j ? p[c] / s : 0) - (p[c] / s) * (p[j] / s);
    } else {
      for (let c = 0; c < k; c++) delta[(b * k + c) * k + c] = 1;
    }
  }
  let width = k;
  for (let l = dense.length - 1; l >= 1; l--) {
    const inSize = dense[l].inSize;
    const next = allocLike(delta, batch * k * inSize);
    K.matmul(delta, weights[l].data, next, batch * k, width, inSize);
    const d = derivs[l - 1];
    if (d.length) {
      for (let b = 0; b < batch; b++) {
        const row = d.subarray(b * inSize, (b + 1) * inSize);
        for (let c = 0; c < k; c++) {
          const o = (b * k + c) * inSize;
          for (let j = 0; j < inSize; j++) next[o + j] *= row[j];
        }
      }
    }
    delta = next;
    width = inSize;
  }
  // First layer: ‖Δ W₁‖² directly, or through the Gram matrix when that is cheaper.
  const { inSize, outSize } = dense[0];
  const out = new Float64Array(batch);
  const rows = batch * k;
  let q: Data, qWidth: number;
  if (outSize < inSize) {
    q = allocLike(delta, rows * outSize);
    K.matmul(delta, gram(weights[0]), q, rows, outSize, outSize);
    qWidth = outSize;
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let j = 0; j < qWidth; j++) s += q[r * qWidth + j] * delta[r * qWidth + j];
      out[Math.floor(r / k)] += s;
    }
  } else {
    q = allocLike(delta, rows * inSize);
    K.matmul(delta, weights[0].data, q, rows, outSize, inSize);
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let j = 0; j < inSize; j++) s += q[r * inSize + j] ** 2;
      out[Math.floor(r / k)] += s;
    }
  }
  return out;
}

/**
 * The same per-example ‖J‖_F², as a differentiable function of the weights, for ReLU or linear MLPs: there the
 * activation masks are constant almost everywhere, so J = W_L D_{L−1} ⋯ D₁ W₁ is a polynomial in the weights and
 * first-order backprop through this propagation gives the exact gradient of the GC penalty, without the double
 * backprop through k reverse passes. Returns null for other networks (tanh, sigmoid, gelu: σ' depends on the weights).
 */
export function denseJacobianSqNormsDifferentiable(net: Network, params: Params, x: Tensor): Tensor | null {
  if (net.spec.kind !== "mlp" || (net.spec.activation !== "relu" && net.spec.activation !== "identity")) return null;
  const relu = net.spec.activation === "relu";
  const [batch] = x.shape;
  const dense = net.layers.filter((l) => l.type === "dense") as { index: number; inSize: number; outSize: number }[];
  const weights = dense.map((l) => params[`layers.${l.index}.weight`]);
  const k = net.outputSize;
  // Masks from a forward pass that records nothing: they are constants of the penalty (tensors on the backend).
  const masks = noGrad(() => {
    const out: (Tensor | null)[] = [];
    let h = x;
    for (let l = 0; l < dense.length - 1; l++) {
      const z = op.add(
        op.matmul(h, weights[l].detach(), false, true),
        params[`layers.${dense[l].index}.bias`].detach(),
      );
      out.push(relu ? repeatRows(new Tensor(op.reluMaskStorage(z), z.shape), batch, k) : null);
      h = relu ? op.relu(z) : z;
    }
    return out;
  });
  const eye = x.dtype === "float64" ? new Float64Array(batch * k * k) : new Float32Array(batch * k * k);
  for (let r = 0; r < batch * k; r++) eye[r * k + (r % k)] = 1;
  let delta = tensor(eye, [batch * k, k], x.dtype); // an upload
  for (let l = dense.length - 1; l >= 1; l--) {
    delta = op.matmul(delta, weights[l]);
    const mask = masks[l - 1];
    if (mask) delta = op.mul(delta, mask);
  }
  const { inSize, outSize } = dense[0];
  const rowNorms =
    outSize < inSize
      ? op.sumRows(op.mul(op.matmul(delta, op.matmul(weights[0], weights[0], false, true)), delta))
      : op.sumRows(op.mul(op.matmul(delta, weights[0]), op.matmul(delta, weights[0])));
  return op.sumRows(op.reshape(rowNorms, [batch, k]));
}

/** Each example's row of a [batch, n] tensor repeated k times: [batch·k, n] (a broadcast copy, an op). */
function repeatRows(t: Tensor, batch: number, k: number): Tensor {
  const n = t.size / batch;
  return op.reshape(broadcastTo(op.reshape(t, [batch, 1, n]), [batch, k, n]), [batch * k, n]);
}
