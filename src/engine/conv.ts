/**
 * Direct convolution as three differentiable ops that are each other's derivatives, as in PyTorch:
 *   y  = conv(x, w)          (forward)
 *   dx = convInput(dy, w)    (the adjoint of conv(·, w): the input gradient)
 *   dw = convFilter(x, dy)   (the weight gradient: ⟨dw, W⟩ = ⟨conv(x, W), dy⟩)
 * Each is bilinear, and the derivatives of each are the other two (derived from those identities), so gradients of
 * every order stay within the set: double backprop through a CNN (the GC penalty) never forms an im2col matrix on a
 * backend with native convolution kernels. Backends without them, float64 and grouped convolutions use im2col and
 * matrix products (spatial.ts `conv2dGeneral`); the JS fallbacks here do the same on raw arrays.
 * NHWC images; weights [cout, kh, kw, cin]; one group.
 */
import { Tensor, newOutputLike, sizeOf, type Data } from "./tensor.js";
import { record } from "./graph.js";
import { kernels, onHost } from "./backend.js";
import * as K from "./kernels.js";

/** Whether conv2d of this input may take the direct path (the active backend has kernels for it). */
export function directConvAvailable(x: Tensor, groups: number): boolean {
  return groups === 1 && x.dtype === "float32" && kernels().conv !== undefined;
}

/**
 * Host scratch storage of d's precision, not zeroed (host backends only: the JS fallback's intermediates, each
 * written completely by im2col, transpose or matmul).
 */
function scratch(d: Data, n: number): Data {
  return newOutputLike(d, n) as Data;
}

function cols(x: K.ConvGeometry): { rows: number; k: number } {
  return { rows: x.n * x.outH * x.outW, k: x.kh * x.kw * x.c };
}

/** y [n, outH, outW, cout] = conv(x, w) for geometry g (from K.convGeometry of x's shape). */
export function conv(x: Tensor, w: Tensor, g: K.ConvGeometry): Tensor {
  const cout = w.shape[0];
  const { rows, k } = cols(g);
  const y = newOutputLike(x.storage, rows * cout);
  if (!kernels().conv?.("forward", x.storage, w.storage, y, g, cout)) {
    const [xd, wd, yd] = onHost("conv2d", x.storage, w.storage, y);
    const c = scratch(xd, rows * k),
      wt = scratch(xd, k * cout);
    K.im2colGeneral(xd, c, g);
    K.transpose(wd, wt, cout, k);
    K.matmul(c, wt, yd, rows, k, cout);
  }
  return record(y, [g.n, g.outH, g.outW, cout], [x, w], (gy) => [
    x.requiresGrad ? convInput(gy, w, g) : null,
    w.requiresGrad ? convFilter(x, gy, g, w.shape) : null,
  ]);
}

/** dx [n, h, w, c] = convInput(dy, w): the adjoint of conv(·, w) applied to dy [n, outH, outW, cout]. */
export function convInput(dy: Tensor, w: Tensor, g: K.ConvGeometry): Tensor {
  const cout = w.shape[0];
  const { rows, k } = cols(g);
  const dx = newOutputLike(dy.storage, g.n * g.h * g.w * g.c);
  if (!kernels().conv?.("input", dy.storage, w.storage, dx, g, cout)) {
    const [dyd, wd, dxd] = onHost("conv2d backward", dy.storage, w.storage, dx);
    const dc = scratch(dyd, rows * k);
    K.matmul(dyd, wd, dc, rows, cout, k);
    K.col2imGeneral(dc, dxd, g);
  }
  // ⟨G, convInput(dy, w)⟩ = ⟨conv(G, w), dy⟩: linear in dy through conv(·, w), in w through convFilter(G, dy).
  return record(dx, [g.n, g.h, g.w, g.c], [dy, w], (G) => [
    dy.requiresGrad ? conv(G, w, g) : null,
    w.requiresGrad ? convFilter(G, dy, g, w.shape) : null,
  ]);
}

/** dw [cout, kh, kw, c] = convFilter(x, dy): Σ over pixels of dy ⊗ patches of x. */
export function convFilter(x: Tensor, dy: Tensor, g: K.ConvGeometry, wShape: readonly number[]): Tensor {
  const cout = wShape[0];
  const { rows, k } = cols(g);
  const dw = newOutputLike(x.storage, sizeOf(wShape));
  if (!kernels().conv?.("filter", x.storage, dy.storage, dw, g, cout)) {
    const [xd, dyd, dwd] = onHost("conv2d backward", x.storage, dy.storage, dw);
    const c = scratch(xd, rows * k),
      dyt = scratch(xd, rows * cout);
    K.im2colGeneral(xd, c, g);
    K.transpose(dyd, dyt, rows, cout);
    K.matmul(dyt, c, dwd, cout, rows, k);
  }
  // ⟨W, convFilter(x, dy)⟩ = ⟨conv(x, W), dy⟩: linear in x through convInput(dy, W), in dy through conv(x, W).
  return record(dw, wShape, [x, dy], (W) => [
    x.requiresGrad ? convInput(dy, W, g) : null,
    dy.requiresGrad ? conv(x, W, g) : null,
  ]);
}
