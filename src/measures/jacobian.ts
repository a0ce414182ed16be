/**
 * Squared Frobenius norms of input-output Jacobians, per example: the quantity GC averages.
 * Reverse mode costs one backward pass per output, forward mode one tangent per input dimension, and the
 * probe form one backward pass per random probe (an unbiased estimate: E‖vᵀJ‖² = ‖J‖_F² when E[vvᵀ] = I).
 */
import { Tensor, tensor, type Data, type DType } from "../engine/tensor.js";
import * as op from "../engine/ops.js";
import { broadcastTo } from "../engine/elementwise.js";
import { grad } from "../engine/autograd.js";
import { forward, forwardWithTangents, type Network, type Params } from "../models/network.js";
import type { Rng } from "../util/rng.js";
import type { GraphRunOptions } from "../models/graph.js";

/** Which function of the input is differentiated: the logits (the paper's GC) or the softmax probabilities. */
export type GCOutput = "logits" | "softmax";
/** Forward mode (one pass per input dimension) or reverse mode (one per output). */
export type JacobianMode = "forward" | "reverse";
/** Distribution of the random probes of the GC estimate. */
export type ProbeKind = "gaussian" | "rademacher";

/** `run`: a graph model's mode (default inference, running statistics; the GC penalty passes training mode). */
export function outputOf(net: Network, params: Params, x: Tensor, output: GCOutput, run?: GraphRunOptions): Tensor {
  const logits = forward(net, params, x, undefined, run);
  return output === "softmax" ? op.softmax(logits) : logits;
}

/** Forward mode wins when there are fewer inputs than outputs. */
export function cheaperMode(net: Network): JacobianMode {
  if (net.graph) return "reverse"; // graph models run reverse mode only
  return net.inputSize < net.outputSize ? "forward" : "reverse";
}

/** Host storage for n values (filled on the host, then uploaded with `tensor`). */
function hostArray(dtype: DType, n: number): Data {
  return dtype === "float64" ? new Float64Array(n) : new Float32Array(n);
}

function oneHotColumn(batch: number, k: number, c: number, like: Tensor): Tensor {
  const d = hostArray(like.dtype, batch * k);
  for (let b = 0; b < batch; b++) d[b * k + c] = 1;
  return tensor(d, [batch, k], like.dtype); // an upload
}

/**
 * ‖∂g(x_b)/∂x_b‖_F² for each row b of x, by k vector-Jacobian products sharing one forward pass.
 * With createGraph the result is differentiable in the parameters (the GC penalty's double backprop).
 */
export function jacobianSqNormsReverse(
  net: Network,
  params: Params,
  x: Tensor,
  output: GCOutput = "logits",
  createGraph = false,
  run?: GraphRunOptions,
): Tensor {
  const xv = x.variable();
  const y = outputOf(net, params, xv, output, run);
  const [batch, k] = y.shape;
  let total: Tensor | null = null;
  for (let c = 0; c < k; c++) {
    const [gx] = grad(y, [xv], { cotangent: oneHotColumn(batch, k, c, y), createGraph });
    const sq = op.sumRows(op.mul(gx, gx));
    total = total ? op.add(total, sq) : sq;
  }
  return total!;
}

/**
 * The same norms by forward mode: the d unit tangents of every example pushed through the network. The norms are
 * summed on the host from the tangents (a host method: CPU backends only; device backends use reverse mode).
 */
export function jacobianSqNormsForward(
  net: Network,
  params: Params,
  x: Tensor,
  output: GCOutput = "logits",
): Float64Array {
  const [batch, d] = x.shape;
  const tangents = hostArray(x.dtype, batch * d * d);
  for (let b = 0; b < batch; b++) for (let j = 0; j < d; j++) tangents[(b * d + j) * d + j] = 1;
  const { y, ty } = forwardWithTangents(net, params, x, tensor(tangents, [batch * d, d], x.dtype));
  const k = y.shape[1];
  const out = new Float64Array(batch);
  const yp = output === "softmax" ? op.softmax(y).data : null;
  for (let b = 0; b < batch; b++) {
    let s = 0;
    for (let j = 0; j < d; j++) {
      const row = (b * d + j) * k;
      if (yp) {
        // softmax's Jacobian applied to a tangent t: p ⊙ (t − ⟨p, t⟩)
        let dot = 0;
        for (let i = 0; i < k; i++) dot += yp[b * k + i] * ty.data[row + i];
        for (let i = 0; i < k; i++) {
          const v = yp[b * k + i] * (ty.data[row + i] - dot);
          s += v * v;
        }
      } else {
        for (let i = 0; i < k; i++) s += ty.data[row + i] * ty.data[row + i];
      }
    }
    out[b] = s;
  }
  return out;
}

/**
 * The forward-mode norms as ops, leaving a [batch] tensor on the backend (device backends: no host loop, nothing
 * read back). Same mathematics as {@link jacobianSqNormsForward}, summed in the backend's order.
 */
export function jacobianSqNormsForwardTensor(
  net: Network,
  params: Params,
  x: Tensor,
  output: GCOutput = "logits",
): Tensor {
  const [batch, d] = x.shape;
  const tangents = hostArray(x.dtype, batch * d * d);
  for (let b = 0; b < batch; b++) for (let j = 0; j < d; j++) tangents[(b * d + j) * d + j] = 1;
  const { y, ty } = forwardWithTangents(net, params, x, tensor(tangents, [batch * d, d], x.dtype));
  const k = y.shape[1];
  let t = ty; // [batch·d, k]: one tangent row per (example, input dimension)
  if (output === "softmax") {
    // softmax's Jacobian applied to each tangent: p ⊙ (t − ⟨p, t⟩), p repeated over the example's d tangents
    const p = op.reshape(broadcastTo(op.reshape(op.softmax(y), [batch, 1, k]), [batch, d, k]), [batch * d, k]);
    t = op.mul(p, op.sub(ty, op.broadcastCols(op.sumRows(op.mul(p, ty)), k)));
  }
  return op.sumRows(op.reshape(op.mul(t, t), [batch, d * k]));
}

/** Fills a [batch, k] probe matrix with independent standard Gaussian or Rademacher entries. */
export function drawProbes(batch: number, k: number, kind: ProbeKind, rng: Rng, like: Tensor): Tensor {
  const d = hostArray(like.dtype, batch * k);
  for (let i = 0; i < d.length; i++) d[i] = kind === "gaussian" ? rng.normal() : rng.rademacher();
  return tensor(d, [batch, k], like.dtype); // host randomness, uploaded
}

/**
 * ‖vᵀ ∂g(x_b)/∂x_b‖² per example for `probes` independent probe draws, one backward pass each, sharing one
 * forward pass. Returns one [batch] tensor per probe.
 */
export function probeSqNorms(
  net: Network,
  params: Params,
  x: Tensor,
  probes: number,
  kind: ProbeKind,
  rng: Rng,
  output: GCOutput = "logits",
  createGraph = false,
  run?: GraphRunOptions,
): Tensor[] {
  const xv = x.variable();
  const y = outputOf(net, params, xv, output, run);
  const [batch, k] = y.shape;
  const out: Tensor[] = [];
  for (let p = 0; p < probes; p++) {
    const [gx] = grad(y, [xv], { cotangent: drawProbes(batch, k, kind, rng, y), createGraph });
    out.push(op.sumRows(op.mul(gx, gx)));
  }
  return out;
}
